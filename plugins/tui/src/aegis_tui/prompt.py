"""The input: Enter sends, Shift+Enter (or Ctrl+J) inserts a newline, Up/Down recall history at the
first/last line, and ``y``/``n``/``a`` answer a pending approval when the input is empty."""

from __future__ import annotations

from typing import Any, Callable

from textual import events
from textual.message import Message
from textual.widgets import TextArea

HISTORY_LIMIT = 500


class PromptInput(TextArea):
    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 7; border: round $accent 50%; padding: 0 1; }
    PromptInput:focus { border: round $accent; }
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    class Answered(Message):
        def __init__(self, allow: bool, always: bool) -> None:
            self.allow = allow
            self.always = always
            super().__init__()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.sent: list[str] = []
        self._hist_pos: int | None = None
        self._stash = ""
        self.awaiting_answer: Callable[[], bool] = lambda: False

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key == "enter":
            event.stop()
            event.prevent_default()
            self.submit()
            return
        if key in ("shift+enter", "ctrl+j", "alt+enter"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if not self.text and key in ("y", "n", "a") and self.awaiting_answer():
            event.stop()
            event.prevent_default()
            self.post_message(self.Answered(allow=key != "n", always=key == "a"))
            return
        await super()._on_key(event)

    def submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
            del self.sent[:-HISTORY_LIMIT]
        self._hist_pos = None
        self.clear()
        self.post_message(self.Submitted(text))

    # --- history ------------------------------------------------------------------------------

    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self.sent:
            super().action_cursor_up(select)
            return
        if self._hist_pos is None:
            self._stash = self.text
            self._hist_pos = len(self.sent)
        if self._hist_pos > 0:
            self._hist_pos -= 1
            self._show(self.sent[self._hist_pos])

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self._hist_pos is None or self.cursor_location[0] < last_row:
            super().action_cursor_down(select)
            return
        self._hist_pos += 1
        if self._hist_pos >= len(self.sent):
            self._hist_pos = None
            self._show(self._stash)
        else:
            self._show(self.sent[self._hist_pos])

    def _show(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)
