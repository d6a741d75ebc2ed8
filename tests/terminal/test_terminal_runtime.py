"""Terminal operations in one kernel (agents on the in-memory driver): wake-ups, first-come-first-served
runs, timeouts and interrupts, closing that never hangs, restarts, confinement, the screen."""

from __future__ import annotations


import json

import pytest
import trio
from terminal_testkit import agent, call, finished, ledger, pid_alive, wait_until, wakeups

from aegis_kernel import OperationError
from aegis_terminal.ptyproc import session_groups
from aegis_terminal.runtime import TerminalRuntime

pytestmark = pytest.mark.trio


def term(kernel, name):
    return kernel.service(TerminalRuntime).terminals[name]


async def test_each_finished_command_wakes_every_subscriber_but_its_runner(fake, kernel):
    pm, builder = await agent(kernel, "pm"), await agent(kernel, "builder")
    await call(kernel, "aegis_term_spawn", "pm", name="build", shell="bash", from_handle="pm")
    await call(kernel, "aegis_term_subscribe", "pm", name="build", from_handle="pm")
    await call(kernel, "aegis_term_subscribe", "builder", name="build")
    rec = await call(kernel, "aegis_term_run", "builder", name="build", cmd="printf 'six passed\\n'", timeout_s=60)
    assert rec["who"] == "agent:builder" and rec["exit"] == 0
    [env] = await wait_until(lambda: wakeups(pm, "build"))
    head, _, tail = env.body.partition("\n──\n")
    lines = head.splitlines()
    assert lines[0] == "$ printf 'six passed\\n' · run by agent:builder"
    assert lines[1].startswith("exit 0 · ") and lines[1].endswith("s")
    assert tail == "six passed"
    assert wakeups(builder) == []  # the runner is not woken by its own command
    # the user's command wakes both agents
    await call(kernel, "aegis_term_run", name="build", cmd="(exit 9)", timeout_s=60)
    await wait_until(lambda: len(wakeups(pm)) == 2 and len(wakeups(builder)) == 1)
    assert wakeups(builder)[0].body.splitlines()[:2][1].startswith("exit 9 · ")
    assert [r["exit"] for r in finished(kernel, "build")] == [0, 9]
    await call(kernel, "aegis_term_unsubscribe", "builder", name="build")
    await call(kernel, "aegis_term_run", "pm", name="build", cmd="true", timeout_s=60)
    await trio.testing.wait_all_tasks_blocked()
    assert len(wakeups(builder)) == 1 and len(wakeups(pm)) == 2  # pm ran it; builder left


async def test_runs_are_served_first_come_first_served_and_a_timeout_keeps_the_turn(fake, kernel):
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    slow = await call(kernel, "aegis_term_run", name="t", cmd="sleep 30", timeout_s=0.5)
    assert slow["timed_out"] is True and slow["running"] is True and slow["seq"] == 1
    assert "still running" in slow["message"] and "ctrl-c" in slow["message"]
    results: list[dict] = []

    async def run(cmd):
        results.append(await call(kernel, "aegis_term_run", name="t", cmd=cmd, timeout_s=60))

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(run, f"echo {i}")
            await trio.testing.wait_all_tasks_blocked()
        assert results == []  # all three wait behind the timed-out command
        await call(kernel, "aegis_term_keys", name="t", keys="ctrl-c")
    assert [(r["seq"], r["output"]) for r in results] == [(2, "0"), (3, "1"), (4, "2")]
    assert finished(kernel, "t")[0]["cmd"] == "sleep 30" and finished(kernel, "t")[0]["exit"] == 130


async def test_a_run_that_cannot_get_the_terminal_says_it_did_not_run(fake, kernel):
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    await call(kernel, "aegis_term_keys", name="t", keys="sleep 30{enter}")
    await wait_until(lambda: term(kernel, "t").current is not None)
    out = await call(kernel, "aegis_term_run", name="t", cmd="echo never", timeout_s=0.3)
    assert (out["timed_out"], out["running"], out["seq"]) == (True, False, None)
    assert "not run" in out["message"] and "sleep 30" in out["message"]
    await call(kernel, "aegis_term_keys", name="t", keys="ctrl-c")
    after = await call(kernel, "aegis_term_run", name="t", cmd="echo now", timeout_s=60)
    assert (after["seq"], after["output"]) == (2, "now")  # 'echo never' was never typed


async def test_close_ends_a_child_that_ignores_sighup_and_never_hangs(fake, kernel):
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    pid = term(kernel, "t").proc.pid
    await call(kernel, "aegis_term_keys", name="t",
               keys="trap '' HUP TERM; sh -c 'trap \"\" HUP TERM; sleep 1000' & sleep 1000{enter}")
    await wait_until(lambda: term(kernel, "t").current is not None and len(session_groups(pid)) >= 2)
    out = await call(kernel, "aegis_term_close", name="t")
    assert out["closed"] is True
    # nothing is left alive in its session (a killed process may take a moment to be reaped under load)
    await wait_until(lambda: session_groups(pid) == set() and not pid_alive(pid))
    [rec] = finished(kernel, "t")
    assert rec["status"] == "closed" and rec["cmd"].endswith("sleep 1000")
    with pytest.raises(OperationError, match="not running"):
        await call(kernel, "aegis_term_run", name="t", cmd="true")
    assert (await call(kernel, "aegis_term_list"))["terminals"][0]["state"] == "closed"


async def test_a_shell_that_exits_ends_its_command_with_the_shell_status(fake, kernel):
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    out = await call(kernel, "aegis_term_run", name="t", cmd="printf 'bye\\n'; exit 3", timeout_s=60)
    assert (out["exit"], out["status"], out["output"]) == (3, "shell_exited", "bye\nexit")
    assert term(kernel, "t").open is False
    again = await call(kernel, "aegis_term_spawn", name="t")
    assert again["created"] is True and again["seq"] == 1
    assert (await call(kernel, "aegis_term_run", name="t", cmd="echo back", timeout_s=60))["seq"] == 2


async def test_stopping_the_kernel_closes_every_shell(fake, make_kernel):
    async with make_kernel() as kernel:
        await call(kernel, "aegis_term_spawn", name="t", shell="bash")
        pid = term(kernel, "t").proc.pid
        await call(kernel, "aegis_term_keys", name="t", keys="trap '' HUP; sleep 1000{enter}")
        await wait_until(lambda: term(kernel, "t").current is not None)
    assert not pid_alive(pid) and session_groups(pid) == set()


async def test_after_a_restart_running_commands_are_killed_by_restart_and_seq_goes_on(fake, make_kernel):
    async with make_kernel() as kernel:
        a = await agent(kernel, "pm")
        await call(kernel, "aegis_term_spawn", name="build", shell="bash")
        await call(kernel, "aegis_term_subscribe", name="build", from_handle=a.handle)
        await call(kernel, "aegis_term_run", name="build", cmd="echo one", timeout_s=60)
        await call(kernel, "aegis_term_keys", name="build", keys="sleep 1000{enter}")
        await wait_until(lambda: term(kernel, "build").current is not None)
    # stopping the kernel closed the shell and recorded the running command
    recs = finished(kernel, "build")
    assert [(r["seq"], r["cmd"], r["status"]) for r in recs] == [(1, "echo one", "ok"),
                                                                 (2, "sleep 1000", "killed_by_restart")]
    async with make_kernel() as kernel:
        listed = (await call(kernel, "aegis_term_list"))["terminals"]
        assert [(t["terminal"], t["state"], t["seq"], t["subscribers"]) for t in listed] == [
            ("build", "closed", 2, ["pm"])]
        read = await call(kernel, "aegis_term_read", name="build", last_n=5)
        assert [c["seq"] for c in read["commands"]] == [1, 2]
        await call(kernel, "aegis_term_spawn", name="build")  # re-spawned with its history
        assert (await call(kernel, "aegis_term_run", name="build", cmd="echo three", timeout_s=60))["seq"] == 3


async def test_a_command_left_running_by_a_crash_is_marked_killed_by_restart(fake, make_kernel, aegis_project):
    # what kill -9 leaves: the command started, no end, no close
    path = aegis_project / ".aegis" / "state" / "terminals" / "build" / "ledger.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"v": 1, "event": "spawned", "terminal": "build", "at": "2026-12-05T10:00:00Z", "shell": "/bin/bash",
         "cwd": str(aegis_project), "by": "user", "pid": 1},
        {"v": 1, "event": "started", "terminal": "build", "at": "2026-12-05T10:00:01Z", "seq": 7,
         "cmd": "make all", "who": "agent:builder"}]) + '{"v": 1, "event": "fini')  # and a torn last line
    async with make_kernel() as kernel:
        [rec] = finished(kernel, "build")
        assert (rec["seq"], rec["cmd"], rec["who"], rec["status"]) == (7, "make all", "agent:builder",
                                                                       "killed_by_restart")
        assert (await call(kernel, "aegis_term_list"))["terminals"][0]["state"] == "closed"
        await call(kernel, "aegis_term_spawn", name="build")
        assert (await call(kernel, "aegis_term_run", name="build", cmd="true", timeout_s=60))["seq"] == 8


async def test_agents_stay_inside_the_project_and_the_user_may_leave_it(fake, kernel, tmp_path):
    a = await agent(kernel)
    (kernel.project_dir / "sub").mkdir()
    with pytest.raises(OperationError, match="outside the project"):
        await call(kernel, "aegis_term_spawn", a.handle, name="t", cwd="..")
    ok = await call(kernel, "aegis_term_spawn", a.handle, name="t", cwd="sub", shell="bash")
    assert ok["cwd"] == str((kernel.project_dir / "sub").resolve())
    mine = await call(kernel, "aegis_term_spawn", name="u", cwd=str(tmp_path), shell="bash")
    assert mine["cwd"] == str(tmp_path.resolve())
    with pytest.raises(OperationError, match="invalid terminal name"):
        await call(kernel, "aegis_term_spawn", name="../x")


async def test_the_screen_is_what_a_person_sees_full_screen_programs_included(fake, kernel, tmp_path):
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    await call(kernel, "aegis_term_resize", name="t", rows=10, cols=40)
    await call(kernel, "aegis_term_run", name="t", cmd="echo hello-screen", timeout_s=60)
    screen = await call(kernel, "aegis_term_screen", name="t")
    assert "hello-screen" in screen["text"] and (screen["rows"], screen["cols"]) == (10, 40)
    (tmp_path / "f.txt").write_text("".join(f"file line {i}\n" for i in range(100)))
    await call(kernel, "aegis_term_keys", name="t", keys=f"less {tmp_path / 'f.txt'}{{enter}}")

    async def shows(text):
        with trio.fail_after(30):
            while text not in (await call(kernel, "aegis_term_screen", name="t"))["text"]:
                await trio.sleep(0.02)

    await shows("file line 8")
    text = (await call(kernel, "aegis_term_screen", name="t"))["text"]
    assert text.splitlines()[0] == "file line 0" and "hello-screen" not in text  # the alternate screen
    await call(kernel, "aegis_term_keys", name="t", keys="q")
    await wait_until(lambda: len(term(kernel, "t").history) == 2 and term(kernel, "t").idle)
    assert term(kernel, "t").history[-1]["exit"] == 0
    after = await call(kernel, "aegis_term_screen", name="t")
    assert after["text"].rstrip().endswith(("$", "#"))  # back at the prompt


async def test_the_raw_log_keeps_every_byte_and_one_older_log_beyond_its_limit(fake, kernel, monkeypatch):
    import aegis_terminal.runtime as runtime_mod

    monkeypatch.setattr(runtime_mod, "RAW_LOG_MAX", 4096)
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    folder = kernel.state.root / "terminals" / "t"
    await call(kernel, "aegis_term_run", name="t", cmd="printf 'marker-%d\\n' $(seq 1 1000)", timeout_s=60)
    await call(kernel, "aegis_term_close", name="t")
    await wait_until(lambda: (folder / "raw.log.1").exists() and b"marker-1000" in (
        (folder / "raw.log.1").read_bytes() + (folder / "raw.log").read_bytes()))
    assert (folder / "raw.log").stat().st_mode & 0o777 == 0o600


async def test_an_agent_below_full_permission_runs_a_command_only_once_a_person_approves(fake, kernel):
    careful = await kernel.sessions.spawn("careful", handle="careful")
    await careful.wait_for(lambda s: s.state == "ready")
    await call(kernel, "aegis_term_spawn", name="build", shell="bash")  # the user: no approval
    results: list = []

    async def run(cmd: str) -> None:
        try:
            results.append(await call(kernel, "aegis_term_run", "careful", name="build", cmd=cmd, timeout_s=60))
        except OperationError as err:
            results.append(err)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "echo approved")
        await careful.wait_for(lambda s: s.state == "input-required")
        assert careful.pending_permission.summary.endswith("echo approved?")
        assert finished(kernel, "build") == []  # held: nothing ran yet
        await call(kernel, "aegis_approve", handle="careful")
    assert results[0]["exit"] == 0 and results[0]["who"] == "agent:careful"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "echo refused")
        await careful.wait_for(lambda s: s.state == "input-required")
        await call(kernel, "aegis_deny", handle="careful")
    assert results[1].code == "forbidden"
    await run("rm -rf build")  # a deny pattern of the profile refuses without asking anyone
    assert results[2].code == "forbidden" and "denies running" in results[2].message
    assert [r["cmd"] for r in finished(kernel, "build")] == ["echo approved"]
