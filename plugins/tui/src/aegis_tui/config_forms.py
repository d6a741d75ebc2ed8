"""The F2 config panel's edit forms: each runs kernel config operations (``aegis_config_*``,
kernel/src/aegis_kernel/config_ops.py) as the user through :meth:`AegisApp.call_op` — the same edit path
as ``aegis config``, in this kernel when the TUI owns the project, on the owner when it is attached.

A form is a list of :class:`Field` and a ``build(values) -> [(operation, args), …]``; Ctrl+S runs the
operations in order, and a refusal (the loader's own ``file:line: message`` inside the operation's
error) is shown in the form, which stays open; nothing is written by a refused edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, Static

Ops = list[tuple[str, dict[str, Any]]]


@attrs.frozen
class Field:
    """One form field: ``kind`` input (text), select (``options``) or check (a checkbox)."""

    id: str
    label: str
    kind: str = "input"
    options: tuple[str, ...] = ()
    default: Any = None
    placeholder: str = ""


class OpForm(ModalScreen[bool]):
    """A validated edit: fields, then the operations ``build`` makes of their values (dismisses True)."""

    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "save", "save", priority=True)]
    DEFAULT_CSS = """
    OpForm { align: center middle; }
    OpForm > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%; border: round $accent;
                        background: $surface; padding: 0 1; }
    OpForm .title { text-style: bold; color: $accent; }
    OpForm .label { margin-top: 1; color: $text-muted; }
    OpForm Input, OpForm Select { background: $boost; }
    OpForm #form-error { color: $error; height: auto; }
    OpForm Horizontal { height: auto; margin-top: 1; }
    OpForm Button { margin-right: 2; }
    """

    def __init__(self, title: str, fields: list[Field], build: Callable[[dict[str, Any]], Ops]) -> None:
        super().__init__()
        self.title_text, self.fields, self.build = title, fields, build

    def compose(self) -> Any:
        with Vertical():
            yield Static(self.title_text, classes="title")
            for f in self.fields:
                if f.kind == "check":
                    yield Checkbox(f.label, value=bool(f.default), id=f"f-{f.id}", compact=True)
                    continue
                yield Static(f.label, classes="label")
                if f.kind == "select":
                    value = f.default if f.default in f.options else (f.options[0] if f.options else Select.BLANK)
                    yield Select([(o, o) for o in f.options], id=f"f-{f.id}", allow_blank=not f.options,
                                 value=value, compact=True)
                else:
                    yield Input(value=str(f.default or ""), placeholder=f.placeholder, id=f"f-{f.id}", compact=True)
            yield Static("", id="form-error")
            with Horizontal():
                yield Button("Save (Ctrl+S)", variant="primary", id="f-save")
                yield Button("Cancel (Esc)", id="f-cancel")

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            widget = self.query_one(f"#f-{f.id}")
            value = widget.value  # type: ignore[attr-defined]
            out[f.id] = value.strip() if isinstance(value, str) else (None if value is Select.BLANK else value)
        return out

    @on(Button.Pressed, "#f-save")
    def action_save(self) -> None:
        try:
            ops = self.build(self.values())
        except ValueError as exc:
            self.show_error(str(exc))
            return
        app: Any = self.app

        async def run() -> None:
            for name, args in ops:
                try:
                    await app.call_op(name, **args)
                except Exception as exc:  # noqa: BLE001 - shown in the form, which stays open
                    app.call_later(self.show_error, str(exc))
                    return
            app.call_later(self.dismiss, True)

        app.in_kernel(run)

    def show_error(self, message: str) -> None:
        if self.is_mounted:
            self.query_one("#form-error", Static).update(f"✗ {message}")

    @on(Button.Pressed, "#f-cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


# --- the forms ------------------------------------------------------------------------------------------


def _need(values: dict[str, Any], key: str, what: str) -> str:
    value = values.get(key)
    if not value:
        raise ValueError(f"{what} is required")
    return str(value)


def _raw(kernel: Any, *keys: str) -> Any:
    value: Any = kernel.config.raw
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _names(kernel: Any, section: str) -> tuple[str, ...]:
    return tuple(sorted(_raw(kernel, section) or {}))


def add_queue_form(kernel: Any) -> OpForm:
    def build(v: dict[str, Any]) -> Ops:
        args: dict[str, Any] = {"name": _need(v, "name", "the queue name"), "agent": _need(v, "agent", "the agent")}
        try:
            args["max_parallel"] = int(v.get("max_parallel") or 1)
        except ValueError:
            raise ValueError("max parallel must be a whole number") from None
        if v.get("budget_usd"):
            try:
                usd = float(v["budget_usd"])
            except ValueError:
                raise ValueError("the budget must be a number of US dollars, e.g. 2.5") from None
            args["budgets"] = [{"usd": usd, "window": v.get("budget_window") or "1d"}]
        if v.get("timeout"):
            args["timeout"] = v["timeout"]
        return [("aegis_config_add_queue", args)]

    return OpForm("add a queue", [
        Field("name", "name", placeholder="e.g. review"),
        Field("agent", "agent", "select", _names(kernel, "agents")),
        Field("max_parallel", "max parallel", default="1"),
        Field("budget_usd", "budget in USD (optional)", placeholder="e.g. 2.5"),
        Field("budget_window", "budget window", default="1d", placeholder="e.g. 1h, 1d"),
        Field("timeout", "task timeout (optional)", placeholder="e.g. 30m"),
    ], build)


def edit_form(kernel: Any, section: str, what: str, fields: tuple[str, ...]) -> OpForm:
    """Set one field of an agent or a queue (``aegis_config_set section.name.field``; an empty value
    removes the field with ``aegis_config_unset``). Values are YAML/JSON-ish: numbers and true/false
    are typed, ``[…]``/``{…}`` parse as JSON, anything else is a string."""
    def build(v: dict[str, Any]) -> Ops:
        path = f"{section}.{_need(v, 'name', what)}.{_need(v, 'field', 'the field')}"
        if not v.get("value"):
            return [("aegis_config_unset", {"path": path})]
        return [("aegis_config_set", {"path": path, "value": typed(v["value"])})]

    return OpForm(f"edit {what}", [
        Field("name", what, "select", _names(kernel, section)),
        Field("field", "field", "select", fields),
        Field("value", "new value (empty removes it)", placeholder='e.g. opus, 3, true, [{"usd": 2, "window": "1d"}]'),
    ], build)


def typed(text: str) -> Any:
    """``"3"`` → 3, ``"2.5"`` → 2.5, ``"true"`` → True, ``[…]``/``{…}`` → JSON; otherwise the text."""
    import json

    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    return text


def remove_form(kernel: Any) -> OpForm:
    ops = {"agent": ("aegis_config_remove_agent", "name"), "queue": ("aegis_config_remove_queue", "name"),
           "plugin folder": ("aegis_config_remove_plugin_dir", "path")}

    def build(v: dict[str, Any]) -> Ops:
        kind = _need(v, "kind", "what to remove")
        op, key = ops[kind]
        return [(op, {key: _need(v, "name", "the name")})]

    return OpForm("remove", [
        Field("kind", "what", "select", tuple(ops)),
        Field("name", "name", placeholder="agents: " + (", ".join(_names(kernel, "agents")) or "none")
              + " · queues: " + (", ".join(_names(kernel, "queues")) or "none")
              + " · folders: " + (", ".join(_raw(kernel, "plugins", "dirs") or ()) or "none")),
    ], build)


def default_agent_form(kernel: Any) -> OpForm:
    return OpForm("default agent", [
        Field("name", "agent", "select", _names(kernel, "agents"), default=_raw(kernel, "default_agent")),
    ], lambda v: [("aegis_config_set", {"path": "default_agent", "value": _need(v, "name", "the agent")})])


def schedule_form(kernel: Any) -> OpForm:
    def build(v: dict[str, Any]) -> Ops:
        return [("aegis_config_set_schedule_enabled", {"name": _need(v, "name", "the schedule"),
                                                        "enabled": bool(v.get("enabled"))})]

    return OpForm("enable or disable a schedule", [
        Field("name", "schedule", "select", _names(kernel, "schedules")),
        Field("enabled", "enabled", "check", default=True),
    ], build)


def plugin_form(kernel: Any) -> OpForm:
    """Enable or disable a plugin (``plugins.disabled``, set whole; emptied → removed)."""
    disabled = list(_raw(kernel, "plugins", "disabled") or [])

    def build(v: dict[str, Any]) -> Ops:
        name = _need(v, "name", "the plugin")
        now = [p for p in disabled if p != name] + ([] if v.get("enabled") else [name])
        if now == disabled:
            return []
        if not now:
            return [("aegis_config_unset", {"path": "plugins.disabled"})]
        return [("aegis_config_set", {"path": "plugins.disabled", "value": now})]

    return OpForm("enable or disable a plugin", [
        Field("name", "plugin", placeholder="disabled now: " + (", ".join(disabled) or "none")),
        Field("enabled", "enabled", "check", default=False),
    ], build)


def plugin_dir_form(kernel: Any) -> OpForm:
    return OpForm("add a plugin folder", [
        Field("path", "folder (each *.py in it loads as a plugin)", placeholder="e.g. .aegis/plugins"),
    ], lambda v: [("aegis_config_add_plugin_dir", {"path": _need(v, "path", "the folder")})])


AGENT_FIELDS = ("model", "provider", "permission", "effort", "description", "prompt", "cwd", "worktree")
QUEUE_FIELDS = ("agent", "max_parallel", "budgets", "timeout", "worktree")

#: key → (help, form factory) — the config panel binds each key to its form
FORMS: dict[str, tuple[str, Callable[[Any], OpForm]]] = {
    "q": ("add queue", add_queue_form),
    "e": ("edit agent", lambda k: edit_form(k, "agents", "agent", AGENT_FIELDS)),
    "u": ("edit queue", lambda k: edit_form(k, "queues", "queue", QUEUE_FIELDS)),
    "x": ("remove", remove_form),
    "d": ("default agent", default_agent_form),
    "s": ("schedule on/off", schedule_form),
    "p": ("plugin on/off", plugin_form),
    "f": ("add plugin folder", plugin_dir_form),
}
