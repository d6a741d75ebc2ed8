"""Restart replay: pending tasks re-queued in order, in-flight ones failed as interrupted and called back."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from queue_testkit import LiveCounter, call, callbacks, producer, wait_until

from aegis_kernel.state import Ledger
from aegis_queue.runtime import QueueRuntime




def records(project, queue):
    return Ledger.replay(project / ".aegis" / "state" / "queues" / f"{queue}.jsonl").records


@pytest.mark.trio
async def test_restart_requeues_pending_and_fails_in_flight_as_interrupted(qdriver, make_kernel, aegis_project,
                                                                         register_plugin):
    counter = register_plugin(LiveCounter())
    async with make_kernel() as kernel:
        prod = await producer(kernel)
        ids = [(await call(kernel, "aegis_enqueue", prod.handle, queue="tests", payload=p))["task_id"]
               for p in ("hang", "hang", "p1", "p2", "p3")]
        await wait_until(lambda: len(counter.live) == 2)
        stale = sorted(counter.live)
        producer_handle = prod.handle
    # the kernel stopped with 2 tasks in flight and 3 pending
    events = [(r["event"], r["task_id"]) for r in records(aegis_project, "tests")]
    assert [e for e, _ in events].count("dispatched") == 2 and not any(e == "failed" for e, _ in events)

    qdriver.turns.clear()
    # the kernel restores the producer (live at the stop) before the queue may dispatch anything
    async with make_kernel(restore=True) as kernel:
        rt = kernel.service(QueueRuntime)
        interrupted = [rt.tasks[i] for i in ids[:2]]
        assert all(t.status == "failed" and t.error.startswith("interrupted") for t in interrupted)
        prod = kernel.sessions.get(producer_handle)
        assert prod is not None, "the producer was restored"
        assert not any(kernel.sessions.get(h) for h in stale), "workers are never restored"
        with trio.fail_after(5):
            for task_id in ids[2:]:
                await rt.tasks[task_id].finished.wait()
        assert [rt.tasks[i].result for i in ids[2:]] == ["done: p1", "done: p2", "done: p3"]
        dispatched = [r["task_id"] for r in records(aegis_project, "tests") if r["event"] == "dispatched"]
        assert dispatched[2:] == ids[2:]  # re-queued in their original order
        await wait_until(lambda: len(callbacks(prod)) == 5)
        await trio.testing.wait_all_tasks_blocked()  # settled: a duplicate would be here by now
        by_task: dict[str, list] = {}
        for cb in callbacks(prod):
            by_task.setdefault(cb.task_id, []).append(cb)
        assert {t: len(v) for t, v in by_task.items()} == {i: 1 for i in ids}
        for task_id in ids[:2]:
            cb = by_task[task_id][0]
            assert cb.status == "error" and cb.body.startswith("failed: interrupted: aegis restarted")
        await wait_until(lambda: not any(kernel.sessions.get(h) for h in stale))
    counts: dict[str, int] = {}
    for rec in records(aegis_project, "tests"):
        if rec["event"] in ("completed", "failed", "cancelled"):
            counts[rec["task_id"]] = counts.get(rec["task_id"], 0) + 1
    assert counts == {i: 1 for i in ids}

    # a third start changes nothing: every task is terminal
    async with make_kernel() as kernel:
        rt = kernel.service(QueueRuntime)
        assert {rt.tasks[i].status for i in ids} == {"failed", "completed"}
        assert not rt.queues["tests"].pending and not rt.queues["tests"].inflight


@pytest.mark.trio
async def test_a_callback_lost_between_terminal_record_and_delivery_is_resent_once(qdriver, make_kernel,
                                                                                  aegis_project):
    async with make_kernel() as kernel:
        prod = await producer(kernel)
        out = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="hello")
        await kernel.service(QueueRuntime).tasks[out["task_id"]].finished.wait()
        await wait_until(lambda: len(callbacks(prod)) == 1)
        handle = prod.handle
    # simulate a crash right after the terminal record: drop the callback from the producer's inbox
    inbox = aegis_project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl"
    lines = [json.loads(line) for line in inbox.read_text().splitlines()]
    [lost] = [r["envelope"]["id"] for r in lines if r.get("envelope", {}).get("task_id") == out["task_id"]]
    inbox.write_text("".join(json.dumps(r) + "\n" for r in lines
                             if r.get("id") != lost and r.get("envelope", {}).get("id") != lost))
    def deliveries():
        recs = [json.loads(line) for line in inbox.read_text().splitlines()]
        queued = [r["envelope"]["id"] for r in recs if r.get("op") == "queued"
                  and r["envelope"].get("task_id") == out["task_id"]]
        delivered = [r["id"] for r in recs if r.get("op") == "delivered" and r["id"] in queued]
        return queued, delivered

    async with make_kernel() as kernel:
        assert deliveries() == ([lost], [])  # re-sent with the same envelope id, held for the restore
        restored = await kernel.sessions.restore()
        prod = next(s for s in restored if s.handle == handle)
        await wait_until(lambda: deliveries() == ([lost], [lost]))
        assert [cb.body for cb in callbacks(prod)][-1] == "done: hello"
    # and a further restart does not send it again
    async with make_kernel() as kernel:
        restored = await kernel.sessions.restore()
        await trio.testing.wait_all_tasks_blocked()
        assert deliveries() == ([lost], [lost])


@pytest.mark.trio
async def test_a_task_that_asked_to_resume_resumes_in_its_agent_session_once(qdriver, make_kernel, aegis_project,
                                                                           register_plugin):
    counter = register_plugin(LiveCounter())
    async with make_kernel() as kernel:
        prod = await producer(kernel)
        ids = [(await call(kernel, "aegis_enqueue", prod.handle, queue="tests", payload=p, resume=r))["task_id"]
               for p, r in (("hang-once A", True), ("hang B", False), ("p1", False), ("hang C", True))]
        await wait_until(lambda: len(counter.live) == 2)
        rt = kernel.service(QueueRuntime)
        first_worker = rt.tasks[ids[0]].worker
        producer_handle = prod.handle
    recs = records(aegis_project, "tests")
    assert [r["resume_id"] for r in recs if r["event"] == "worker_session"] == [f"qfake-{first_worker}"]
    assert [r.get("resume", False) for r in recs if r["event"] == "enqueued"] == [True, False, False, True]

    async with make_kernel(restore=True) as kernel:
        rt = kernel.service(QueueRuntime)
        a, b, p1, c = (rt.tasks[i] for i in ids)
        assert b.status == "failed" and b.error.startswith("interrupted")  # did not ask to resume
        with trio.fail_after(5):
            await a.finished.wait()
            await p1.finished.wait()
        # a new worker process, the same agent session, the payload again after a note
        assert (a.status, a.result) == ("completed", f"resumed: A in qfake-{first_worker}")
        assert a.worker != first_worker and a.resumed == 1
        assert [s.resume_id for s, _ in qdriver.launches if s.handle == a.worker] == [f"qfake-{first_worker}"]
        dispatched = [r["task_id"] for r in records(aegis_project, "tests") if r["event"] == "dispatched"]
        assert dispatched[2:4] == [ids[0], ids[2]]  # the resumed task goes ahead of the pending ones
        prod = kernel.sessions.get(producer_handle)
        await wait_until(lambda: {cb.task_id for cb in callbacks(prod)} >= {ids[0], ids[1], ids[2]})
        [cb] = [cb for cb in callbacks(prod) if cb.task_id == ids[0]]
        assert cb.status == "ok" and cb.body == f"resumed: A in qfake-{first_worker}"
        await wait_until(lambda: c.status == "dispatched" and c.worker in counter.live)  # hangs

    async with make_kernel(restore=True) as kernel:  # C is resumed (and hangs again)
        rt = kernel.service(QueueRuntime)
        c = rt.tasks[ids[3]]
        assert c.resumed == 1
        await wait_until(lambda: c.status == "dispatched" and c.worker in counter.live)

    async with make_kernel(restore=True) as kernel:  # interrupted again after its one resume: it fails
        rt = kernel.service(QueueRuntime)
        c = rt.tasks[ids[3]]
        assert c.status == "failed" and c.error.startswith("interrupted") and c.resumed == 1
    counts: dict[str, int] = {}
    for rec in records(aegis_project, "tests"):
        if rec["event"] in ("completed", "failed", "cancelled"):
            counts[rec["task_id"]] = counts.get(rec["task_id"], 0) + 1
    assert counts == {i: 1 for i in ids}


def _write_ledger(path, tasks):
    """A ledger of (task_id, final event or None for pending, or "dispatched") tuples, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for task_id, final in tasks:
        lines.append({"v": 1, "event": "enqueued", "task_id": task_id, "at": "2026-11-01T00:00:00Z", "queue": "tests",
                      "payload": f"p {task_id}", "producer": None, "enqueued_by": "user", "callback": False})
        if final is not None:
            lines.append({"v": 1, "event": "dispatched", "task_id": task_id, "at": "2026-11-01T00:00:01Z",
                          "worker": f"w-{task_id}"})
        if final in ("completed", "failed", "cancelled"):
            lines.append({"v": 1, "event": final, "task_id": task_id, "at": "2026-11-01T00:00:02Z", "result": "r"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.mark.trio
async def test_older_finished_tasks_are_archived_whole_and_totals_survive(qdriver, make_kernel, aegis_project,
                                                                       monkeypatch):
    import aegis_queue.ledger as qledger

    monkeypatch.setattr(qledger, "ARCHIVE_AT", 30)
    monkeypatch.setattr(qledger, "KEEP_FINISHED", 5)
    plan = [(f"t{i:03}", "completed" if i % 10 else "failed") for i in range(40)]
    plan[3] = ("t003", "dispatched")  # in flight at the stop: interrupted, never archived before that
    plan += [("p1", None), ("p2", None)]
    path = aegis_project / ".aegis" / "state" / "queues" / "tests.jsonl"
    _write_ledger(path, plan)
    before = Ledger.replay(path).records

    async with make_kernel() as kernel:
        rt = kernel.service(QueueRuntime)
        info = rt.queue_info("tests")
        # 39 finished before this start (35 archived + 4 kept), + t003 failed as interrupted now
        assert (info["completed"], info["failed"]) == (35, 5)
        with trio.fail_after(5):
            for tid in ("p1", "p2"):
                await rt.tasks[tid].finished.wait()
        assert rt.tasks["t003"].error.startswith("interrupted")
        with pytest.raises(Exception, match="archive"):
            rt.task("t000")
    archives = list((path.parent / "archive").iterdir())
    assert [a.name for a in archives] == ["tests-t000-t034.jsonl"]
    archived = Ledger.replay(archives[0]).records
    live = Ledger.replay(path).records
    # all but the newest 5 finished tasks (t035..t039) moved; t003 was not finished at the start
    assert {r["task_id"] for r in archived} == {f"t{i:03}" for i in range(35)} - {"t003"}
    # nothing lost, nothing doubled: the original records are all in exactly one of the two files
    after = [json.dumps(r, sort_keys=True) for r in archived + live]
    assert all(after.count(json.dumps(r, sort_keys=True)) == 1 for r in before)
    [summary] = [r for r in live if r["event"] == "archived"]
    assert (summary["archive"], summary["tasks"], summary["counts"]) == (
        "archive/tests-t000-t034.jsonl", 34, {"completed": 30, "failed": 4})

    async with make_kernel() as kernel:  # below the threshold now: nothing more moves; totals still whole
        info = kernel.service(QueueRuntime).queue_info("tests")
        assert (info["completed"], info["failed"], info["pending"]) == (37, 5, 0)
    assert len(list((path.parent / "archive").iterdir())) == 1


def test_plan_archive_keeps_the_last_records_task_and_needs_enough_finished():
    from aegis_queue.ledger import archived_counts, plan_archive

    recs = []
    for i in range(4):
        recs += [{"event": "enqueued", "task_id": f"t{i}"}, {"event": "dispatched", "task_id": f"t{i}"}]
    recs += [{"event": "completed", "task_id": f"t{i}"} for i in (1, 2, 3)]
    recs.append({"event": "failed", "task_id": "t0"})  # t0 finished last: its callback may be unsent
    assert plan_archive(recs, archive_at=5, keep=0) is None
    plan = plan_archive(recs, archive_at=4, keep=1)
    assert {r["task_id"] for r in plan.archived} == {"t1", "t2"} and plan.summary["counts"] == {"completed": 2}
    assert {r["task_id"] for r in plan.kept} == {"t0", "t3"} and plan.summary["tasks"] == 2
    summaries = [{"event": "archived", "counts": {"completed": 2, "bogus": 9}},
                 {"event": "archived", "counts": {"failed": 1, "completed": 1}}]
    assert archived_counts(summaries) == {"completed": 3, "failed": 1}


@pytest.fixture
def archivable(aegis_project, monkeypatch):
    """A ledger of 3 finished tasks, with thresholds that make the next start archive them all."""
    import aegis_queue.ledger as qledger

    monkeypatch.setattr(qledger, "ARCHIVE_AT", 2)
    monkeypatch.setattr(qledger, "KEEP_FINISHED", 0)
    path = aegis_project / ".aegis" / "state" / "queues" / "tests.jsonl"
    _write_ledger(path, [("a", "completed"), ("b", "completed"), ("c", "completed")])
    return path


@pytest.mark.trio
async def test_a_ledger_with_unreadable_lines_is_not_archived(qdriver, make_kernel, archivable):
    path = archivable
    with path.open("a") as f:
        f.write("{not json\n")
    text = path.read_text()
    async with make_kernel() as kernel:
        assert kernel.service(QueueRuntime).queue_info("tests")["completed"] == 3
    assert path.read_text() == text and not (path.parent / "archive").exists()


@pytest.mark.trio
@pytest.mark.parametrize("refusal", [True, "late"], ids=["at-start", "first-turn"])
async def test_a_resume_the_agent_refuses_fails_the_task_as_interrupted_saying_why(qdriver, make_kernel, register_plugin,
                                                                                 refusal):
    counter = register_plugin(LiveCounter())
    async with make_kernel() as kernel:
        task_id = (await call(kernel, "aegis_enqueue", None, queue="tests", payload="hang-once A",
                              resume=True))["task_id"]
        await wait_until(lambda: len(counter.live) == 1)
        resume_id = f"qfake-{kernel.service(QueueRuntime).tasks[task_id].worker}"
    qdriver.refuse_resume = refusal
    async with make_kernel() as kernel:
        task = kernel.service(QueueRuntime).tasks[task_id]
        with trio.fail_after(5):
            await task.finished.wait()
        assert task.status == "failed" and task.error.startswith("interrupted: aegis restarted")
        assert f"resuming it in agent session {resume_id} failed" in task.error
        why = f"session not found: {resume_id}" if refusal is True else f"No conversation found with session ID: {resume_id}"
        assert why in task.error


@pytest.mark.trio
async def test_a_lost_callback_to_a_transient_producer_is_not_resent(qdriver, make_kernel, aegis_project):
    path = aegis_project / ".aegis" / "state" / "queues" / "tests.jsonl"
    path.parent.mkdir(parents=True)
    recs = [{"v": 1, "event": "enqueued", "task_id": "t1", "queue": "tests", "payload": "x", "producer": "gone-worker",
             "enqueued_by": "agent:gone-worker", "callback": True, "at": "2026-11-01T00:00:00Z"},
            {"v": 1, "event": "dispatched", "task_id": "t1", "worker": "w1", "at": "2026-11-01T00:00:01Z"},
            {"v": 1, "event": "completed", "task_id": "t1", "result": "r", "callback_envelope": "e1",
             "at": "2026-11-01T00:00:02Z"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    async with make_kernel() as kernel:
        task = kernel.service(QueueRuntime).tasks["t1"]
        assert task.status == "completed" and task.callback_outcome is None
    # a worker keeps no inbox ledger, so nothing says whether it got the callback: nothing is claimed
    assert [r["event"] for r in records(aegis_project, "tests")] == ["enqueued", "dispatched", "completed"]


@pytest.mark.trio
async def test_an_archive_that_cannot_finish_leaves_no_copy(qdriver, make_kernel, archivable, monkeypatch):
    import aegis_kernel.journal as journal

    path = archivable
    text = path.read_text()
    real, calls = journal.write_text_atomic, []

    def failing_second_write(target, data):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(target, data)

    monkeypatch.setattr(journal, "write_text_atomic", failing_second_write)
    async with make_kernel() as kernel:
        assert kernel.service(QueueRuntime).queue_info("tests")["completed"] == 3
    assert path.read_text() == text
    assert not any((path.parent / "archive").iterdir())
