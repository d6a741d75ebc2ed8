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


def _text(rows: list[dict[str, Any]] | None, problem: str | None) -> str:
    if rows is not None:
        return band_text(rows)
    return "the scheduler is not running" if problem == "not running" else f"schedules unavailable: {problem}"


def _follow(app: Any, kernel: Any, show: Any) -> Any:
    """The schedule table once a second (:class:`aegis_tui.follow.Follow`): in process from the runtime,
    attached through ``aegis_schedule_list``."""
    from aegis_tui.follow import Follow

    return Follow(app, local=lambda: local_rows(kernel), operation="aegis_schedule_list", key="schedules",
                  show=lambda rows, problem: show(_text(rows, problem)))


def schedules_tab(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    class SchedulesTab(Static):
        def __init__(self) -> None:
            super().__init__("", id="schedules-tab")
            self._follow = _follow(app, kernel, self._show)

        def on_mount(self) -> None:
            self.set_interval(1.0, self._follow.tick)
            self._follow.tick()

        def _show(self, text: str) -> None:
            if self.is_mounted:
                self.update(text)

    return SchedulesTab()


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

        def __init__(self) -> None:
            super().__init__()
            self._follow = _follow(app, kernel, self._show)

        def compose(self) -> Any:
            yield Static("SCHEDULES", classes="band")
            yield Static("", id="band-schedules")

        def on_mount(self) -> None:
            self.set_interval(1.0, self.refresh_now)
            self.refresh_now()

        def refresh_now(self) -> None:
            self._follow.tick()

        def _show(self, text: str) -> None:
            if self.is_mounted:
                self.query_one("#band-schedules", Static).update(text.removeprefix("SCHEDULES\n"))

    return SchedulesBand()
