"""Session persistence, --clean, a corrupt workspace, SIGTERM, a hung agent, and real scripted agents."""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from pathlib import Path

from aegis_kernel.testing import pids_mentioning
from tui_testkit import (CONFIG, ServeThread, TDriver, blocks, make_app, make_project, new_agent_tab, owner_kernel,
                         ready, run, screen_text, send, wait_until)

from aegis_tui.dialogs import Confirm


def test_reopening_restores_tabs_in_order_and_resumes_sessions(tmp_path: Path) -> None:
    project = make_project(tmp_path)

    async def first() -> tuple[list[str], str]:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            a = await new_agent_tab(pilot)
            await send(pilot, "remember me")
            await wait_until(pilot, lambda: "assistant:fake reply to: remember me" in blocks(a))
            await pilot.press("ctrl+n")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "AgentPicker")
            await pilot.press("down", "enter")
            await wait_until(pilot, lambda: len(app.tabs) == 2 and app.tabs[1].session.state == "ready")
            await app.open_file_tab(project / "README.md")
            await pilot.press("ctrl+2", "ctrl+shift+left")  # beta first
            handles = [t.label() for t in app.tabs]
            sid = a.session.driver_session_id
            await pilot.press("ctrl+q")
        assert app.return_code == 0
        saved = json.loads((project / ".aegis/state/workspace.json").read_text())
        assert [t["kind"] for t in saved["tabs"]] == ["agent", "agent", "file"]
        return handles, sid

    handles, sid = run(first())

    async def second() -> None:
        driver = TDriver()
        app = make_app(project, driver)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: len(app.tabs) == 3, what="tabs restored")
            assert [t.label() for t in app.tabs] == handles
            assert app.tabs[2].kind == "file"
            alpha = app.tabs[1]
            assert alpha.session.profile_name == "alpha"
            assert "user:remember me" in blocks(alpha)  # the transcript came back
            await wait_until(pilot, lambda: alpha.session.state == "ready")
            assert sid in [p.session_id for p in driver.processes]  # the driver resumed the same session
            await pilot.press("ctrl+2")
            await send(pilot, "again")
            await wait_until(pilot, lambda: "assistant:fake reply to: again" in blocks(alpha))
            assert blocks(alpha).count("user:remember me") == 1
            await pilot.press("ctrl+q")

    run(second())

    async def clean() -> None:
        app = make_app(project, clean=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            assert app.tabs == []
            assert list(app.kernel.sessions) == []
            await wait_until(pilot, lambda: "Ctrl+T new agent" in screen_text(app))
            await pilot.press("ctrl+q")

    run(clean())


def test_moved_tabs_are_saved_and_reopen_in_their_new_order(tmp_path: Path, tui_mode: str) -> None:
    project = make_project(tmp_path)
    saved_path = project / ".aegis/state/workspace.json"

    def saved() -> dict:
        try:
            return json.loads(saved_path.read_text())
        except (OSError, ValueError):
            return {}

    def saved_order() -> list[str]:
        return [r.get("handle", r.get("path")) for r in saved().get("tabs", [])]

    async def first() -> list[str]:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            a = await new_agent_tab(pilot)
            b = await new_agent_tab(pilot)
            await app.open_file_tab(project / "README.md")  # a b README.md, the file active
            await pilot.press("ctrl+shift+left", "alt+shift+left")  # the file to the front: README.md a b
            await pilot.press("ctrl+2")
            await wait_until(pilot, lambda: saved_order() == ["README.md", a.session.handle, b.session.handle]
                             and saved().get("active") == 1, what="the switch saved")
            await pilot.press("ctrl+shift+right")  # a to the end: README.md b a, a active
            order = [t.label() for t in app.tabs]
            assert order == ["README.md", b.session.handle, a.session.handle]
            # saved when the tabs move (not only on quit): a crash keeps the order
            await wait_until(pilot, lambda: saved_order() == order and saved().get("active") == 2,
                             what="the new order saved")
            await pilot.press("ctrl+q")
        assert app.return_code == 0
        return order

    order = run(first())

    async def second() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: len(app.tabs) == 3, what="tabs restored")
            assert [t.label() for t in app.tabs] == order
            await wait_until(pilot, lambda: app.active == 2, what="the moved tab active again")
            await wait_until(pilot, lambda: all(cell in screen_text(app) for cell in
                                                ("▤ 1 README.md", f" 2 {order[1]} ·", f" 3 {order[2]} ·")),
                             what="the bar's indexes in the restored order")
            await pilot.press("ctrl+1")
            assert app.active_tab.kind == "file"
            await pilot.press("ctrl+q")

    run(second())

def test_a_corrupt_workspace_gives_a_clear_message_and_a_way_out(tmp_path: Path, tui_mode: str) -> None:
    project = make_project(tmp_path)
    state = project / ".aegis" / "state"
    state.mkdir(parents=True)
    (state / "workspace.json").write_text("{not json")

    async def quit_() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
            await wait_until(pilot, lambda: "the saved workspace is unreadable" in screen_text(app))
            await wait_until(pilot, lambda: "corrupt JSON" in screen_text(app))
            await pilot.press("q")
            await wait_until(pilot, lambda: app.return_code is not None)
        assert app.return_code == 2
        assert app._guest_done is None  # the kernel never started

    run(quit_())

    async def fresh() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("s")
            await ready(pilot)
            await new_agent_tab(pilot)
            await pilot.press("ctrl+q")
        assert app.return_code == 0
        assert json.loads((state / "workspace.json").read_text())["v"] == 1
        assert list(state.glob("workspace.json.bad-*"))

    run(fresh())


def test_sigterm_quits_cleanly(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            await send(pilot, "hang")
            await wait_until(pilot, lambda: tab.session.state == "working")
            os.kill(os.getpid(), signal.SIGTERM)
            await wait_until(pilot, lambda: app.return_code is not None, what="exit on SIGTERM")
        assert app.return_code == 0
        if tui_mode == "owning":
            assert tab.session.state == "closed"
        else:  # SIGTERM detaches an attached TUI: the serve's agent goes on
            assert owner_kernel(app).sessions.get(tab.session.handle).state == "working"
            assert app.detached_note is not None

    run(body())


HUNG = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)  # {marker}"


def test_quitting_while_an_agent_hangs_leaves_no_process(tmp_path: Path) -> None:
    marker = f"aegis-hang-{uuid.uuid4().hex[:8]}"
    config = CONFIG + f"  stuck:\n    provider: scripted\n    command: [{json.dumps(sys.executable)}, '-c', " \
                      f"{json.dumps(HUNG.format(marker=marker))}]\n"
    project = make_project(tmp_path, config)

    async def body() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app.spawn_agent("stuck")
            await wait_until(pilot, lambda: pids_mentioning(marker), what="the hung agent process")
            assert app.tabs[0].session.state == "starting"
            await pilot.press("ctrl+q")  # quitting escalates to SIGKILL: it ends (a hang fails the wait)
            await wait_until(pilot, lambda: app.return_code is not None, timeout=60, what="quit")
        assert app.return_code == 0
        assert pids_mentioning(marker) == []

    run(body())


REAL = """\
default_agent: one
agents:
  one:
    provider: scripted
  two:
    provider: scripted
"""


def test_real_scripted_agents_handoff_and_view_file(tmp_path: Path, tui_mode: str) -> None:
    from aegis_kernel.kernel import build_kernel

    project = make_project(tmp_path, REAL)
    # attached: a serve with the real MCP plane runs the agents; the agent's aegis_view_file reaches this TUI
    serve = ServeThread(project, kernel=build_kernel(project)).start() if tui_mode == "attached" else None

    async def body() -> None:
        from aegis_tui.app import AegisApp

        app = AegisApp(build_kernel(project), attach=serve.socket if serve is not None else None)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.kernel_ready, timeout=20)
            two = await new_agent_tab(pilot)
            one = await new_agent_tab(pilot)
            call = json.dumps({"target_handle": two.session.handle, "context": "PR ready, please review"})
            await send(pilot, f"hand it over\n@call aegis_handoff {call}\n@reply done\n"
                              "@usage in=1200 out=80 cache_read=9000")
            await wait_until(pilot, lambda: any(b.startswith(f"envelope:✉ from agent:{one.session.handle} · ")
                                                for b in blocks(two)), timeout=30, what="the envelope")
            await wait_until(pilot, lambda: two.star, timeout=30, what="a star on the background tab")
            await wait_until(pilot, lambda: one.session.metrics.turns == 1, timeout=30)
            await wait_until(pilot, lambda: "⏺ aegis_handoff" in screen_text(app))
            assert any(b.startswith("tool:⏺ aegis_handoff") for b in blocks(one))
            await pilot.press("ctrl+1")
            await wait_until(pilot, lambda: f"✉ from agent:{one.session.handle}" in screen_text(app))
            await wait_until(pilot, lambda: "PR ready, please review" in screen_text(app))
            await pilot.press("ctrl+2")
            await send(pilot, '@call aegis_view_file {"path": "src/worker.py"}')
            await wait_until(pilot, lambda: app.active_tab.kind == "file", timeout=30, what="the file tab")
            assert app.active_tab.title == "worker.py"
            await pilot.press("ctrl+q")
        assert app.return_code == 0

    try:
        run(body())
        if serve is not None:  # detached: the serve's agents still run (one may still be finishing a turn)
            states = [s.state for s in serve.kernel.sessions]
            assert len(states) == 2 and set(states) <= {"ready", "working"}, states
    finally:
        if serve is not None:
            serve.stop()
    assert pids_mentioning(str(project / ".aegis" / "state" / "scripted")) == []
