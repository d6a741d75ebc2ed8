"""The status bar (``handle ·profile· model·permission   ↑128k (94% cached) ↓1k · ⚒ 3 · ctx …``) and the
working indicator (``⠹ Working… (3.2s)``)."""

from __future__ import annotations

import time
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
VERBS = ("Working", "Thinking", "Pondering", "Crafting", "Weaving", "Tinkering")


def clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}"


def session_status(session: Any) -> Text:
    """The status bar text for an agent session."""
    from aegis_kernel import status_line

    p = session.profile
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(session.handle, Style(bold=True))
    text.append(f" ·{session.profile_name}· ", Style(dim=True))
    text.append(f"{p.model or session.provider}·{p.permission}")
    m = session.metrics
    line = status_line(m)
    now = time.monotonic()
    turn = (now - m.turn_started_at) if m.turn_started_at else m.last_turn_s
    extra = []
    if m.turns or m.turn_started_at:
        extra.append(f"turn {clock(turn)}")
    extra.append(f"session {clock(now - m.started_at)}")
    text.append("   ")
    text.append(line, Style(color="yellow" if m.streaming else "green"))
    text.append(" · " + " · ".join(extra), Style(dim=True))
    state = session.state
    if state == "error":
        text.append("  ⚠ error", Style(color="red", bold=True))
    elif state == "input-required":
        text.append("  ⚠ needs approval (y/n/a)", Style(color="magenta", bold=True))
    return text


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 1; padding: 0 1; background: $panel; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source: Any = None  # a Session, or a str for other tabs

    def render(self) -> Text:
        src = self.source
        if src is None:
            return Text("aegis · Ctrl+T new agent · Ctrl+O files · F2 config · Ctrl+Q quit", style=Style(dim=True))
        if isinstance(src, str):
            return Text(src, style=Style(dim=True), no_wrap=True, overflow="ellipsis")
        return session_status(src)


class WorkingLine(Widget):
    """``⠹ Working… (3.2s)`` while the session works; approval prompt while it waits for the user."""

    DEFAULT_CSS = """
    WorkingLine { height: 1; padding: 0 1; display: none; }
    """

    def __init__(self, session: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self._frame = 0

    def tick(self) -> None:
        state = self.session.state if self.session is not None else ""
        show = state in ("working", "input-required", "starting")
        if self.display != show:
            self.display = show
        if show:
            self._frame += 1
            self.refresh()

    def render(self) -> Text:
        s = self.session
        if s is None:
            return Text("")
        if s.state == "starting":
            return Text(f"{SPINNER[self._frame % len(SPINNER)]} starting {s.provider} agent…", style=Style(dim=True))
        if s.state == "input-required":
            req = s.pending_permission
            what = f"{req.tool_name}({req.summary})" if req is not None else "a tool"
            return Text(f"⚠ {s.handle} asks to run {what} — y allow · n deny · a always",
                        style=Style(color="magenta", bold=True))
        m = s.metrics
        elapsed = time.monotonic() - m.turn_started_at if m.turn_started_at else 0.0
        verb = VERBS[int(elapsed // 4) % len(VERBS)]
        queued = f" · {s.pending_count} queued" if s.pending_count else ""
        return Text(f"{SPINNER[self._frame % len(SPINNER)]} {verb}… ({elapsed:.1f}s){queued} · Esc to interrupt",
                    style=Style(color="yellow"))
