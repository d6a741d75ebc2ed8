"""The scheduler runs wherever the project's kernel runs: here the TUI owns the kernel, a schedule fires
its workflow, and the schedules tab (F9, the SCHEDULES band) shows it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("aegis_tui", reason="aegis-tui is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tui"))  # the TUI tests' own kit

from tui_testkit import make_app, make_project, ready, run, screen_text, wait_until  # noqa: E402

CONFIG = """\
default_agent: alpha
plugins:
  disabled: [mcp]
agents:
  alpha: {provider: tfake}
schedules:
  stamp:
    workflow: stamp
    every: 1s
    lifecycle: once
"""

FLOWS = '''\
from pathlib import Path

from aegis_workflow import workflow


@workflow("stamp")
async def stamp(engine):
    Path(engine.kernel.project_dir, "stamped.txt").write_text("fired")
    return "stamped"
'''


def test_the_tui_owning_the_kernel_fires_a_schedule_and_f9_shows_it(tmp_path: Path) -> None:
    async def body() -> None:
        project = make_project(tmp_path, CONFIG)
        (project / ".aegis" / "workflows").mkdir(parents=True, exist_ok=True)
        (project / ".aegis" / "workflows" / "flows.py").write_text(FLOWS)
        app = make_app(project)
        assert "schedules" in app.kernel.plugins.registry.objects("panels")
        async with app.run_test(size=(160, 40)) as pilot:
            await ready(pilot)
            await wait_until(pilot, lambda: (project / "stamped.txt").exists(), timeout=30,
                             what="the scheduled workflow ran")
            await pilot.press("f9")
            await wait_until(pilot, lambda: "SCHEDULES" in screen_text(app), what="the SCHEDULES band")
            await wait_until(pilot, lambda: "stamp" in screen_text(app) and "×1" in screen_text(app)
                             and "✓" in screen_text(app), timeout=30, what="the fire in the band")
            await pilot.press("ctrl+q")

    run(body())
