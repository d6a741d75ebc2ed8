"""Issue 12, finding 7: a damaged queue ledger costs that queue (with a clear error), never the serve."""

from __future__ import annotations

import pytest
from queue_testkit import call, producer

from aegis_kernel.operations import OperationError
from aegis_queue.runtime import QueueRuntime


@pytest.mark.trio
async def test_a_ledger_replaced_by_a_folder_disables_that_queue_only(qdriver, make_kernel, aegis_project):
    (aegis_project / ".aegis" / "state" / "queues" / "tests.jsonl").mkdir(parents=True)
    async with make_kernel() as kernel:
        rt = kernel.service(QueueRuntime)
        assert "tests" not in rt.queues and "its ledger cannot be read" in rt.invalid["tests"]
        prod = await producer(kernel)
        with pytest.raises(OperationError, match="queue 'tests' is misconfigured: its ledger cannot be read"):
            await call(kernel, "aegis_enqueue", prod.handle, queue="tests", payload="x")
        done = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="still works")
        await rt.tasks[done["task_id"]].finished.wait()
        assert rt.tasks[done["task_id"]].result == "done: still works"


@pytest.mark.trio
async def test_a_record_of_the_wrong_type_costs_only_itself_and_is_reported(qdriver, make_kernel, aegis_project,
                                                                           caplog):
    import json
    import logging

    path = aegis_project / ".aegis" / "state" / "queues" / "tests.jsonl"
    path.parent.mkdir(parents=True)
    at = "2026-11-01T00:00:00Z"
    recs = [{"v": 1, "event": "enqueued", "task_id": "t1", "queue": "tests", "payload": "one", "at": at},
            {"v": 1, "event": "enqueued", "task_id": 2, "queue": "tests", "payload": "two", "at": at},
            {"v": 1, "event": "enqueued", "task_id": "t3", "queue": "tests", "payload": ["three"], "at": at},
            {"v": 1, "event": "enqueued", "task_id": "t4", "queue": "tests", "payload": "four", "at": at},
            {"v": 1, "event": "completed", "task_id": "t4", "result": "r", "usage": "lots", "at": at},
            {"v": 1, "event": "completed", "task_id": "t4", "result": "done: four", "at": at}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with caplog.at_level(logging.WARNING):
        async with make_kernel() as kernel:
            rt = kernel.service(QueueRuntime)
            assert rt.tasks["t4"].status == "completed" and rt.tasks["t4"].result == "done: four"
            await rt.tasks["t1"].finished.wait()
            assert rt.tasks["t1"].result == "done: one"
            problems = rt.queues["tests"].problems
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 5"]
    assert "'task_id' must be a non-empty string" in problems[0] and "'payload'" in problems[1]
    assert "'usage'" in problems[2]
    assert sum("tests.jsonl" in r.getMessage() and "line 3" in r.getMessage() for r in caplog.records) == 1
