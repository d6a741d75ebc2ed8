"""A file tab: a syntax-highlighted read-only view; ``e`` edits, Ctrl+S saves, Escape with unsaved edits
asks before discarding them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static, TextArea


MAX_VIEW_BYTES = 2_000_000


def read_for_view(path: Path) -> tuple[str | None, str]:
    """``(text, note)``: text is None for binary, unreadable or huge files (note says why)."""
    try:
        size = path.stat().st_size
        if size > MAX_VIEW_BYTES:
            return None, f"{path.name}: {size:,} bytes — too large to show here"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    if b"\0" in data[:8192]:
        return None, f"{path.name}: binary file, {len(data):,} bytes"
    return data.decode("utf-8", errors="replace"), ""


class Editor(TextArea):
    """A code editor where Tab indents and Escape is left to the file view (to leave edit mode)."""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            event.stop()
            event.prevent_default()  # TextArea's own handler would move focus
            view = next((a for a in self.ancestors if isinstance(a, FileView)), None)
            if view is not None:
                view.action_leave_edit()
            return
        await super()._on_key(event)


class FileView(Vertical):
    """View and edit one file."""

    BINDINGS = [
        Binding("e", "edit", "edit"),
        Binding("ctrl+s", "save", "save"),
        Binding("escape", "leave_edit", "stop editing", show=False),
    ]
    DEFAULT_CSS = """
    FileView { height: 1fr; }
    FileView > #file-head { height: 1; padding: 0 1; color: $text-muted; }
    FileView > VerticalScroll { height: 1fr; }
    FileView > TextArea { height: 1fr; display: none; }
    FileView.editing > TextArea { display: block; }
    FileView.editing > VerticalScroll { display: none; }
    """

    class DirtyChanged(Message):
        def __init__(self, view: FileView) -> None:
            self.view = view
            super().__init__()

    def __init__(self, path: Path, project_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.project_dir = project_dir
        self.text: str | None = None
        self.note = ""
        self.editing = False

    @property
    def rel(self) -> str:
        try:
            return str(self.path.relative_to(self.project_dir))
        except ValueError:
            return str(self.path)

    @property
    def dirty(self) -> bool:
        if not self.editing or self.text is None:
            return False
        return self.query_one(TextArea).text != self.text

    def compose(self) -> Any:
        yield Static("", id="file-head")
        with VerticalScroll(id="file-scroll"):
            yield Static("", id="file-body")
        yield Editor("", id="file-editor", soft_wrap=False, show_line_numbers=True, tab_behavior="indent")

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.text, self.note = read_for_view(self.path)
        body = self.query_one("#file-body", Static)
        if self.text is None:
            body.update(Text(self.note, style="dim"))
        else:
            from rich.syntax import Syntax

            lexer = Syntax.guess_lexer(str(self.path), self.text)
            body.update(Syntax(self.text, lexer, line_numbers=True, word_wrap=False, theme="monokai",
                               indent_guides=False))
        self._head()

    def _head(self, extra: str = "") -> None:
        mode = "editing · Ctrl+S save · Esc stop editing" if self.editing else "view · e edit"
        self.query_one("#file-head", Static).update(f"{self.rel} — {mode}{' · ' + extra if extra else ''}")

    def focus_content(self) -> None:
        if self.editing:
            self.query_one(TextArea).focus()
        else:
            self.query_one("#file-scroll").focus()

    def action_edit(self) -> None:
        if self.editing or self.text is None:
            if self.text is None:
                self.notify(self.note, severity="warning")
            return
        self.editing = True
        editor = self.query_one(TextArea)
        editor.load_text(self.text)
        self.add_class("editing")
        editor.focus()
        self._head()
        self.post_message(self.DirtyChanged(self))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.editing:
            self.post_message(self.DirtyChanged(self))

    def action_save(self) -> None:
        if not self.editing:
            return
        from aegis_kernel import write_text_atomic

        new = self.query_one(TextArea).text
        try:
            write_text_atomic(self.path, new)
        except OSError as exc:
            self.notify(f"cannot save {self.rel}: {exc}", severity="error")
            return
        self.text = new
        self._head(f"saved {len(new.encode()):,} bytes")
        self.notify(f"saved {self.rel}")
        self.post_message(self.DirtyChanged(self))

    def action_leave_edit(self) -> None:
        if not self.editing:
            return
        if self.dirty:
            from .dialogs import Confirm

            def answer(choice: str | None) -> None:
                if choice == "save":
                    self.action_save()
                    self.stop_editing()
                elif choice == "discard":
                    self.stop_editing()

            self.app.push_screen(Confirm(f"{self.rel} has unsaved edits.",
                                         [("save", "Save"), ("discard", "Discard"), ("cancel", "Keep editing")]),
                                 answer)
            return
        self.stop_editing()

    def stop_editing(self) -> None:
        self.editing = False
        self.remove_class("editing")
        self.reload()
        self.query_one("#file-scroll").focus()
        self.post_message(self.DirtyChanged(self))
