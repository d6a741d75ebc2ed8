"""Durable runs in process: a kernel stops while a run waits for a person; the next kernel resumes it
from its journal (no second spawn, send or bash; the agent reopened in its own conversation); a
replay that diverges fails naming the step."""

from __future__ import annotations

import json

import pytest
import wkit
from wkit import finished, journal, runtime, until


@pytest.mark.trio
async def test_a_run_resumed_by_the_next_kernel_redoes_nothing(flows, make_kernel, aegis_project):
    target = aegis_project / "lines.txt"
    async with make_kernel() as kernel:
        rt = runtime(kernel)
        run = rt.start_run("two_sends", {"path": str(target)})
        await until(lambda: run.question, "the question")
        assert run.question == {"question": "go on?", "options": ["yes", "no"]}
        handle = next(r["result"]["handle"] for r in journal(aegis_project, run.id) if r.get("verb") == "spawn")
        dsid = kernel.sessions.get(handle).driver_session_id
        assert dsid
        run_id = run.id
    # the kernel stopped with the run in flight: nothing says it finished
    assert not [r for r in journal(aegis_project, run_id) if r["event"] == "finished"]

    async with make_kernel() as kernel:
        rt = runtime(kernel)
        run = rt.get(run_id)
        await until(lambda: run.question, "the question asked again after the restart")
        session = kernel.sessions.get(handle)
        assert session is not None and session.driver_session_id == dsid  # reopened, not a fresh agent
        rt.answer(run, "1")
        await finished(run)
        assert run.status == "ok", run.error
        assert run.result == "first answer | second answer | yes | third answer"
        assert run.replayed == 4  # spawn, two sends, bash answered by the journal
    assert target.read_text() == "line\n"
    records = journal(aegis_project, run_id)
    steps = [r["verb"] for r in records if r["event"] == "step"]
    assert steps == ["spawn", "send", "send", "bash", "ask_human", "send"]  # each once
    # the agent's own conversation went on: one scripted session, holding all three turns in order
    scripted = aegis_project / ".aegis" / "state" / "scripted"
    assert [p.name for p in scripted.glob("*.json")] == [f"{dsid}.json"]
    history = json.loads((scripted / f"{dsid}.json").read_text())["history"]
    assert [h["text"] for h in history if h["role"] == "agent"] == ["first answer", "second answer", "third answer"]
    closed = [r for r in records if r["event"] == "session" and r.get("closed")]
    assert closed and closed[-1]["driver_session_id"] == dsid


@pytest.mark.trio
async def test_a_replay_that_diverges_fails_naming_the_step(flows, make_kernel, aegis_project):
    wkit.MODE["echo"] = "a"
    try:
        async with make_kernel() as kernel:
            run = runtime(kernel).start_run("shifty")
            await until(lambda: run.question, "the question")
            run_id = run.id
        wkit.MODE["echo"] = "b"  # the code changed while the run was in flight
        async with make_kernel() as kernel:
            run = runtime(kernel).get(run_id)
            await finished(run)
    finally:
        wkit.MODE["echo"] = "a"
    assert run.status == "error"
    assert "replay diverged at step 0" in run.error
    assert "bash('echo a')" in run.error and "bash('echo b')" in run.error


@pytest.mark.trio
async def test_checkpoints_and_resume_state_replay_the_same(flows, kernel, aegis_project):
    run = runtime(kernel).start_run("steps", {"n": 3})
    await finished(run)
    assert run.status == "ok" and run.result == [0, 1, 2]


@pytest.mark.trio
async def test_parallel_branches_replay_by_their_own_step_ids(flows, make_kernel, aegis_project):
    target = aegis_project / "fan.txt"
    async with make_kernel() as kernel:
        run = runtime(kernel).start_run("fan", {"path": str(target)})
        await until(lambda: run.question, "the pause")
        run_id = run.id
    async with make_kernel() as kernel:
        rt = runtime(kernel)
        run = rt.get(run_id)
        await until(lambda: run.question, "the pause after the restart")
        rt.answer(run, "go")
        await finished(run)
    assert run.status == "ok" and run.result == ["a", "b"]
    assert sorted(target.read_text().split()) == ["a", "b"]  # each branch's bash ran once
    ids = [r["step"] for r in journal(aegis_project, run_id) if r["event"] == "step"]
    assert sorted(ids) == ["0.0.0", "0.1.0", "1"]


@pytest.mark.trio
async def test_a_failing_branch_cancels_the_others_and_is_raised(flows, kernel):
    run = runtime(kernel).start_run("fan_fail")
    await finished(run)
    assert run.status == "ok" and run.result == "caught: branch failed"
    assert run.question is None


@pytest.mark.trio
async def test_old_finished_runs_are_archived_at_start(flows, make_kernel, aegis_project, monkeypatch):
    from aegis_workflow import runtime as rtmod

    monkeypatch.setattr(rtmod, "RECENT", 2)
    async with make_kernel() as kernel:
        runs = [runtime(kernel).start_run("steps", {"n": 1}) for _ in range(3)]
        for run in runs:
            await finished(run)
    async with make_kernel() as kernel:
        kept = set(runtime(kernel).runs)
    assert kept == {runs[1].id, runs[2].id}
    archived = aegis_project / ".aegis" / "state" / "workflows" / "runs" / "archive" / f"{runs[0].id}.jsonl"
    assert journal(aegis_project, runs[1].id) and archived.exists()
