"""What the TUI shows of schedules (contributed through aegis-tui's ``aegis_register_panels``).

The **schedules** tab (F9) is the SCHEDULES band: one line per schedule — on/off, name, workflow,
trigger, next fire (local time), fires, in flight, last status, and a problem when it cannot fire.
The same lines are the SCHEDULES band of the TUI's Ctrl+D dashboard (``band``, kind="band").
It redraws once a second from the runtime in this process, or from the owner's
``aegis_schedule_list`` when the TUI is attached to an ``aegis serve``. Textual is imported inside
the factory only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

EMPTY = "no schedules — add one under schedules: in .aegis.yaml, or with `aegis schedule add`"
MARKS = {"ok": "✓", "failed:crash": "✗", "failed:killed": "⊘", "failed:interrupted": "↯"}


def band_text(rows: list[dict[str, Any]]) -> str:
    """The SCHEDULES band from schedule infos (``aegis_schedule_list()["schedules"]``)."""
    if not rows:
        return EMPTY
    lines = ["SCHEDULES"]
    for s in rows:
        nxt = s.get("next_fire_ts")
        when = datetime.fromtimestamp(nxt).strftime("%a %H:%M:%S") if nxt else "—"
        mark = "●" if s.get("enabled") else "○"
        running = f" ◐{s['in_flight']}" if s.get("in_flight") else ""
        last = MARKS.get(s.get("last_status") or "", "")
        line = (f"{mark} {s['name']:<20} {s.get('workflow', ''):<12} {s.get('trigger') or '-':<30} next {when:<13} "
                f"×{s.get('fires', 0)}{running} {last}")
        if s.get("problem"):
            line += f"  ! {s['problem']}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def local_rows(kernel: Any) -> list[dict[str, Any]] | None:
    from .runtime import SchedulerRuntime

    rt = kernel.find_service(SchedulerRuntime) if kernel is not None else None
    return None if rt is None else rt.table()


def schedules_tab(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    class SchedulesTab(Static):
        def on_mount(self) -> None:
            self.set_interval(1.0, self._tick)
            self._tick()

        def _tick(self) -> None:
            if getattr(app, "remote", None) is not None:
                app.in_kernel(self._poll)
                return
            rows = local_rows(kernel)
            self.update("the scheduler is not running" if rows is None else band_text(rows))

        async def _poll(self) -> None:
            try:
                text = band_text((await app.call_op("aegis_schedule_list"))["schedules"])
            except Exception as exc:  # noqa: BLE001 - no scheduler there: say so
                text = f"schedules unavailable: {exc}"
            if self.is_mounted:
                self.update(text)

    return SchedulesTab("", id="schedules-tab")


def band(app: Any, kernel: Any) -> Any:
    """The SCHEDULES band of the TUI's Ctrl+D dashboard (kind="band"): the tab's lines under a heading,
    redrawn once a second (``refresh_now()`` at once), owning or attached."""
    from textual.containers import Vertical
    from textual.widgets import Static

    class SchedulesBand(Vertical):
        DEFAULT_CSS = """
        SchedulesBand { height: auto; }
        SchedulesBand .band { color: $accent; text-style: bold; margin-top: 1; }
        """

        def compose(self) -> Any:
            yield Static("SCHEDULES", classes="band")
            yield Static("", id="band-schedules")

        def on_mount(self) -> None:
            self.set_interval(1.0, self.refresh_now)
            self.refresh_now()

        def refresh_now(self) -> None:
            if getattr(app, "remote", None) is not None:
                app.in_kernel(self._poll)
                return
            rows = local_rows(kernel)
            self._show("the scheduler is not running" if rows is None else band_text(rows))

        async def _poll(self) -> None:
            try:
                text = band_text((await app.call_op("aegis_schedule_list"))["schedules"])
            except Exception as exc:  # noqa: BLE001 - no scheduler there: say so
                text = f"schedules unavailable: {exc}"
            self._show(text)

        def _show(self, text: str) -> None:
            if self.is_mounted:
                self.query_one("#band-schedules", Static).update(text.removeprefix("SCHEDULES\n"))

    return SchedulesBand()
