"""The TUI's canvases tab: rendered markdown with who wrote each section last, redrawn on every change
(Textual on asyncio with a stub runtime; no kernel needed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from aegis_canvas.panels import annotated, document, tab

INFO = {"canvas": "report-q3", "file": "vault/reports/q3.md", "version": 3, "subscribers": {"pm": None},
        "last": {"data": {"writer": "agent:researcher", "version": 3, "added": 18, "removed": 3,
                          "at": "2026-12-05T20:30:00Z"}}}
TEXT = "intro\n\n## data\nQ3 numbers\n\n## notes\nnothing yet\n"


def test_each_section_says_who_wrote_it_last():
    out = annotated(INFO, TEXT)
    assert out.startswith("# report-q3\n\n`vault/reports/q3.md` · version 3 · subscribers: pm\n")
    assert "## data\n\n*✎ agent:researcher · v3 · +18 / -3 · 2026-12-05T20:30:00Z*\n\nQ3 numbers\n" in out
    assert "## notes\nnothing yet\n" in out  # never written through Aegis: no attribution
    assert "No canvases yet" in document([])


def test_the_tab_redraws_on_every_canvas_change():
    pytest.importorskip("textual")
    from textual.app import App

    canvas = SimpleNamespace(text=TEXT, info=lambda: dict(INFO))
    listeners = []
    rt = SimpleNamespace(canvases={"report-q3": canvas}, generation=1,
                         on_change=lambda fn: listeners.append(fn) or (lambda: listeners.remove(fn)))
    kernel = SimpleNamespace(find_service=lambda kind: rt)

    class Host(App):
        def compose(self):
            yield tab(self, kernel)

    async def main() -> None:
        app = Host()
        async with app.run_test() as pilot:
            await pilot.pause()
            view = app.query_one("#canvas-doc")
            assert "Q3 numbers" in view.source and len(listeners) == 1
            canvas.text = TEXT.replace("Q3 numbers", "Q3 numbers came in stronger")
            rt.generation = 2
            listeners[0]("report-q3", "written")  # what the runtime does after a write
            await pilot.pause()
            assert "Q3 numbers came in stronger" in view.source
        assert listeners == []  # unsubscribed when the tab went away

    asyncio.run(main())
