"""The TUI's terminal tab (Ctrl+E), contributed through aegis-tui's panels hook.

A client of the terminal operations only (``app.run_op``, as the user), so it works the same in a TUI
that owns the kernel and in one attached to ``aegis serve``. **Ctrl+E** opens a prompt tab that asks
for a terminal name and lists the existing terminals (agents' too); Enter opens the one TUI tab of that
terminal, ``term:<name>`` (``app.open_panel_tab("terminal", arg=name)``; an open one comes to the
front), and the prompt closes. A ``term:<name>`` tab spawns its terminal when it opens (a running
one is returned as is; a closed one starts again with its history) — so the tabs saved in the
workspace re-spawn their shells on restore. The tab shows one of two modes, toggled with **Ctrl+K**
and named in the tab's header:

- **run**: an input line; Enter runs it with ``aegis_term_run`` (recorded as run by ``user``); past
  commands are shown as blocks — ``$ cmd · run by who · exit N · 1.23s`` and their output;
- **raw**: every key goes to the PTY (``aegis_term_keys``, in order, one call in flight at a time) and
  the screen is drawn from the emulator (``aegis_term_screen``), so ``top``, ``less`` and ``vim`` work.

The view refreshes on a timer (fast in raw mode) while the tab is shown.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Static

# Textual key names → aegis_term_keys names
KEY_NAMES = {"enter": "enter", "escape": "esc", "tab": "tab", "backspace": "backspace", "up": "up", "down": "down",
             "left": "left", "right": "right", "home": "home", "end": "end", "pageup": "pageup",
             "pagedown": "pagedown", "delete": "delete", "insert": "insert", "space": "space"}


def key_text(key: str, character: str | None) -> str | None:
    """What ``aegis_term_keys`` gets for one Textual key press (None: nothing to send)."""
    if key in KEY_NAMES:
        return "{" + KEY_NAMES[key] + "}"
    if key.startswith("ctrl+") and len(key) == 6:
        return "{ctrl-" + key[-1] + "}"
    if key.startswith("f") and key[1:].isdigit():
        return "{" + key + "}"
    if character and character.isprintable():
        return character.replace("{", "{{")
    return None


def block(rec: dict[str, Any]) -> Text:
    """One finished command as a block: its header line (dim) and its output."""
    outcome = f"exit {rec['exit']}" if rec.get("exit") is not None else str(rec.get("status", "")).replace("_", " ")
    dur = rec.get("duration_s")
    head = Text(f"$ {rec.get('cmd')}", style="bold")
    head.append(f"  · run by {rec.get('who')} · ", style="dim")
    head.append(outcome, style="green" if rec.get("exit") == 0 else "red")
    if isinstance(dur, (int, float)):
        head.append(f" · {dur:.2f}s", style="dim")
    out = rec.get("output") or ""
    return head + (Text("\n" + out) if out else Text(""))


class TerminalTab(Vertical):
    """The terminal tab (see the module docstring)."""

    DEFAULT_CSS = """
    TerminalTab { height: 1fr; }
    TerminalTab #term-header { height: 1; background: $boost; }
    TerminalTab #term-blocks { height: 1fr; }
    TerminalTab #term-screen { height: 1fr; }
    TerminalTab .hidden { display: none; }
    """
    # priority: the input line binds Ctrl+K itself (delete to the end)
    BINDINGS = [Binding("ctrl+k", "toggle_mode", "run/raw", priority=True)]

    def __init__(self, app: Any, term: str | None = None) -> None:
        super().__init__()
        self.aegis = app
        self.wanted = term  # the terminal this tab shows (None: the name prompt)
        self.term: str | None = None
        self.mode = "run"
        self.records: list[dict[str, Any]] = []
        self.screen_text = ""
        self.state = "?"
        self._keys = ""
        self._sending = False
        self._timer: Any = None
        self._ticks = 0

    def compose(self) -> ComposeResult:
        yield Static(self._header(), id="term-header")
        yield Input(placeholder="terminal name (new or existing), Enter", id="term-name",
                    classes="hidden" if self.wanted else "")
        with VerticalScroll(id="term-blocks", classes="hidden"):
            yield Static("", id="term-log")
        yield RawScreen(self, id="term-screen", classes="hidden")
        yield Input(placeholder="command · Enter runs it · Ctrl+K raw mode", id="term-input", classes="hidden")

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self.tick)
        if self.wanted is not None:
            self.aegis.run_op("aegis_term_spawn", then=self.opened, name=self.wanted)
            return
        self.query_one("#term-name", Input).focus()
        self.aegis.run_op("aegis_term_list", then=self._known)

    def _known(self, out: dict[str, Any]) -> None:
        """Name the existing terminals (agents' too) in the name prompt: any of them can be opened."""
        names = [t["terminal"] for t in out.get("terminals") or ()]
        if names and self.is_attached:
            self.query_one("#term-name", Input).placeholder = (
                "terminal name, Enter · existing: " + ", ".join(names[:12]) + (" …" if len(names) > 12 else ""))

    def _header(self) -> Text:
        if self.term is None:
            if self.wanted is not None:
                return Text(f" term:{self.wanted} · starting…", style="dim")
            return Text(" terminal · Ctrl+E · name a terminal to open it", style="dim")
        return Text(f" term:{self.term} · {self.state} · mode: {self.mode} (Ctrl+K)", style="bold")

    # --- opening a terminal -------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "term-name":
            name = event.value.strip()
            if name:
                self.aegis.run_worker(self._open_tab(name))
        elif event.input.id == "term-input" and self.term:
            line = event.value
            if line.strip():
                event.input.value = ""
                self.aegis.run_op("aegis_term_run", then=lambda out: self.refresh_view(), name=self.term,
                                  cmd=line, timeout_s=86400)

    async def _open_tab(self, name: str) -> None:
        """The prompt's Enter: the terminal's own tab comes to the front, then the prompt closes."""
        if await self.aegis.open_panel_tab("terminal", arg=name, activate=True) is not None:
            await self.aegis.close_panel_tab(self)

    def opened(self, out: dict[str, Any]) -> None:
        if not out.get("terminal") or not self.is_attached:
            return  # the spawn was refused (the app showed why) or the tab is gone
        self.term = out["terminal"]
        self.state = out.get("state", "?")
        self.query_one("#term-name", Input).add_class("hidden")
        self._show_mode()
        self.refresh_view()

    def _show_mode(self) -> None:
        raw = self.mode == "raw"
        self.query_one("#term-blocks").set_class(raw, "hidden")
        self.query_one("#term-input").set_class(raw, "hidden")
        self.query_one("#term-screen").set_class(not raw, "hidden")
        (self.query_one("#term-screen") if raw else self.query_one("#term-input", Input)).focus()
        self.query_one("#term-header", Static).update(self._header())

    def action_toggle_mode(self) -> None:
        if self.term is None:
            return
        self.mode = "raw" if self.mode == "run" else "run"
        self._show_mode()
        self.refresh_view()

    # --- refresh ------------------------------------------------------------------------------------

    def tick(self) -> None:
        """The timer: every tick in raw mode, every fifth in run mode."""
        self._ticks += 1
        if self.mode == "raw" or self._ticks % 5 == 0:
            self.refresh_view()

    def refresh_view(self) -> None:
        if self.term is None or not self.is_attached:
            return
        if self.mode == "raw":
            self.aegis.run_op("aegis_term_screen", then=self._screen, name=self.term)
        else:
            self.aegis.run_op("aegis_term_read", then=self._read, name=self.term, last_n=50)

    def _screen(self, out: dict[str, Any]) -> None:
        self.screen_text = out.get("text", "")
        self.state = out.get("state", self.state)
        if self.is_attached:
            self.query_one("#term-screen", RawScreen).update(Text(self.screen_text))
            self.query_one("#term-header", Static).update(self._header())

    def _read(self, out: dict[str, Any]) -> None:
        self.records = list(out.get("commands") or [])
        self.state = out.get("state", self.state)
        if not self.is_attached:
            return
        parts = [block(r) for r in self.records]
        if out.get("running"):
            r = out["running"]
            parts.append(Text(f"$ {r.get('cmd')}  · run by {r.get('who')} · running…\n", style="yellow")
                         + Text(r.get("output_tail") or ""))
        self.query_one("#term-log", Static).update(Text("\n\n").join(parts) if parts else Text(""))
        self.query_one("#term-header", Static).update(self._header())

    # --- raw keys -----------------------------------------------------------------------------------

    def send_key(self, text: str) -> None:
        self._keys += text
        self._flush()

    def _flush(self) -> None:
        if self._sending or not self._keys or self.term is None:
            return
        keys, self._keys = self._keys, ""
        self._sending = True

        def done(_: Any) -> None:
            self._sending = False
            self._flush()

        if not self.aegis.run_op("aegis_term_keys", then=done, name=self.term, keys=keys):
            self._sending = False


class RawScreen(Static, can_focus=True):
    """The emulator's screen; while focused, every key goes to the PTY (Ctrl+K toggles back to run)."""

    def __init__(self, tab: TerminalTab, **kw: Any) -> None:
        super().__init__("", **kw)
        self.tab = tab

    def on_resize(self, event: Any) -> None:
        """The PTY follows the view's size (the program in front redraws for it)."""
        rows, cols = max(2, event.size.height), max(10, event.size.width)
        if self.tab.term is not None and rows > 2:
            self.tab.aegis.run_op("aegis_term_resize", name=self.tab.term, rows=rows, cols=cols)

    def on_key(self, event: Any) -> None:
        if event.key == "ctrl+k":
            return  # the tab's binding
        text = key_text(event.key, event.character)
        if text is not None:
            event.stop()
            event.prevent_default()
            self.tab.send_key(text)


def terminal_tab(app: Any, kernel: Any, term: str | None = None) -> Widget:
    """The panels hook's factory: ``factory(app, kernel)`` is the name prompt (Ctrl+E),
    ``factory(app, kernel, name)`` the tab of terminal ``name`` (``app.open_panel_tab(..., arg=name)``)."""
    return TerminalTab(app, term)
