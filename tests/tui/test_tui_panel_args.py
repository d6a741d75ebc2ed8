"""Panel tabs opened with an argument (``app.open_panel_tab(name, arg=...)``, the seam terminal tabs use):
one tab per argument, titled from the registration's ``arg_title``, saved in workspace.json with its
``arg`` and opened again with it on restore; ``close_panel_tab(widget)`` closes the tab that holds it —
owning the kernel and attached to a serve alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static
from tui_testkit import make_app, make_project, ready, run, screen_text, wait_until


def with_arg_panel(app: Any, made: list) -> None:
    """Turn the canvases tab into a panel whose factory takes an argument (the registry entry is shared)."""
    def factory(app_: Any, kernel: Any, arg: str | None = None) -> Static:
        made.append(arg)
        return Static(f"panel for {arg}")

    spec = app.kernel.plugins.registry.objects("panels")["canvases"]
    spec["factory"], spec["arg_title"] = factory, "echo:{arg}"


def test_panel_tabs_with_an_argument_are_one_per_arg_saved_and_restored(tmp_path: Path, tui_mode: str) -> None:
    project = make_project(tmp_path)
    saved_path = project / ".aegis/state/workspace.json"

    def saved_panels() -> list[dict]:
        try:
            tabs = json.loads(saved_path.read_text()).get("tabs", [])
        except (OSError, ValueError):
            return []
        return [t for t in tabs if t.get("kind") == "panel"]

    async def first() -> None:
        made: list = []
        app = make_app(project)
        with_arg_panel(app, made)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            one = await app.open_panel_tab("canvases", arg="one")
            two = await app.open_panel_tab("canvases", arg="two")
            again = await app.open_panel_tab("canvases", arg="one")  # the open one comes to the front
            assert again is one and app.active_tab is one and made == ["one", "two"]
            assert (one.title, two.title) == ("echo:one", "echo:two")
            await wait_until(pilot, lambda: "echo:one" in screen_text(app) and "panel for one" in screen_text(app),
                             what="the tab and its widget drawn")
            await wait_until(pilot, lambda: saved_panels() == [{"kind": "panel", "name": "canvases", "arg": "one"},
                                                               {"kind": "panel", "name": "canvases", "arg": "two"}],
                             what="both tabs saved with their arg")
            await app.close_panel_tab(two.widget.children[0])  # the widget the factory made
            assert two not in app.tabs and one in app.tabs
            await wait_until(pilot, lambda: len(saved_panels()) == 1, what="the closed tab forgotten")
            await pilot.press("ctrl+q")

    run(first())

    async def second() -> None:
        made: list = []
        app = make_app(project)
        with_arg_panel(app, made)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: any(t.title == "echo:one" for t in app.tabs), what="the tab restored")
            assert made == ["one"]  # opened again with its argument
            tab = next(t for t in app.tabs if t.title == "echo:one")
            assert tab.arg == "one" and tab.panel == "canvases"
            await pilot.press("ctrl+q")

    run(second())


def test_arg_title_must_name_the_arg_and_belongs_to_a_tab() -> None:
    from aegis_tui.hookspecs import panel_entry

    assert panel_entry("t", lambda *a: None, arg_title="term:{arg}")[1]["arg_title"] == "term:{arg}"
    assert panel_entry("t", lambda *a: None, title="Term")[1]["arg_title"] == "Term:{arg}"
    with pytest.raises(ValueError, match="arg_title"):
        panel_entry("t", lambda *a: None, arg_title="term")
    with pytest.raises(ValueError, match="arg_title"):
        panel_entry("t", lambda *a: None, kind="modal", arg_title="m:{arg}")
