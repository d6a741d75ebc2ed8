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
