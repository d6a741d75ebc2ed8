"""The Ctrl+D dashboard is ONE screen composed of the plugins' ``kind="band"`` panels: the queue's bands,
the WORKFLOWS band (a run waiting for a person shows its question) and the SCHEDULES band — owning the
kernel and attached to a serve alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_testkit import make_app, make_project, ready, run, screen_text, wait_until

CONFIG = """\
default_agent: alpha
plugins:
  disabled: [mcp]
agents:
  alpha: {provider: tfake}
queues:
  tests: {agent: alpha, max_parallel: 2}
schedules:
  nightly:
    workflow: review
    every: 1h
"""

FLOWS = '''\
from aegis_workflow import workflow


@workflow("review")
async def review(engine):
    return await engine.ask_human("ship the release?", options=["yes", "no"])
'''


def test_ctrl_d_shows_queue_workflow_and_schedule_bands_in_one_dashboard(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = make_project(tmp_path, CONFIG)
        (project / ".aegis" / "workflows").mkdir(parents=True, exist_ok=True)
        (project / ".aegis" / "workflows" / "flows.py").write_text(FLOWS)
        app = make_app(project)
        panels = app.kernel.plugins.registry.objects("panels")
        assert {"queue-dashboard", "workflows-band", "schedules-band"} <= {
            name for name, spec in panels.items() if spec["kind"] == "band"}
        async with app.run_test(size=(160, 50)) as pilot:
            await ready(pilot)
            app.run_op("aegis_run_workflow", name="review", callback=False)
            await pilot.press("ctrl+d")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "Dashboard", what="the dashboard")
            await wait_until(pilot, lambda: "? awaiting: ship the release?  [yes / no]" in screen_text(app),
                             timeout=20, what="the run waiting for a person in the WORKFLOWS band")
            await wait_until(pilot, lambda: "● nightly" in screen_text(app), timeout=20,
                             what="the schedule in the SCHEDULES band")
            text = screen_text(app)
            for heading in ("QUEUES", "IN-FLIGHT", "WORKFLOWS", "SCHEDULES"):
                assert heading in text
            assert "tests            alpha" in text
            assert "run#" in text and "review" in text  # run id and workflow on the band's line
            await pilot.press("escape")
            await wait_until(pilot, lambda: type(app.screen).__name__ != "Dashboard", what="closed")
            await pilot.press("ctrl+q")

    run(body())


def test_a_band_that_fails_to_build_shows_its_error_and_the_others_still_show(tmp_path: Path) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path, CONFIG))
        entry = app.kernel.plugins.registry.objects("panels")["workflows-band"]

        def broken(app_: object, kernel: object) -> object:
            raise RuntimeError("no such widget")

        entry["factory"] = broken
        async with app.run_test(size=(160, 50)) as pilot:
            await ready(pilot)
            await pilot.press("ctrl+d")
            await wait_until(pilot, lambda: "band 'workflows-band' failed: no such widget" in screen_text(app),
                             what="the broken band's error")
            await wait_until(pilot, lambda: "● nightly" in screen_text(app), what="the schedules band still there")
            await wait_until(pilot, lambda: "QUEUES" in screen_text(app))
            await pilot.press("ctrl+d")
            await wait_until(pilot, lambda: type(app.screen).__name__ != "Dashboard", what="closed")
            await pilot.press("ctrl+q")

    run(body())


def test_a_band_cannot_take_a_key_of_its_own() -> None:
    from aegis_tui.hookspecs import panel_entry

    with pytest.raises(ValueError, match="Ctrl\\+D"):
        panel_entry("x", lambda app, kernel: None, kind="band", key="ctrl+x")
    assert panel_entry("x", lambda app, kernel: None, kind="band")[1]["kind"] == "band"
