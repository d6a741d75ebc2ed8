"""The TUI attached to a serve: what the serve already has, what other clients do, and who owns the project."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import tui_testkit
from tui_testkit import (ServeThread, blocks, make_app, make_project, new_agent_tab, ready, run, screen_text, send,
                         wait_until)

from aegis_kernel import client


def _call(serve: ServeThread, operation: str, **args: object) -> object:
    """One operation from another client (the CLI's blocking client), off the app's event loop."""
    return asyncio.to_thread(client.call, serve.kernel.state.root, operation, args)


def test_attaching_shows_the_serves_sessions_and_what_other_clients_do(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    serve = ServeThread(project).start()
    try:
        # the serve has a session with a finished turn before the TUI comes
        first = client.call(serve.kernel.state.root, "aegis_spawn", {"agent": "beta"})["handle"]
        client.call(serve.kernel.state.root, "aegis_send", {"handle": first, "text": "before you came"})

        async def body() -> None:
            from aegis_tui.app import AegisApp

            session = serve.kernel.sessions.get(first)
            while session.metrics.turns < 1:  # the serve's own thread answers; poll its state
                await asyncio.sleep(0.02)
            app = AegisApp(tui_testkit.make_kernel(project), attach=serve.socket)
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_until(pilot, lambda: app.kernel_ready and app.tabs, what="the serve's session as a tab")
                assert app.remote is not None
                tab = app.tabs[0]
                assert tab.label() == first and tab.session.profile_name == "beta"
                assert "assistant:fake reply to: before you came" in blocks(tab)  # its history
                await wait_until(pilot, lambda: "↑10k (90% cached) ↓50" in screen_text(app), what="its metrics")
                await wait_until(pilot, lambda: f"● 1 {first} ·beta·" in screen_text(app))

                # another client sends: the attached transcript streams it
                await _call(serve, "aegis_send", handle=first, text="slow 5")
                await wait_until(pilot, lambda: "assistant:fake reply to: slow 5" in blocks(tab) or
                                 any(b.startswith("assistant:tok0 tok1 tok2 tok3 tok4") for b in blocks(tab)),
                                 what="the other client's turn in the transcript")
                assert blocks(tab).count("assistant:fake reply to: before you came") == 1  # nothing doubled

                # another client renames it: the tab follows
                renamed = (await _call(serve, "aegis_rename", handle=first, new_handle="first-renamed"))["handle"]
                await wait_until(pilot, lambda: f"● 1 {renamed} ·beta·" in screen_text(app), what="the new name")
                await _call(serve, "aegis_send", handle=renamed, text="after the rename")
                await wait_until(pilot, lambda: "assistant:fake reply to: after the rename" in blocks(tab))

                # another client spawns: a new tab appears
                second = (await _call(serve, "aegis_spawn", agent="alpha"))["handle"]
                await wait_until(pilot, lambda: [t.label() for t in app.tabs] == [renamed, second],
                                 what="the new session's tab")
                await wait_until(pilot, lambda: app.tabs[1].session.state == "ready")

                # this TUI's own spawn opens in front; closing it closes the serve's session
                mine = await new_agent_tab(pilot)
                assert app.active_tab is mine
                handle = mine.session.handle
                await pilot.press("ctrl+w")
                await wait_until(pilot, lambda: serve.kernel.sessions.get(handle) is None, what="closed in the serve")

                await pilot.press("ctrl+q")
            assert app.return_code == 0
            assert app.detached_note == (f"aegis: detached; aegis serve (pid {os.getpid()}) keeps running "
                                         "2 session(s)")
            assert sorted(s.handle for s in serve.kernel.sessions) == sorted([renamed, second])

        run(body())
    finally:
        serve.stop()


def test_an_attached_tui_says_so_when_the_serve_stops(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    serve = ServeThread(project).start()
    try:
        async def body() -> None:
            from aegis_tui.app import AegisApp

            app = AegisApp(tui_testkit.make_kernel(project), attach=serve.socket)
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_until(pilot, lambda: app.kernel_ready)
                await _call(serve, "aegis_stop")
                await wait_until(pilot, lambda: app.return_code is not None, what="the app to exit")
            assert app.return_code == 1
            assert app.detached_note is None

        run(body())
    finally:
        serve.stop()


def test_aegis_serve_is_refused_while_a_tui_owns_the_project_and_the_cli_reaches_the_tui(tmp_path: Path) -> None:
    # a config the serve process can load too (its drivers are the installed ones): real scripted agents
    project = make_project(tmp_path, "default_agent: alpha\nplugins:\n  disabled: [mcp]\n"
                                     "agents:\n  alpha: {provider: scripted}\n")

    async def body() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            tab = await new_agent_tab(pilot)
            await send(pilot, "hi")
            await wait_until(pilot, lambda: "assistant:scripted reply to: hi" in blocks(tab))
            cmd = [sys.executable, "-m", "aegis_kernel.cli", "serve"]
            out = await asyncio.to_thread(subprocess.run, cmd, cwd=project, capture_output=True, text=True,
                                          timeout=60)
            assert out.returncode == 1
            assert f"the Aegis TUI (pid {os.getpid()}) already owns {project}" in out.stderr, out.stderr
            assert "attach another TUI with: aegis" in out.stderr
            sessions = await asyncio.to_thread(client.call, app.kernel.state.root, "aegis_sessions")
            assert [s["handle"] for s in sessions] == [tab.session.handle]  # one copy: the TUI's
            await pilot.press("ctrl+q")

    run(body())
