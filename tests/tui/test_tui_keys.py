"""Pilot tests for every key of the TUI (in-memory agents; Textual on asyncio, the kernel as a trio guest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import events
from textual.binding import Binding
from tui_testkit import (blocks, make_app, make_project, new_agent_tab, owner_kernel, ready, run, screen_text, send,
                         wait_until)

from aegis_tui.config_panel import AddAgentForm, ConfigPanel
from aegis_tui.dialogs import AgentPicker, Confirm, FilePicker
from aegis_tui.fileview import FileView


def test_ctrl_t_opens_the_default_agent_and_enter_sends(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            assert tab.session.profile_name == "alpha"
            await send(pilot, "hello there")
            await wait_until(pilot, lambda: "assistant:fake reply to: hello there" in blocks(tab))
            assert blocks(tab)[0] == "user:hello there"
            await wait_until(pilot, lambda: "fake reply to: hello there" in screen_text(app))
            await wait_until(pilot, lambda: "↑10k (90% cached) ↓50" in screen_text(app))  # honest metrics
            await wait_until(pilot, lambda: f"● 1 {tab.session.handle} ·alpha·" in screen_text(app))
            assert app.prompt.text == ""
            await pilot.press("ctrl+q")
        assert app.return_code == 0
        processes = owner_kernel(app).plugins.registry.objects("drivers")["tfake"].processes
        if tui_mode == "owning":
            assert all(p.closed for p in processes)
            assert app.detached_note is None
        else:  # quitting an attached TUI leaves the serve and its agent running, and says so
            assert len(processes) == 1 and not processes[0].closed
            assert owner_kernel(app).sessions.get(tab.session.handle).state == "ready"
            assert app.detached_note == f"aegis: detached; aegis serve (pid {os.getpid()}) keeps running 1 session(s)"

    run(body())


def test_ctrl_n_picks_an_agent(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await pilot.press("ctrl+n")
            await wait_until(pilot, lambda: isinstance(app.screen, AgentPicker))
            await pilot.press("down", "enter")
            await wait_until(pilot, lambda: app.tabs)
            tab = app.tabs[0]
            assert tab.session.profile_name == "beta"
            await wait_until(pilot, lambda: tab.session.state == "ready")
            await wait_until(pilot, lambda: "big-model·write" in screen_text(app))
            await pilot.press("ctrl+q")

    run(body())


def test_switching_and_reordering_tabs(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            a = await new_agent_tab(pilot)
            b = await new_agent_tab(pilot)
            c = await new_agent_tab(pilot)
            assert app.active_tab is c
            await pilot.press("ctrl+1")
            assert app.active_tab is a
            await pilot.press("ctrl+3")
            assert app.active_tab is c
            await pilot.press("alt+2")
            assert app.active_tab is b
            await pilot.press("ctrl+right")
            assert app.active_tab is c
            await pilot.press("ctrl+right")  # wraps around
            assert app.active_tab is a
            await pilot.press("ctrl+left")
            assert app.active_tab is c
            await pilot.press("ctrl+tab")
            assert app.active_tab is a
            await pilot.press("ctrl+shift+tab")
            assert app.active_tab is c
            await pilot.press("ctrl+9")  # no 9th tab: nothing happens
            assert app.active_tab is c
            await pilot.press("ctrl+shift+left")  # move c one to the left
            assert [t.session for t in app.tabs] == [a.session, c.session, b.session]
            assert app.active_tab is c
            await pilot.press("ctrl+shift+right")
            assert [t.session for t in app.tabs] == [a.session, b.session, c.session]
            await pilot.click("TabBar", offset=(3, 0))  # click the first cell
            assert app.active_tab is a
            await pilot.press("ctrl+q")

    run(body())


def test_moving_tabs_reorders_the_bar_indexes_and_number_keys(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            a = await new_agent_tab(pilot)
            b = await new_agent_tab(pilot)
            c = await new_agent_tab(pilot)

            def order() -> list[Any]:
                return [t.session for t in app.tabs]

            def bar_shows(*tabs: Any) -> bool:
                text = screen_text(app)
                return all(f" {i} {t.session.handle} ·" in text for i, t in enumerate(tabs, 1))

            # the last tab right, the first tab left: nothing moves (no wrap-around)
            await pilot.press("ctrl+shift+right", "alt+shift+right")
            assert order() == [a.session, b.session, c.session] and app.active_tab is c
            await pilot.press("ctrl+1", "ctrl+shift+left", "alt+shift+left")
            assert order() == [a.session, b.session, c.session] and app.active_tab is a

            await pilot.press("ctrl+shift+right")  # a one to the right: b a c, a still active
            assert order() == [b.session, a.session, c.session] and app.active_tab is a
            assert app.active == 1 and app.tab_bar.active == 1
            await wait_until(pilot, lambda: bar_shows(b, a, c), what="the bar's indexes to follow the order")
            await pilot.press("alt+shift+right")  # the alias: b c a
            assert order() == [b.session, c.session, a.session] and app.active_tab is a
            await wait_until(pilot, lambda: bar_shows(b, c, a))

            # the number keys follow the new order
            await pilot.press("ctrl+1")
            assert app.active_tab is b
            await pilot.press("alt+2")
            assert app.active_tab is c
            await pilot.press("ctrl+3")
            assert app.active_tab is a

            await pilot.press("ctrl+2", "alt+shift+left")  # c to the front: c b a
            assert order() == [c.session, b.session, a.session] and app.active_tab is c
            await wait_until(pilot, lambda: bar_shows(c, b, a))
            await pilot.press("ctrl+right")  # next/previous follow the order too
            assert app.active_tab is b
            await pilot.press("ctrl+q")
        assert app.return_code == 0

    run(body())


def test_move_keys_as_terminals_send_them_reach_the_bindings() -> None:
    """The bytes xterm-style terminals send for Ctrl+Shift+←/→ and Alt+Shift+←/→ parse to the bound keys
    (a Pilot press skips the parser)."""
    from textual._xterm_parser import XTermParser

    from aegis_tui.app import AegisApp

    bound = {key.strip(): b.action for b in AegisApp.BINDINGS if isinstance(b, Binding) for key in b.key.split(",")}
    for sequence, action in [("\x1b[1;6D", "move_tab(-1)"), ("\x1b[1;6C", "move_tab(1)"),
                             ("\x1b[1;4D", "move_tab(-1)"), ("\x1b[1;4C", "move_tab(1)")]:
        parser = XTermParser()
        keys = [e.key for e in [*parser.feed(sequence), *parser.feed("")] if isinstance(e, events.Key)]
        assert len(keys) == 1 and bound.get(keys[0]) == action, (sequence, keys)


def test_ctrl_w_closes_the_tab_and_the_last_one_quits(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            a = await new_agent_tab(pilot)
            b = await new_agent_tab(pilot)
            session_b = b.session
            await pilot.press("ctrl+w")
            await wait_until(pilot, lambda: session_b.state == "closed", what="b closed")
            assert app.tabs == [a]
            await wait_until(pilot, lambda: owner_kernel(app).sessions.get(session_b.handle) is None)
            await pilot.press("ctrl+w")
            await wait_until(pilot, lambda: app.return_code is not None, what="the app to quit")
        assert app.return_code == 0

    run(body())


def test_escape_interrupts_and_input_is_queued_behind_a_turn(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            await send(pilot, "hang")
            await wait_until(pilot, lambda: tab.session.state == "working")
            await wait_until(pilot, lambda: "Working… (" in screen_text(app), what="the working indicator")
            await send(pilot, "after the turn")  # queued behind the running turn
            await wait_until(pilot, lambda: tab.session.pending_count == 1)
            await pilot.press("escape")
            await wait_until(pilot, lambda: "notice:⊘ interrupted" in blocks(tab), what="interrupted")
            await wait_until(pilot, lambda: "assistant:fake reply to: after the turn" in blocks(tab))
            await pilot.press("ctrl+q")

    run(body())


def test_shift_enter_newline_and_history(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            await pilot.press("o", "n", "e")
            await pilot.press("shift+enter")
            await pilot.press("t", "w", "o")
            assert app.prompt.text == "one\ntwo"
            await pilot.press("enter")
            await wait_until(pilot, lambda: "user:one\ntwo" in blocks(tab))
            await send(pilot, "second")
            await pilot.press("x")
            await pilot.press("up")
            assert app.prompt.text == "second"
            await pilot.press("up")
            assert app.prompt.text == "one\ntwo"
            await pilot.press("down")
            assert app.prompt.text == "second"
            await pilot.press("down")
            assert app.prompt.text == "x"  # the draft comes back
            await pilot.press("ctrl+q")

    run(body())


def test_y_n_a_answer_a_pending_approval(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        bells: list[int] = []
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            session = tab.session
            await send(pilot, "ask")
            await wait_until(pilot, lambda: session.state == "input-required")
            await wait_until(pilot, lambda: "asks to run Bash(rm -rf build)" in screen_text(app))
            await wait_until(pilot, lambda: "◉ 1" in screen_text(app))
            await pilot.press("n")
            await wait_until(pilot, lambda: "assistant:denied" in blocks(tab))
            assert any(b.startswith("permission:⚠ approval needed: Bash(rm -rf build)") and b.endswith("✗ denied")
                       for b in blocks(tab))
            assert app.prompt.text == ""  # the key answered, it was not typed
            await send(pilot, "ask")
            await wait_until(pilot, lambda: session.state == "input-required")
            await pilot.press("y")
            await wait_until(pilot, lambda: "assistant:allowed" in blocks(tab))
            # a background tab that needs input gets a sticky * and a bell
            other = await new_agent_tab(pilot)
            assert app.active_tab is other
            app.run_op("aegis_send", handle=session.handle, text="ask")
            await wait_until(pilot, lambda: tab.star and bells, what="star and bell")
            await wait_until(pilot, lambda: f"{session.handle} ·alpha· *" in screen_text(app))
            await pilot.press("ctrl+1")
            assert not tab.star
            await pilot.press("a")
            await wait_until(pilot, lambda: blocks(tab)[-1] == "assistant:allowed")
            await pilot.press("ctrl+q")

    run(body())


def test_background_tab_that_finishes_gets_a_star_and_a_bell(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        bells: list[int] = []
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            first = await new_agent_tab(pilot)
            await send(pilot, "slow 300")
            await new_agent_tab(pilot)
            await wait_until(pilot, lambda: first.star, what="the star")
            assert bells
            await pilot.press("ctrl+1")
            assert not first.star
            await pilot.press("ctrl+q")

    run(body())


def test_transcript_blocks_and_click_to_copy(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            await send(pilot, "tool")
            await wait_until(pilot, lambda: tab.session.metrics.turns == 1)
            shown = ("The retry path is in _run_turn.", "› tool", "✻ thinking · 6 words", "⏺ Read(worker.py)", "└ ok")
            await wait_until(pilot, lambda: all(part in screen_text(app) for part in shown),
                             what="the turn's blocks on screen")
            # the status bar redraws on its own tick: wait for it (asserting at once raced it)
            await wait_until(pilot, lambda: "⚒ 1" in screen_text(app), what="the tool count in the status bar")
            # click on the tool block copies it
            transcript = tab.widget.transcript
            row = next(i for i in range(40) if (b := transcript.block_at(i)) is not None and b.kind == "tool")
            await pilot.click(transcript, offset=(5, row))
            await wait_until(pilot, lambda: app.clipboard == "⏺ Read(worker.py)\nok\nline 2", what="the copy")
            # click on the thinking block expands it
            row = next(i for i in range(40) if (b := transcript.block_at(i)) is not None and b.kind == "thinking")
            await pilot.click(transcript, offset=(5, row))
            await wait_until(pilot, lambda: "✻ let me look at the file" in screen_text(app))
            await pilot.press("ctrl+q")

    run(body())


def test_ctrl_o_picks_a_file_and_the_file_tab_edits_and_saves(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = make_project(tmp_path)
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: "src/worker.py" in app.files, what="the index")
            await pilot.press("ctrl+o")
            await wait_until(pilot, lambda: isinstance(app.screen, FilePicker))
            await pilot.press("w", "r", "k")
            await pilot.pause(0.05)
            options = app.screen.query_one("OptionList")
            assert options.get_option_at_index(options.highlighted).id == "src/worker.py"  # top match preselected
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "file")
            view = app.active_tab.widget
            assert isinstance(view, FileView)
            await wait_until(pilot, lambda: "def _run_turn():" in screen_text(app))
            await pilot.press("e")
            assert view.editing
            await pilot.press("end", "#", "x")
            assert view.dirty
            await wait_until(pilot, lambda: "worker.py +" in screen_text(app), what="the dirty mark")
            await pilot.press("ctrl+s")
            assert (project / "src" / "worker.py").read_text().startswith("def _run_turn():#x\n")
            assert not view.dirty
            await pilot.press("y")
            assert view.dirty
            await pilot.press("escape")  # unsaved edits: asks
            await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("k")  # keep editing
            assert view.editing and view.dirty
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("d")  # discard
            await wait_until(pilot, lambda: not view.editing)
            assert (project / "src" / "worker.py").read_text().startswith("def _run_turn():#x\n")
            await pilot.press("ctrl+q")

    run(body())


def test_f2_config_panel_adds_an_agent_through_the_validated_form(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = make_project(tmp_path)
        app = make_app(project)
        async with app.run_test(size=(120, 50)) as pilot:
            await ready(pilot)
            await pilot.press("f2")
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "config")
            assert isinstance(app.active_tab.widget, ConfigPanel)
            await wait_until(pilot, lambda: "2 configured · default: alpha" in screen_text(app))
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, AddAgentForm))
            await pilot.press(*"Bad Name")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "✗ the agent name must be" in screen_text(app))
            app.screen.query_one("#f-name").value = "alpha"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "already exists" in screen_text(app))
            app.screen.query_one("#f-name").value = "gamma"
            app.screen.query_one("#f-provider").value = "tfake"
            app.screen.query_one("#f-model").value = "m-1"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: not isinstance(app.screen, AddAgentForm))
            text = (project / ".aegis.yaml").read_text()
            assert "gamma:" in text and "provider: tfake" in text and "model: m-1" in text
            assert "# " not in text or text.startswith("default_agent")  # file kept its shape
            assert "gamma" in app.kernel.config.get("agents")
            assert "gamma" in owner_kernel(app).config.get("agents")  # the kernel that spawns has it at once
            await wait_until(pilot, lambda: "3 configured" in screen_text(app))
            await pilot.press("ctrl+q")

    run(body())


def test_no_config_opens_the_config_panel_with_a_prompt(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = make_project(tmp_path, config=None)
        app = make_app(project)
        async with app.run_test(size=(120, 50)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "config")
            await wait_until(pilot, lambda: "press a to add your first agent" in screen_text(app))
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, AddAgentForm))
            app.screen.query_one("#f-name").value = "main"
            app.screen.query_one("#f-provider").value = "tfake"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: (project / ".aegis.yaml").exists())
            text = (project / ".aegis.yaml").read_text()
            assert "main:" in text and "default_agent: main" in text
            tab = await new_agent_tab(pilot)
            assert tab.session.profile_name == "main"
            await pilot.press("ctrl+q")

    run(body())


def test_ctrl_d_dashboard_and_hello_panel_come_from_plugins(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        config = "default_agent: alpha\nplugins:\n  disabled: [mcp]\nagents:\n  alpha: {provider: tfake}\n" \
                 "queues:\n  tests: {agent: alpha, max_parallel: 2}\n"
        app = make_app(make_project(tmp_path, config))
        panels = app.kernel.plugins.registry.objects("panels")
        assert {"queue-strip", "queue-dashboard", "hello"} <= set(panels)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: "queues: tests ●0/2 ○0 ✓0 ✗0" in screen_text(app), what="the strip")
            app.run_op("aegis_enqueue", queue="tests", payload="hang")
            await wait_until(pilot, lambda: "queues: tests ●1/2 ○0 ✓0 ✗0" in screen_text(app), what="a task")
            await pilot.press("ctrl+d")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "Dashboard")
            await wait_until(pilot, lambda: "IN-FLIGHT" in screen_text(app))
            row = "tests            alpha          ●1/2 ○0 ✓0 ✗0 ⊘0"
            await wait_until(pilot, lambda: row in screen_text(app) and "s  hang" in screen_text(app),
                             what="the queue and its task in the dashboard")
            # one dashboard: the workflow and scheduler plugins' bands sit under the queue's
            await wait_until(pilot, lambda: "no workflow runs" in screen_text(app)
                             and "no schedules" in screen_text(app), what="the WORKFLOWS and SCHEDULES bands")
            text = screen_text(app)
            assert text.index("QUEUES") < text.index("SCHEDULES") and "WORKFLOWS" in text
            await pilot.press("ctrl+d")  # toggles closed
            await wait_until(pilot, lambda: type(app.screen).__name__ != "Dashboard")
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "panel")
            await wait_until(pilot, lambda: "Hello, from a plugin panel!" in screen_text(app))
            await pilot.press("ctrl+q")

    run(body())


def test_ctrl_q_quits_while_an_agent_streams(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            await send(pilot, "slow 100000")
            await wait_until(pilot, lambda: tab.session.metrics.streaming and "~↑" in screen_text(app))
            await pilot.press("ctrl+q")
            await wait_until(pilot, lambda: app.return_code is not None)
        assert app.return_code == 0
        assert app._guest_done is not None and app._guest_done.done()
        if tui_mode == "owning":
            assert tab.session.state == "closed"
        else:  # the serve's agent goes on streaming
            assert owner_kernel(app).sessions.get(tab.session.handle).state == "working"

    run(body())
