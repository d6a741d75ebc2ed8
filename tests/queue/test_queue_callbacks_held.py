"""Issue 12, finding 6: callbacks to a producer that failed are held for its resume, never dropped.

The kernel is stopped with tasks in flight and pending (as after a kill -9: no close, no goodbye); at
the restart the producer cannot be resumed (its agent refuses), so it is in ``error`` while the
queue finishes its tasks. Every callback is held for the handle and reaches the producer exactly
once when someone resumes it; only closing the producer drops them, and the queue ledger says so.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from queue_testkit import LiveCounter, call, callbacks, producer, wait_until

from aegis_kernel.state import Ledger
from aegis_queue.runtime import QueueRuntime


def callback_records(project):
    path = project / ".aegis" / "state" / "queues" / "tests.jsonl"
    return [r for r in Ledger.replay(path).records if r["event"] == "callback"]


async def stopped_with_work_in_flight(make_kernel, register_plugin):
    """A kernel stopped with 2 tasks in flight and 2 pending, all for one producer: (handle, task ids)."""
    counter = register_plugin(LiveCounter())
    async with make_kernel() as kernel:
        prod = await producer(kernel)
        ids = [(await call(kernel, "aegis_enqueue", prod.handle, queue="tests", payload=p))["task_id"]
               for p in ("hang", "hang", "p1", "p2")]
        await wait_until(lambda: len(counter.live) == 2, timeout=30)
        return prod.handle, ids


async def failed_producer_with_every_task_done(kernel, handle, ids):
    rt = kernel.service(QueueRuntime)
    with trio.fail_after(30):
        for task_id in ids:
            await rt.tasks[task_id].finished.wait()
    prod = kernel.sessions.get(handle)
    assert prod is not None and prod.state == "error"
    await wait_until(lambda: all(rt.tasks[i].callback_outcome == "held" for i in ids), timeout=30)
    return rt, prod


@pytest.mark.trio
async def test_callbacks_to_a_failed_producer_reach_it_once_it_is_resumed(qdriver, make_kernel, aegis_project,
                                                                        register_plugin):
    handle, ids = await stopped_with_work_in_flight(make_kernel, register_plugin)
    qdriver.refuse_resume = True  # the restart cannot bring the producer's agent back
    async with make_kernel(restore=True) as kernel:
        rt, prod = await failed_producer_with_every_task_done(kernel, handle, ids)
        assert callbacks(prod) == []
        qdriver.refuse_resume = False
        await call(kernel, "aegis_resume", None, handle=handle)  # what the error text advises
        resumed = kernel.sessions.get(handle)
        assert resumed is not prod
        await wait_until(lambda: len(callbacks(resumed)) == 4, timeout=30)
        await resumed.wait_idle()
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(cb.task_id for cb in callbacks(resumed)) == sorted(ids)  # each exactly once
        assert {rt.tasks[i].status for i in ids} == {"failed", "completed"}
    assert {r["task_id"]: r["outcome"] for r in callback_records(aegis_project)} == {i: "held" for i in ids}
    async with make_kernel(restore=True) as kernel:  # a further restart delivers nothing twice
        again = kernel.sessions.get(handle)
        await again.wait_idle()
        await trio.testing.wait_all_tasks_blocked()
        assert kernel.delivery.pending(handle) == []
        assert qdriver.processes[-1].prompts == []  # its agent got no turn: nothing was sent again


@pytest.mark.trio
async def test_held_callbacks_are_dropped_only_when_the_producer_is_closed_and_the_ledger_says_so(
        qdriver, make_kernel, aegis_project, register_plugin):
    handle, ids = await stopped_with_work_in_flight(make_kernel, register_plugin)
    qdriver.refuse_resume = True
    async with make_kernel(restore=True) as kernel:
        rt, prod = await failed_producer_with_every_task_done(kernel, handle, ids)
        await kernel.sessions.close(handle, "closed by user")
        assert {rt.tasks[i].callback_outcome for i in ids} == {"dropped"}
        assert kernel.delivery.pending(handle) == []
    dropped = [r for r in callback_records(aegis_project) if r["outcome"] == "dropped"]
    assert sorted(r["task_id"] for r in dropped) == sorted(ids)
    assert all(r["producer"] == handle and "closed" in r["reason"] for r in dropped)
