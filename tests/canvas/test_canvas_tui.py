"""The canvases tab in the real TUI (contributed through aegis-tui's panels hook): Ctrl+B opens it, and a
write shows up at once with who wrote the section."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("aegis_tui", reason="aegis-tui is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tui"))  # the TUI tests' own kit

from tui_testkit import make_app, make_project, ready, run, screen_text, wait_until  # noqa: E402

CONFIG = "default_agent: alpha\nplugins:\n  disabled: [mcp]\nagents:\n  alpha: {provider: tfake}\n"


def test_ctrl_b_opens_the_canvases_tab_and_it_follows_every_write(tmp_path: Path) -> None:
    async def body() -> None:
        project = make_project(tmp_path, CONFIG)
        app = make_app(project)
        assert "canvases" in app.kernel.plugins.registry.objects("panels")
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app.in_kernel(app.call_op, "aegis_canvas_open", name="plan", file="plan.md")
            await wait_until(pilot, lambda: (project / "plan.md").exists(), what="the canvas file")
            await pilot.press("ctrl+b")
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "panel")
            await wait_until(pilot, lambda: "plan.md" in screen_text(app), what="the canvas in the tab")
            app.in_kernel(app.call_op, "aegis_canvas_write_section", name="plan", section="goals",
                          content="ship the canvas")
            await wait_until(pilot, lambda: "ship the canvas" in screen_text(app), what="the write in the tab")
            await wait_until(pilot, lambda: "✎ user · v1 · +1 / -0" in screen_text(app))
            await pilot.press("ctrl+q")

    run(body())
