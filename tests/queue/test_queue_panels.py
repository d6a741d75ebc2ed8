"""The queue strip and the Ctrl+D dashboard (Textual, on asyncio; no kernel needed: a stub runtime)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from types import SimpleNamespace

import pytest

from aegis_queue.panels import dashboard, dashboard_rows, strip, strip_text


def task(tid, worker=None, payload="do the thing", status="pending", result=None, started=None, finished=None):
    return SimpleNamespace(id=tid, queue="tests", worker=worker, payload=payload, status=status, result=result,
                           error=None, started=started, finished_at=finished)


def runtime(queues=1):
    now = time.monotonic()
    qs = {}
    for n in range(queues):
        running = task("t000001", "brisk-curie", started=now - 3) if n == 0 else None
        qs[f"q{n}" if n else "tests"] = SimpleNamespace(
            name=f"q{n}" if n else "tests", spec=SimpleNamespace(max_parallel=2, agent="helper"),
            inflight={"t000001": running} if running else {}, pending=deque([task("t000002")]) if n == 0 else deque(),
            counts={"completed": 3, "failed": 0, "cancelled": 0},
            recent=deque([task("t000000", "calm-cori", status="completed", result="all green", finished="2026-01-01T00:00:00Z")]))
    return SimpleNamespace(queues=qs, version=1)


def test_strip_text_formats():
    assert strip_text(None) == ""
    assert strip_text(SimpleNamespace(queues={})) == ""
    assert strip_text(runtime()) == "queues: tests ●1/2 ○1 ✓3 ✗0  last: brisk-curie"
    assert strip_text(runtime(4)) == "4 queues · ●1/8 ○1 ✓12 ✗0  last: brisk-curie"
    bands = dashboard_rows(runtime())
    assert bands["IN-FLIGHT"][0].startswith("tests#000001  brisk-curie")
    assert bands["QUEUED"] == ["tests#000002    1. do the thing"]
    assert bands["RECENT"][0].startswith("✓ tests#000000  calm-cori") and bands["RECENT"][0].endswith("all green")


def test_strip_and_dashboard_render_in_textual():
    pytest.importorskip("textual")
    from textual.app import App

    kernel = SimpleNamespace(find_service=lambda kind, rt=runtime(): rt)
    empty = SimpleNamespace(find_service=lambda kind: None)

    class Host(App):
        def compose(self):
            yield strip(self, kernel)
            yield strip(self, empty)

    async def main() -> None:
        app = Host()
        async with app.run_test() as pilot:
            await pilot.pause()
            shown, hidden = list(app.query("QueueStrip"))
            assert "tests ●1/2 ○1 ✓3 ✗0" in str(shown.render())
            assert shown.display and not hidden.display  # hidden without queues
            await app.push_screen(dashboard(app, kernel))
            await pilot.pause()
            text = str(app.screen.query_one("#band-in-flight").render())
            assert "brisk-curie" in text
            assert "all green" in str(app.screen.query_one("#band-recent").render())
            await pilot.press("escape")
            await pilot.pause()
            assert not app.screen.query("#band-recent")

    asyncio.run(main())


def test_the_strip_redraws_on_every_queue_change_without_waiting_for_a_tick():
    pytest.importorskip("textual")
    from textual.app import App

    rt = runtime()
    listeners = []
    rt.subscribe = lambda listener: listeners.append(listener) or (lambda: listeners.remove(listener))
    kernel = SimpleNamespace(find_service=lambda kind: rt)

    class Host(App):
        def compose(self):
            yield strip(self, kernel)

    async def main() -> None:
        app = Host()
        async with app.run_test() as pilot:
            await pilot.pause()
            [shown] = list(app.query("QueueStrip"))
            assert "✓3" in str(shown.render()) and len(listeners) == 1
            rt.queues["tests"].counts["completed"] = 4
            rt.version += 1
            listeners[0]("tests", None)  # what QueueRuntime._changed does
            await pilot.pause()
            assert "✓4" in str(shown.render())
        assert listeners == []  # unsubscribed when the strip went away

    asyncio.run(main())
