"""``aegis_view_file`` on a file a plugin tab claims (``claims=`` on ``aegis_register_panels``) opens that
tab instead of the plain file view: a canvas file opens the canvases tab with that canvas first; any other
file still opens a file tab — owning the kernel and attached to a serve alike."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import trio
from tui_testkit import MODE, make_app, make_project, ready, run, screen_text, wait_until

CONFIG = "default_agent: alpha\nplugins:\n  disabled: [mcp]\nagents:\n  alpha: {provider: tfake}\n"


async def view_file(app: Any, path: str) -> None:
    """What an agent's ``aegis_view_file`` does: the owner's FileViewer service is asked to show ``path``
    (attached: the serve's, which forwards it to this TUI over the control socket)."""
    from aegis_kernel import FileViewer

    if app.remote is None:
        viewer = app.kernel.find_service(FileViewer)
        app.in_kernel(viewer.view_file, path)
        return
    serve = next(s for s in MODE["serves"] if s.kernel.project_dir == app.project_dir)
    viewer = serve.kernel.find_service(FileViewer)
    result = await asyncio.to_thread(trio.from_thread.run, viewer.view_file, path, trio_token=serve._token)
    assert result["status"] == "opened", result


def test_view_file_on_a_canvas_file_opens_the_canvases_tab_on_that_canvas(tmp_path: Path, tui_mode: str) -> None:
    async def body() -> None:
        project = make_project(tmp_path, CONFIG)
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app.in_kernel(app.call_op, "aegis_canvas_open", name="alpha-plan", file="docs/a.md")
            app.in_kernel(app.call_op, "aegis_canvas_open", name="zeta-notes", file="docs/z.md")
            await wait_until(pilot, lambda: (project / "docs" / "z.md").exists() and (project / "docs" / "a.md").exists(),
                             what="both canvas files")
            await view_file(app, "docs/z.md")
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "panel"
                             and app.active_tab.panel == "canvases", what="the canvases tab")
            await wait_until(pilot, lambda: "zeta-notes" in screen_text(app), what="the canvas drawn")
            # the canvas the file holds comes first, before the one that sorts first by name
            await wait_until(pilot, lambda: "alpha-plan" in screen_text(app)
                             and screen_text(app).index("zeta-notes") < screen_text(app).index("alpha-plan"),
                             what="zeta-notes first")
            assert not any(t.kind == "file" for t in app.tabs)
            await view_file(app, "src/worker.py")  # no tab claims it: the plain file view
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "file",
                             what="the file tab")
            assert app.active_tab.title == "worker.py"
            await pilot.press("ctrl+q")

    run(body())


def test_a_claim_that_raises_falls_back_to_the_file_view(tmp_path: Path) -> None:
    async def body() -> None:
        project = make_project(tmp_path, CONFIG)
        app = make_app(project)

        def broken(app_: object, kernel: object, rel: str) -> bool:
            raise RuntimeError("cannot tell")

        app.kernel.plugins.registry.objects("panels")["canvases"]["claims"] = broken
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await view_file(app, "README.md")
            await wait_until(pilot, lambda: app.active_tab is not None and app.active_tab.kind == "file",
                             what="the file tab")
            await pilot.press("ctrl+q")

    run(body())


def test_only_a_tab_can_claim_files() -> None:
    from aegis_tui.hookspecs import panel_entry

    with pytest.raises(ValueError, match="only a tab"):
        panel_entry("x", lambda app, kernel: None, kind="modal", claims=lambda app, kernel, rel: True)
