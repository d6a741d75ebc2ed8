"""The TUI's terminal tab (Textual on asyncio with a stub of the operations; no kernel): a name opens
``term:<name>``; in run mode Enter runs the line and past commands show as blocks with exit code and
duration; Ctrl+K switches to raw mode (shown in the header), where keys go to the PTY in order and the
screen is the emulator's."""

from __future__ import annotations

import asyncio

import pytest

from aegis_terminal.tui import TerminalTab, key_text

pytest.importorskip("textual")


def test_textual_keys_map_to_terminal_keys():
    assert key_text("ctrl+c", None) == "{ctrl-c}"
    assert key_text("enter", "\r") == "{enter}"
    assert key_text("escape", "\x1b") == "{esc}"
    assert key_text("up", None) == "{up}"
    assert key_text("q", "q") == "q"
    assert key_text("left_curly_bracket", "{") == "{{"
    assert key_text("f5", None) == "{f5}"


class Ops:
    """What the tab calls: ``run_op(operation, then=…, **args)`` answered at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.records: list[dict] = []
        self.keys = ""
        self.screen = "$ "

    def run_op(self, operation, then=None, **args):
        self.calls.append((operation, args))
        out: dict = {}
        if operation == "aegis_term_spawn":
            out = {"terminal": args["name"], "state": "idle", "created": True}
        elif operation == "aegis_term_run":
            rec = {"seq": len(self.records) + 1, "cmd": args["cmd"], "who": "user", "exit": 0, "status": "ok",
                   "duration_s": 0.01, "output": "hi"}
            self.records.append(rec)
            out = rec
        elif operation == "aegis_term_read":
            out = {"terminal": args["name"], "commands": list(self.records), "running": None, "state": "idle"}
        elif operation == "aegis_term_keys":
            self.keys += args["keys"]
            out = {"sent": len(args["keys"])}
        elif operation == "aegis_term_list":
            out = {"terminals": [{"terminal": "build-agent"}, {"terminal": "db"}]}
        elif operation == "aegis_term_screen":
            out = {"text": self.screen, "state": "busy"}
        if then is not None:
            then(out)
        return True


async def wait_for(pilot, cond, deadline_s: float = 30.0) -> None:
    """Pause until ``cond()`` holds (fails only after a generous deadline)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not cond():
        assert loop.time() < end, "condition not reached"
        await pilot.pause(0.02)


def test_run_mode_blocks_then_raw_mode_keys_and_screen():
    from textual.app import App

    ops = Ops()

    class Host(App):
        """The TUI's seam, as the tab uses it: open_panel_tab(name, arg=…) and close_panel_tab(widget)."""

        opened: list = []

        def compose(self):
            yield TerminalTab(self)

        def run_op(self, operation, then=None, **args):
            return ops.run_op(operation, then, **args)

        async def open_panel_tab(self, name, *, arg=None, activate=True):
            self.opened.append((name, arg))
            tab = TerminalTab(self, arg)
            await self.mount(tab)
            return tab

        async def close_panel_tab(self, widget):
            await widget.remove()

    async def main() -> None:
        app = Host()
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert app.query_one("#term-name").placeholder.endswith("existing: build-agent, db")
            assert not any(op == "aegis_term_spawn" for op, _ in ops.calls)  # the prompt spawns nothing
            await pilot.press(*"build", "enter")
            await wait_for(pilot, lambda: len(app.query(TerminalTab)) == 1 and app.query_one(TerminalTab).term)
            # the prompt opened the terminal's own tab and closed: that tab spawned its terminal
            assert app.opened == [("terminal", "build")]
            tab = app.query_one(TerminalTab)
            assert tab.wanted == "build" and tab.term == "build"
            assert ("aegis_term_spawn", {"name": "build"}) in ops.calls
            assert "term:build" in str(app.query_one("#term-header").render()) and "mode: run" in str(
                app.query_one("#term-header").render())
            await pilot.press(*"echo hi", "enter")
            await pilot.pause()
            assert ("aegis_term_run", {"name": "build", "cmd": "echo hi", "timeout_s": 86400}) in ops.calls
            tab.refresh_view()
            await pilot.pause()
            log = str(app.query_one("#term-log").render())
            assert "$ echo hi" in log and "exit 0" in log and "0.01s" in log and "hi" in log

            await pilot.press("ctrl+k")
            await pilot.pause()
            assert tab.mode == "raw" and "mode: raw" in str(app.query_one("#term-header").render())
            ops.screen = "file line 0\nfile line 1\n:"
            tab.refresh_view()
            await pilot.pause()
            assert "file line 1" in str(app.query_one("#term-screen").render())
            await pilot.press("q", "ctrl+c", "up", "enter")
            await pilot.pause()
            assert ops.keys == "q{ctrl-c}{up}{enter}"
            await pilot.press("ctrl+k")
            await pilot.pause()
            assert tab.mode == "run"

    asyncio.run(main())
