"""F2 config panel parity: queues with budgets, agent and queue edits, removals, the default agent, schedules
and plugins on/off, plugin folders — each a form that runs the kernel's ``aegis_config_*`` operations as the
user (owning and attached), a refusal shown in the form with the loader's own text, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_testkit import make_app, make_project, owner_kernel, ready, run, screen_text, wait_until

from aegis_tui.config_forms import OpForm

CONFIG = """\
# the project's agents
default_agent: alpha
plugins:
  disabled: [mcp]
agents:
  alpha: {provider: tfake}
  beta: {provider: tfake}
schedules:
  nightly:
    workflow: review
    every: 1h
"""

FLOWS = '''\
from aegis_workflow import workflow


@workflow("review")
async def review(engine):
    return "reviewed"
'''


def project_with_flows(tmp_path: Path) -> Path:
    project = make_project(tmp_path, CONFIG)
    (project / ".aegis" / "workflows").mkdir(parents=True, exist_ok=True)
    (project / ".aegis" / "workflows" / "flows.py").write_text(FLOWS)
    return project


async def fill(pilot: Any, key: str, values: dict[str, Any]) -> OpForm:
    app = pilot.app
    await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "config")
    app.active_tab.widget.focus_content()
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, OpForm), what=f"the form of {key}")
    form = app.screen
    for field, value in values.items():
        form.query_one(f"#f-{field}").value = value
    await pilot.press("ctrl+s")
    return form


async def save(pilot: Any, key: str, values: dict[str, Any]) -> None:
    form = await fill(pilot, key, values)
    try:
        await wait_until(pilot, lambda: not isinstance(pilot.app.screen, OpForm), what=f"the form of {key} saved")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the form says: {form.query_one('#form-error').render()}") from None


def test_config_panel_edits_go_through_the_config_operations(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = project_with_flows(tmp_path)
        app = make_app(project)

        def on_disk() -> dict[str, Any]:
            from aegis_kernel.config_edit import read_key

            return read_key(project / ".aegis.yaml", [])

        async with app.run_test(size=(140, 50)) as pilot:
            await ready(pilot)
            await pilot.press("f2")
            await save(pilot, "q", {"name": "review", "agent": "beta", "max_parallel": "2", "budget_usd": "2.5",
                                    "budget_window": "1h"})
            assert on_disk()["queues"]["review"] == {"agent": "beta", "max_parallel": 2,
                                                     "budgets": [{"usd": 2.5, "window": "1h"}]}
            assert "review" in owner_kernel(app).config.get("queues")  # applied where the queues run
            await wait_until(pilot, lambda: "review" in screen_text(app), what="the queue in the summary")
            await save(pilot, "u", {"name": "review", "field": "max_parallel", "value": "3"})
            assert on_disk()["queues"]["review"]["max_parallel"] == 3
            await save(pilot, "e", {"name": "beta", "field": "model", "value": "big-model"})
            assert on_disk()["agents"]["beta"]["model"] == "big-model"
            await save(pilot, "d", {"name": "beta"})
            assert on_disk()["default_agent"] == "beta"
            await save(pilot, "s", {"name": "nightly", "enabled": False})
            assert on_disk()["schedules"]["nightly"]["enabled"] is False
            await save(pilot, "p", {"name": "mcp", "enabled": True})
            assert "disabled" not in (on_disk().get("plugins") or {})
            await save(pilot, "p", {"name": "hello", "enabled": False})
            assert on_disk()["plugins"]["disabled"] == ["hello"]
            await save(pilot, "f", {"path": ".aegis/plugins"})
            assert on_disk()["plugins"]["dirs"] == [".aegis/plugins"]
            await save(pilot, "x", {"kind": "plugin folder", "name": ".aegis/plugins"})
            assert "dirs" not in on_disk()["plugins"]
            # refused: the agent is used by a queue — the message is in the form, nothing is written
            form = await fill(pilot, "x", {"kind": "agent", "name": "beta"})
            await wait_until(pilot, lambda: "used by queue 'review'" in str(form.query_one("#form-error").render()),
                             what="the refusal in the form")
            assert "beta" in on_disk()["agents"]
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, OpForm))
            await save(pilot, "x", {"kind": "queue", "name": "review"})
            assert "queues" not in on_disk()
            await save(pilot, "x", {"kind": "agent", "name": "alpha"})
            assert list(on_disk()["agents"]) == ["beta"]
            assert (project / ".aegis.yaml").read_text().startswith("# the project's agents")  # comments kept
            await pilot.press("ctrl+q")

    run(body())


def test_an_invalid_value_is_refused_in_the_form_with_the_loaders_text(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = project_with_flows(tmp_path)
        app = make_app(project)
        before = (project / ".aegis.yaml").read_text()
        async with app.run_test(size=(140, 50)) as pilot:
            await ready(pilot)
            await pilot.press("f2")
            form = await fill(pilot, "e", {"name": "alpha", "field": "permission", "value": "sometimes"})
            await wait_until(pilot, lambda: "invalid" in str(form.query_one("#form-error").render())
                             and ".aegis.yaml" in str(form.query_one("#form-error").render()),
                             what="the loader's error in the form")
            assert isinstance(app.screen, OpForm)
            assert (project / ".aegis.yaml").read_text() == before
            await pilot.press("escape")
            await pilot.press("ctrl+q")

    run(body())
