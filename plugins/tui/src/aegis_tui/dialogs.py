"""Modal dialogs: a confirmation with a few choices, the Ctrl+O fuzzy file picker and the Ctrl+N
agent picker."""

from __future__ import annotations

from typing import Any, Callable

from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from .fileindex import rank

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 80%; max-width: 100; height: auto; max-height: 80%; border: round $accent;
                     background: $surface; padding: 0 1; }}
{name} .title {{ text-style: bold; color: $accent; }}
{name} .hint {{ color: $text-muted; }}
"""


class Confirm(ModalScreen[str | None]):
    """``Confirm(message, [(id, label), …])`` → the chosen id (Escape → None). The first letter of
    each label is its key."""

    DEFAULT_CSS = DIALOG_CSS.format(name="Confirm") + """
    Confirm Horizontal { height: auto; margin-top: 1; }
    Confirm Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, message: str, choices: list[tuple[str, str]], title: str = "") -> None:
        super().__init__()
        self.message = message
        self.choices = choices
        self.title_text = title

    def compose(self) -> Any:
        with Vertical():
            if self.title_text:
                yield Static(self.title_text, classes="title")
            yield Static(self.message, id="confirm-message")
            with Horizontal():
                for i, (cid, label) in enumerate(self.choices):
                    yield Button(f"{label} ({label[0].lower()})", id=f"choice-{cid}",
                                 variant="primary" if i == 0 else "default")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event: Any) -> None:
        for cid, label in self.choices:
            if event.key == label[0].lower():
                event.stop()
                self.dismiss(cid)
                return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_cancel(self) -> None:
        self.dismiss(None)


class FilePicker(ModalScreen[str | None]):
    """Typeahead over the project's file index; the top match is preselected; Enter opens it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="FilePicker") + """
    FilePicker OptionList { height: auto; max-height: 20; border: none; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
        Binding("enter", "choose", show=False, priority=True),
    ]

    def __init__(self, files: Callable[[], list[str]], indexing: Callable[[], bool]) -> None:
        super().__init__()
        self._files = files
        self._indexing = indexing

    def compose(self) -> Any:
        with Vertical():
            yield Static("open file", classes="title")
            yield Input(placeholder="type to filter…", id="picker-input")
            yield OptionList(id="picker-list")
            yield Static("", id="picker-hint", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.refilter()
        if self._indexing():
            self.set_interval(0.2, self._poll_index)

    def _poll_index(self) -> None:
        self.refilter()

    @on(Input.Changed)
    def refilter(self) -> None:
        query = self.query_one(Input).value
        files = self._files()
        matches = rank(query, files, limit=50)
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(p, id=p) for p in matches])
        if matches:
            options.highlighted = 0
        state = "indexing…" if self._indexing() else f"{len(files):,} files"
        self.query_one("#picker-hint", Static).update(f"{state} · ↑↓ move · Enter open · Esc close")

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + delta))

    def action_choose(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None or not options.option_count:
            return
        self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AgentPicker(ModalScreen[str | None]):
    """Pick an agent profile for a new tab."""

    DEFAULT_CSS = DIALOG_CSS.format(name="AgentPicker") + """
    AgentPicker OptionList { height: auto; max-height: 20; border: none; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, agents: list[tuple[str, str]]) -> None:
        super().__init__()
        self.agents = agents

    def compose(self) -> Any:
        with Vertical():
            yield Static("new tab: pick an agent", classes="title")
            yield OptionList(*[Option(f"{name}  [dim]{desc}[/dim]", id=name) for name, desc in self.agents],
                             id="agent-list")
            yield Static("↑↓ move · Enter start · Esc close", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if options.option_count:
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
