"""Tabs: the :class:`Tab` record and the one-line :class:`TabBar` that draws them.

A tab cell is ``● 1 brisk-curie ·helper·`` for an agent (the dot's colour is the session state), plus a
sticky ``*`` when a background tab finished a turn or needs input; file, config and plugin-panel tabs
show a glyph and a title. Clicking a cell posts :class:`TabBar.Selected`.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

STATE_DOTS = {
    "starting": ("○", "grey62"),
    "ready": ("●", "green"),
    "working": ("●", "yellow"),
    "input-required": ("◉", "magenta"),
    "error": ("●", "red"),
    "closed": ("○", "grey42"),
}
KIND_GLYPHS = {"file": "▤", "config": "⚙", "panel": "◆"}


class Tab:
    """One tab: an agent session, a file, the config panel or a plugin panel."""

    def __init__(self, key: str, kind: str, title: str, widget: Any = None, session: Any = None, path: Any = None,
                 panel: str | None = None, arg: str | None = None) -> None:
        self.key = key
        self.kind = kind  # agent | file | config | panel
        self.title = title
        self.widget = widget
        self.session = session
        self.path = path
        self.panel = panel
        self.arg = arg  # a panel tab opened with an argument (open_panel_tab(name, arg=...))
        self.star = False
        self.draft = ""
        self.unsubscribe: Any = None
        self.extra: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Tab {self.kind} {self.label()}>"

    @property
    def state(self) -> str:
        return self.session.state if self.session is not None else ""

    def label(self) -> str:
        if self.kind == "agent" and self.session is not None:
            return self.session.handle
        return self.title

    def record(self, project_dir: Any) -> dict[str, Any] | None:
        """This tab as a workspace.json record."""
        if self.kind == "agent" and self.session is not None:
            return {"kind": "agent", "handle": self.session.handle, "agent": self.session.profile_name}
        if self.kind == "file" and self.path is not None:
            try:
                rel = str(self.path.relative_to(project_dir))
            except ValueError:
                rel = str(self.path)
            return {"kind": "file", "path": rel}
        if self.kind == "panel" and self.panel:
            return {"kind": "panel", "name": self.panel, **({"arg": self.arg} if self.arg is not None else {})}
        if self.kind == "config":
            return {"kind": "config"}
        return None


def tab_cell(tab: Tab, index: int) -> Text:
    text = Text()
    if tab.kind == "agent":
        dot, colour = STATE_DOTS.get(tab.state, ("○", "grey62"))
        text.append(dot, Style(color=colour))
        text.append(f" {index} {tab.label()}")
        if tab.session is not None:
            text.append(f" ·{tab.session.profile_name}·", Style(dim=True))
    else:
        text.append(KIND_GLYPHS.get(tab.kind, "◆"), Style(color="cyan"))
        text.append(f" {index} {tab.label()}")
        if tab.extra.get("dirty"):
            text.append(" +", Style(color="yellow"))
    if tab.star:
        text.append(" *", Style(color="yellow", bold=True))
    return text


class TabBar(Widget):
    """One line of tab cells; the active one highlighted."""

    DEFAULT_CSS = """
    TabBar { height: 1; padding: 0 1; background: $panel; }
    """

    class Selected(Message):
        def __init__(self, index: int) -> None:
            self.index = index
            super().__init__()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tabs: list[Tab] = []
        self.active = 0
        self._spans: list[tuple[int, int, int]] = []

    def set_tabs(self, tabs: list[Tab], active: int) -> None:
        self.tabs = tabs
        self.active = active
        self.refresh()

    def render(self) -> Text:
        width = max(1, self.size.width)
        cells = [tab_cell(tab, i + 1) for i, tab in enumerate(self.tabs)]
        if not cells:
            return Text("no tabs · Ctrl+T new agent · Ctrl+N pick an agent · F2 config", style=Style(dim=True))
        # scroll so the active cell is visible
        lengths = [c.cell_len + 3 for c in cells]
        start = 0
        while start < self.active and sum(lengths[start:self.active + 1]) > width:
            start += 1
        out = Text(no_wrap=True, overflow="crop")
        self._spans = []
        x = 0
        if start:
            out.append("‹ ", Style(dim=True))
            x += 2
        for i in range(start, len(cells)):
            cell = cells[i]
            if i == self.active:
                cell.stylize(Style(bold=True, underline=True))
            out.append(" ")
            out.append_text(cell)
            out.append("  ")
            self._spans.append((x, x + lengths[i], i))
            x += lengths[i]
        return out

    def on_click(self, event: events.Click) -> None:
        for start, end, index in self._spans:
            if start <= event.x < end:
                self.post_message(self.Selected(index))
                return
