"""Queue runtime on the in-memory driver: FIFO, max_parallel, callbacks, ledger, cancel, failures."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from queue_testkit import LiveCounter, call, callbacks, producer, wait_until

from aegis_kernel.operations import OperationError
from aegis_kernel.state import Ledger
from aegis_queue.runtime import QueueRuntime




@pytest.fixture
def counter(register_plugin):
    return register_plugin(LiveCounter())


def ledger(kernel, queue):
    return Ledger.replay(kernel.state.root / "queues" / f"{queue}.jsonl").records


def terminal_counts(records):
    counts: dict[str, int] = {}
    for rec in records:
        if rec["event"] in ("completed", "failed", "cancelled"):
            counts[rec["task_id"]] = counts.get(rec["task_id"], 0) + 1
    return counts


@pytest.mark.trio
async def test_enqueue_runs_a_fresh_worker_and_calls_back_with_the_whole_final_message(qdriver, counter, kernel):
    prod = await producer(kernel)
    out = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="multi")
    assert set(out) >= {"task_id", "queued_position"} and out["queued_position"] == 0
    rt = kernel.service(QueueRuntime)
    task = rt.tasks[out["task_id"]]
    await task.finished.wait()
    assert task.status == "completed"
    assert task.result == "final part one and part two"  # coalesced last message, no draft, no sub-agent text
    await wait_until(lambda: len(callbacks(prod)) == 1 and prod.state == "ready")
    [cb] = callbacks(prod)
    assert (cb.sender, cb.task_id, cb.status, cb.body) == ("queue:solo", task.id, "ok", "final part one and part two")
    await wait_until(lambda: not counter.live)
    assert task.worker not in [s.handle for s in kernel.sessions]  # the worker was closed
    status = await call(kernel, "aegis_task_status", prod.handle, task_id=task.id)
    assert status["status"] == "completed" and status["result"] == "final part one and part two"
    assert status["usage"] == {"input": 10, "output": 5, "cache_read": 0, "cache_creation": 0}
    events = [r["event"] for r in ledger(kernel, "solo")]
    assert events == ["enqueued", "dispatched", "completed"]


@pytest.mark.trio
async def test_fifo_never_more_than_max_parallel_and_one_terminal_record_each(qdriver, counter, kernel):
    prod = await producer(kernel)
    ids = []
    for i in range(12):
        out = await call(kernel, "aegis_enqueue", prod.handle, queue="tests", payload=f"sleep 0.02 r{i}")
        ids.append(out["task_id"])
        assert out["queued_position"] == (0 if i < 2 else i - 1)
    rt = kernel.service(QueueRuntime)
    with trio.fail_after(10):
        for task_id in ids:
            await rt.tasks[task_id].finished.wait()
    assert counter.max == 2
    records = ledger(kernel, "tests")
    dispatched = [r["task_id"] for r in records if r["event"] == "dispatched"]
    assert dispatched == ids  # FIFO
    assert terminal_counts(records) == {i: 1 for i in ids}
    assert [rt.tasks[i].result for i in ids] == [f"r{i}" for i in range(12)]
    await wait_until(lambda: len({c.task_id for c in callbacks(prod)}) == 12)
    await trio.testing.wait_all_tasks_blocked()  # everything settled: no late duplicate is on its way
    assert sorted(c.task_id for c in callbacks(prod)) == sorted(ids)  # each exactly once


@pytest.mark.trio
async def test_bad_input_is_refused_clearly(qdriver, kernel):
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_enqueue", queue="nope", payload="x")
    assert err.value.code == "unknown_queue" and "queues: broken, quick, solo, tests" in err.value.message
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_enqueue", queue="tests", payload=42)
    assert err.value.code == "bad_argument" and err.value.param == "payload"
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_enqueue", queue="tests", payload="")
    assert err.value.param == "payload"
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_task_status", task_id="nope")
    assert err.value.code == "unknown_task"
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_cancel", task_id="nope")
    assert err.value.code == "unknown_task"


@pytest.mark.trio
async def test_cancel_pending_in_flight_and_finished(qdriver, counter, kernel):
    prod = await producer(kernel)
    rt = kernel.service(QueueRuntime)
    a = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="hang")
    b = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="sleep 0.01 b-done")
    assert b["queued_position"] == 1
    await wait_until(lambda: len(counter.live) == 1)
    out = await call(kernel, "aegis_cancel", prod.handle, task_id=a["task_id"])
    assert out == {"task_id": a["task_id"], "status": "cancelled", "was": "dispatched"}
    await rt.tasks[b["task_id"]].finished.wait()
    assert rt.tasks[b["task_id"]].status == "completed"
    c = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="hang")
    d = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="x")
    out = await call(kernel, "aegis_cancel", task_id=d["task_id"])  # the user may cancel any task
    assert out["status"] == "cancelled" and out["was"] == "pending"
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_cancel", prod.handle, task_id=b["task_id"])
    assert err.value.code == "already_finished" and "completed" in err.value.message
    other = await kernel.sessions.spawn("producer")
    await other.wait_for(lambda s: s.state == "ready")
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_cancel", other.handle, task_id=c["task_id"])
    assert err.value.code == "forbidden"
    await call(kernel, "aegis_cancel", prod.handle, task_id=c["task_id"])
    await wait_until(lambda: len(callbacks(prod)) == 4)
    bodies = {cb.task_id: (cb.status, cb.body) for cb in callbacks(prod)}
    assert bodies[a["task_id"]] == ("error", "cancelled (the worker had not said anything yet)")
    assert bodies[d["task_id"]] == ("error", "cancelled (never dispatched)")
    assert bodies[b["task_id"]] == ("ok", "b-done")
    assert terminal_counts(ledger(kernel, "solo")) == {t["task_id"]: 1 for t in (a, b, c, d)}
    await wait_until(lambda: not counter.live)


@pytest.mark.trio
async def test_worker_crash_error_turn_and_unstartable_worker_fail_and_the_queue_keeps_flowing(qdriver, kernel):
    prod = await producer(kernel)
    rt = kernel.service(QueueRuntime)
    ids = [(await call(kernel, "aegis_enqueue", prod.handle, queue="tests", payload=p))["task_id"]
           for p in ("crash", "error", "after")]
    broken = (await call(kernel, "aegis_enqueue", prod.handle, queue="broken", payload="x"))["task_id"]
    with trio.fail_after(5):
        for task_id in [*ids, broken]:
            await rt.tasks[task_id].finished.wait()
    crash, error, after = (rt.tasks[i] for i in ids)
    assert crash.status == "failed" and "the worker failed: the agent process exited with code 3" in crash.error
    assert error.status == "failed" and error.error == "model refused" and error.result == "partial thoughts"
    assert after.status == "completed" and after.result == "done: after"
    b = rt.tasks[broken]
    assert b.status == "failed" and "/nonexistent/aegis-no-such-agent" in b.error
    await wait_until(lambda: len(callbacks(prod)) == 4)
    statuses = {cb.task_id: cb.status for cb in callbacks(prod)}
    assert statuses == {ids[0]: "error", ids[1]: "error", ids[2]: "ok", broken: "error"}
    body = next(cb.body for cb in callbacks(prod) if cb.task_id == ids[1])
    assert body.startswith("failed: model refused (worker ") and body.endswith("partial thoughts")
    await wait_until(lambda: not [s for s in kernel.sessions if s.profile_name in ("worker", "ghost")])


@pytest.mark.trio
async def test_per_task_timeout_fails_the_task_and_frees_the_slot(qdriver, counter, kernel):
    rt = kernel.service(QueueRuntime)
    slow = await call(kernel, "aegis_enqueue", queue="quick", payload="hang")
    nxt = await call(kernel, "aegis_enqueue", queue="quick", payload="fine")
    with trio.fail_after(5):
        await rt.tasks[nxt["task_id"]].finished.wait()
    task = rt.tasks[slow["task_id"]]
    assert task.status == "failed" and task.error.startswith("timeout: the worker did not finish within 0.5s")
    assert rt.tasks[nxt["task_id"]].status == "completed"
    assert counter.max == 1


@pytest.mark.trio
async def test_delegate_waits_for_the_result_and_on_timeout_calls_back_later(qdriver, kernel):
    prod = await producer(kernel)
    out = await call(kernel, "aegis_delegate", prod.handle, queue="tests", payload="sleep 0.01 the answer")
    assert out["status"] == "completed" and out["result"] == "the answer"
    out = await call(kernel, "aegis_delegate", prod.handle, queue="tests", payload="sleep 0.4 late answer",
                     timeout_s=0.05)
    assert out["status"] == "timeout" and out["task_status"] == "dispatched"
    assert "callback" in out["message"]
    await wait_until(lambda: len(callbacks(prod)) == 1)
    [cb] = callbacks(prod)
    assert cb.task_id == out["task_id"] and cb.body == "late answer"
    assert len(callbacks(prod)) == 1  # the first, awaited delegate sent no callback
    user = await call(kernel, "aegis_delegate", queue="tests", payload="sleep 0.01 for the user")
    assert user["result"] == "for the user"


@pytest.mark.trio
async def test_queue_status_lists_depth_in_flight_and_recent(qdriver, kernel):
    await call(kernel, "aegis_enqueue", queue="solo", payload="hang")
    await call(kernel, "aegis_enqueue", queue="solo", payload="next")
    rt = kernel.service(QueueRuntime)
    await wait_until(lambda: rt.queues["solo"].inflight and next(iter(rt.queues["solo"].inflight.values())).session)
    listing = await call(kernel, "aegis_queue_status")
    solo = next(q for q in listing["queues"] if q["queue"] == "solo")
    assert (solo["pending"], solo["in_flight"], solo["max_parallel"]) == (1, 1, 1)
    detail = await call(kernel, "aegis_queue_status", queue="solo")
    assert detail["in_flight_tasks"][0]["payload"] == "hang" and detail["in_flight_tasks"][0]["worker"]
    assert detail["pending_tasks"][0]["position"] == 1
    from aegis_queue.panels import dashboard_rows, strip_text

    text = strip_text(rt)
    assert text.startswith("4 queues · ●1/5 ○1 ✓0 ✗0") and "last: " in text
    bands = dashboard_rows(rt)
    assert bands["IN-FLIGHT"] and bands["QUEUED"]


@pytest.mark.trio
async def test_ledger_records_are_versioned_json(qdriver, kernel):
    out = await call(kernel, "aegis_enqueue", queue="solo", payload="hi")
    await kernel.service(QueueRuntime).tasks[out["task_id"]].finished.wait()
    raw = (kernel.state.root / "queues" / "solo.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in raw]
    assert all(r["v"] == 1 for r in recs)
    assert recs[0]["payload"] == "hi" and recs[0]["enqueued_by"] == "user" and recs[0]["callback"] is False


@pytest.mark.trio
async def test_workers_share_one_transcript_per_queue_and_day(qdriver, kernel):
    rt = kernel.service(QueueRuntime)
    tasks = []
    for i in range(3):
        out = await call(kernel, "aegis_enqueue", None, queue="solo", payload=f"job {i}")
        tasks.append(rt.tasks[out["task_id"]])
    for task in tasks:
        await task.finished.wait()
    await wait_until(lambda: not rt.queues["solo"].inflight)
    info = rt.task_info(tasks[0])
    path = kernel.state.root / info["transcript"]
    assert info["transcript"].startswith("sessions/queue-solo-") and path.exists()
    records = Ledger.replay(path).records
    assert {r["handle"] for r in records} == {t.worker for t in tasks}
    for task in tasks:  # each worker's story is whole in it: started, prompted, answered, closed
        kinds = [r["event"]["t"] for r in records if r["handle"] == task.worker]
        assert "TurnResult" in kinds and kinds[-1] == "StateChanged"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no file per worker
    assert all(t.transcript for t in tasks)
    assert ledger(kernel, "solo")[1]["transcript"] == tasks[0].transcript  # dispatched record names it
