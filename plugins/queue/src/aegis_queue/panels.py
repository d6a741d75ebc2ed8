"""TUI panels: the queue strip and the queue's band of the TUI's Ctrl+D dashboard.

Both read the queue runtime directly (``kernel.find_service(QueueRuntime)``) (the kernel is a trio guest on Textual's thread).
The strip redraws on every change the runtime reports (``QueueRuntime.subscribe``); the band,
open only while looked at, refreshes on a half-second tick (it shows elapsed times). Textual is
imported inside the factories only, so the plugin stays import-light and works headless.
"""

from __future__ import annotations

import time
from typing import Any

MARKS = {"completed": "✓", "failed": "✗", "cancelled": "⊘", "dispatched": "●", "pending": "○"}



def _runtime(kernel: Any) -> Any:
    """The running queue runtime, None when the queue service is not running."""
    from .runtime import QueueRuntime

    return kernel.find_service(QueueRuntime)

def strip_text(runtime: Any) -> str:
    """``queues: tests ●1/2 ○0 ✓3 ✗0  last: brisk-curie``; empty when there are no queues.

    With 4 or more queues: ``N queues · ●r/c ○q ✓ok ✗err``. ``last:`` names the most recently
    dispatched worker while it is still running.
    """
    if runtime is None or not runtime.queues:
        return ""
    queues = list(runtime.queues.values())
    if len(queues) <= 3:
        parts = [f"{q.name} ●{len(q.inflight)}/{q.spec.max_parallel} ○{len(q.pending)} "
                 f"✓{q.counts.get('completed', 0)} ✗{q.counts.get('failed', 0)}" for q in queues]
        text = "queues: " + " · ".join(parts)
    else:
        run = sum(len(q.inflight) for q in queues)
        cap = sum(q.spec.max_parallel for q in queues)
        text = (f"{len(queues)} queues · ●{run}/{cap} ○{sum(len(q.pending) for q in queues)} "
                f"✓{sum(q.counts.get('completed', 0) for q in queues)} ✗{sum(q.counts.get('failed', 0) for q in queues)}")
    live = [t for q in queues for t in q.inflight.values() if t.worker]
    if live:
        newest = max(live, key=lambda t: t.started or 0)
        text += f"  last: {newest.worker}"
    return text


def status_strip_text(status: Any) -> str:
    """:func:`strip_text` from ``aegis_queue_status``'s result: what a TUI attached to a serve shows (it
    has no runtime object of its own)."""
    queues = [q for q in (status or {}).get("queues") or () if isinstance(q, dict)]
    if not queues:
        return ""
    def counts(q: dict[str, Any]) -> tuple[int, int, int, int, int]:
        return (q.get("in_flight", 0), q.get("max_parallel", 0), q.get("pending", 0), q.get("completed", 0),
                q.get("failed", 0))
    if len(queues) <= 3:
        text = "queues: " + " · ".join("{} ●{}/{} ○{} ✓{} ✗{}".format(q.get("queue"), *counts(q)) for q in queues)
    else:
        totals = [sum(c) for c in zip(*(counts(q) for q in queues))]
        text = "{} queues · ●{}/{} ○{} ✓{} ✗{}".format(len(queues), *totals)
    live = [q.get("last_worker") for q in queues if q.get("in_flight") and q.get("last_worker")]
    return text + (f"  last: {live[-1]}" if live else "")


def dashboard_rows(runtime: Any) -> dict[str, list[str]]:
    """The dashboard's bands as plain lines: QUEUES, IN-FLIGHT, QUEUED, RECENT (last 10)."""
    bands: dict[str, list[str]] = {"QUEUES": [], "IN-FLIGHT": [], "QUEUED": [], "RECENT": []}
    if runtime is None:
        return bands
    now = time.monotonic()
    recent = []
    for q in runtime.queues.values():
        bands["QUEUES"].append(f"{q.name:<16} {q.spec.agent:<14} ●{len(q.inflight)}/{q.spec.max_parallel} "
                               f"○{len(q.pending)} ✓{q.counts.get('completed', 0)} ✗{q.counts.get('failed', 0)} "
                               f"⊘{q.counts.get('cancelled', 0)}")
        for t in q.inflight.values():
            bands["IN-FLIGHT"].append(f"{q.name}#{t.id[-6:]}  {t.worker or '-':<20} {now - (t.started or now):6.1f}s  "
                                      f"{_preview(t.payload)}")
        for i, t in enumerate(q.pending, 1):
            if i > 50:
                bands["QUEUED"].append(f"{q.name}: … {len(q.pending) - 50} more")
                break
            bands["QUEUED"].append(f"{q.name}#{t.id[-6:]}  {i:>3}. {_preview(t.payload)}")
        recent.extend(q.recent)
    recent.sort(key=lambda t: t.finished_at or "", reverse=True)
    for t in recent[:10]:
        bands["RECENT"].append(f"{MARKS.get(t.status, '?')} {t.queue}#{t.id[-6:]}  {t.worker or '-':<20} "
                               f"{_preview(t.result or t.error or '', 60)}")
    return bands


def status_dashboard_rows(details: list[dict[str, Any]]) -> dict[str, list[str]]:
    """:func:`dashboard_rows` from ``aegis_queue_status(queue=…)`` details (an attached TUI's dashboard)."""
    bands: dict[str, list[str]] = {"QUEUES": [], "IN-FLIGHT": [], "QUEUED": [], "RECENT": []}
    recent: list[Any] = []  # task records as the serve sent them
    for q in details:
        name = q.get("queue", "?")
        bands["QUEUES"].append(f"{name:<16} {q.get('agent', ''):<14} "
                               f"●{q.get('in_flight', 0)}/{q.get('max_parallel', 0)} "
                               f"○{q.get('pending', 0)} ✓{q.get('completed', 0)} ✗{q.get('failed', 0)} "
                               f"⊘{q.get('cancelled', 0)}")
        for t in q.get("in_flight_tasks") or ():
            bands["IN-FLIGHT"].append(f"{name}#{str(t.get('task_id'))[-6:]}  {t.get('worker') or '-':<20} "
                                      f"{float(t.get('elapsed_s') or 0):6.1f}s  {_preview(t.get('payload') or '')}")
        pending = q.get("pending_tasks") or []
        for i, t in enumerate(pending, 1):
            if i > 50:
                bands["QUEUED"].append(f"{name}: … {len(pending) - 50} more")
                break
            bands["QUEUED"].append(f"{name}#{str(t.get('task_id'))[-6:]}  {i:>3}. {_preview(t.get('payload') or '')}")
        recent.extend({**t, "queue": name} for t in q.get("recent") or ())
    recent.sort(key=lambda t: t.get("finished_at") or "", reverse=True)
    for t in recent[:10]:
        bands["RECENT"].append(f"{MARKS.get(t.get('status'), '?')} {t['queue']}#{str(t.get('task_id'))[-6:]}  "
                               f"{t.get('worker') or '-':<20} {_preview(t.get('result') or '', 60)}")
    return bands


def _preview(text: str, n: int = 60) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= n else line[: n - 1] + "…"


def strip(app: Any, kernel: Any) -> Any:
    """Factory for the queue strip (kind="strip"): a one-line Static, hidden without queues."""
    from textual.widgets import Static

    class QueueStrip(Static):
        DEFAULT_CSS = "QueueStrip { height: 1; padding: 0 1; color: $text-muted; }"

        def __init__(self) -> None:
            super().__init__("", classes="queue-strip")
            self._seen: int | None = None
            self._unsubscribe: Any = None

        def on_mount(self) -> None:
            # every queue change redraws it at once; the tick only catches a queue service that
            # starts after the TUI (a version check when nothing changed)
            self.set_interval(0.5, self._follow)
            self._follow()

        def on_unmount(self) -> None:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

        def _follow(self) -> None:
            if getattr(app, "remote", None) is not None:  # attached to a serve: ask it
                app.in_kernel(self._poll)
                return
            rt = _runtime(kernel)
            if self._unsubscribe is None and getattr(rt, "subscribe", None) is not None:
                self._unsubscribe = rt.subscribe(lambda queue, task: self.refresh_text())
            self.refresh_text()

        async def _poll(self) -> None:
            try:
                status = await app.call_op("aegis_queue_status")
            except Exception:  # noqa: BLE001 - no queue service there: no strip
                status = None
            text = status_strip_text(status)
            self.display = bool(text)
            self.update(text)

        def refresh_text(self) -> None:
            if getattr(app, "remote", None) is not None:
                return
            rt = _runtime(kernel)
            version = getattr(rt, "version", -1)
            if version == self._seen:
                return
            self._seen = version
            text = strip_text(rt)
            self.display = bool(text)
            self.update(text)

    return QueueStrip()


def band(app: Any, kernel: Any) -> Any:
    """Factory for the queue's band of the TUI's Ctrl+D dashboard (kind="band"): QUEUES / IN-FLIGHT /
    QUEUED / RECENT, refreshed on a half-second tick while shown (``refresh_now()`` redraws at once)."""
    from textual.containers import Vertical
    from textual.widgets import Static

    class QueueBand(Vertical):
        DEFAULT_CSS = """
        QueueBand { height: auto; }
        QueueBand .band { color: $accent; text-style: bold; margin-top: 1; }
        """

        def compose(self) -> Any:
            for name in ("QUEUES", "IN-FLIGHT", "QUEUED", "RECENT"):
                yield Static(name, classes="band")
                yield Static("", id=f"band-{name.lower()}")

        def on_mount(self) -> None:
            self.set_interval(0.5, self.refresh_now)
            self.refresh_now()

        def refresh_now(self) -> None:
            if getattr(app, "remote", None) is not None:  # attached to a serve: ask it
                app.in_kernel(self._poll)
                return
            self._show(dashboard_rows(_runtime(kernel)))

        async def _poll(self) -> None:
            try:
                names = [q["queue"] for q in (await app.call_op("aegis_queue_status")).get("queues") or ()]
                details = [await app.call_op("aegis_queue_status", queue=name) for name in names]
            except Exception:  # noqa: BLE001 - no queue service there: empty bands
                details = []
            if self.is_mounted:
                self._show(status_dashboard_rows(details))

        def _show(self, bands: dict[str, list[str]]) -> None:
            for name, lines in bands.items():
                self.query_one(f"#band-{name.lower()}", Static).update("\n".join(lines) or "  (none)")

    return QueueBand()


def dashboard(app: Any, kernel: Any) -> Any:
    """The queue's band alone in a modal screen (for a host without the TUI's Ctrl+D dashboard)."""
    from textual.binding import Binding
    from textual.containers import VerticalScroll
    from textual.screen import ModalScreen

    class QueueDashboard(ModalScreen[None]):
        BINDINGS = [Binding("escape", "close", "close"), Binding("enter", "refresh_now", "refresh")]
        DEFAULT_CSS = """
        QueueDashboard { align: center middle; }
        QueueDashboard > VerticalScroll { width: 90%; height: 80%; border: round $accent; padding: 0 1;
                                          background: $surface; }
        """

        def compose(self) -> Any:
            with VerticalScroll():
                yield band(app, kernel)

        def action_refresh_now(self) -> None:
            self.query_one(VerticalScroll).children[0].refresh_now()  # type: ignore[attr-defined]

        def action_close(self) -> None:
            self.dismiss(None)

    return QueueDashboard()
