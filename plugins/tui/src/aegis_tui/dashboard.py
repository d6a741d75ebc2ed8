"""The Ctrl+D dashboard: one modal screen composed of every ``kind="band"`` panel plugins register.

The TUI knows no primitive by name: queues, workflows, schedules… each arrive as a band through
``aegis_register_panels``. Each band's factory runs when the dashboard opens (registration order);
a band that fails to build shows its error in its place and never breaks the others. Bands refresh
themselves while mounted (owning or attached alike); Enter asks every band that has a
``refresh_now()`` method to redraw at once. Escape or Ctrl+D closes the dashboard.
"""

from __future__ import annotations

import logging
from typing import Any

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

log = logging.getLogger(__name__)

EMPTY = "no dashboard bands: install a plugin that registers one (aegis-queue, aegis-workflow, aegis-scheduler)"


def bands(panels: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The band entries of the panel registry, in registration order."""
    return [(name, spec) for name, spec in panels.items() if spec.get("kind") == "band"]


class Dashboard(ModalScreen[None]):
    """Every band, one under the other, in a scrolling box."""

    BINDINGS = [Binding("escape", "close", "close"), Binding("enter", "refresh_now", "refresh")]
    DEFAULT_CSS = """
    Dashboard { align: center middle; }
    Dashboard > VerticalScroll { width: 90%; height: 80%; border: round $accent; padding: 0 1;
                                 background: $surface; }
    Dashboard .band { color: $accent; text-style: bold; margin-top: 1; }
    Dashboard .band-error { color: $error; }
    """

    def __init__(self, app: Any, kernel: Any, entries: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__()
        self._host, self._kernel, self._entries = app, kernel, entries

    def compose(self) -> Any:
        with VerticalScroll(id="dashboard"):
            if not self._entries:
                yield Static(EMPTY)
            for name, spec in self._entries:
                try:
                    widget = spec["factory"](self._host, self._kernel)
                except Exception as exc:  # noqa: BLE001 - a broken band never breaks the dashboard
                    log.exception("dashboard band %s failed", name)
                    yield Static(spec.get("title") or name, classes="band")
                    yield Static(f"band '{name}' failed: {exc}", classes="band-error")
                    continue
                widget.add_class("dashboard-band")
                yield widget

    def action_refresh_now(self) -> None:
        for widget in self.query(".dashboard-band"):
            refresh_now = getattr(widget, "refresh_now", None)
            if callable(refresh_now):
                refresh_now()

    def action_close(self) -> None:
        self.dismiss(None)
