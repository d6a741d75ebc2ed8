"""The TUI shows a config edit its kernel refused (live reload), with the file:line problem."""

from __future__ import annotations

from pathlib import Path

from tui_testkit import CONFIG, make_app, make_project, ready, run, screen_text, wait_until


def test_a_refused_config_edit_is_shown_with_its_file_and_line(tmp_path: Path) -> None:
    async def body() -> None:
        project = make_project(tmp_path)
        app = make_app(project)
        async with app.run_test(size=(120, 50), notifications=True) as pilot:
            await ready(pilot)
            (project / ".aegis.yaml").write_text(CONFIG.replace("model: big-model", "model: [big-model]"))
            await wait_until(pilot, lambda: "config edit refused" in screen_text(app), timeout=30,
                             what="the refusal is shown")
            shown = " ".join(screen_text(app).replace("▌", " ").split())  # the toast wraps its text
            assert ".aegis.yaml:9: expected str or null, got list @ agents.beta.model" in shown
            assert app.kernel.config.get("agents")["beta"].model == "big-model"  # the last good config stays
            await pilot.press("ctrl+q")

    run(body())
