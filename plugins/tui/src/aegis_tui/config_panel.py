"""The F2 config panel: every section at a glance (agents first, then whatever plugins declared — queues
when the queue plugin is installed), ``a`` to add an agent through a validated form, and the edit forms
of :mod:`aegis_tui.config_forms` (queues with budgets, agent/queue fields, removals, the default agent,
schedules and plugins on/off, plugin folders), which run the kernel's ``aegis_config_*`` operations.

Every edit goes through the kernel's one edit path: the ``aegis_config_*`` operations called as the user
(:meth:`AegisApp.call_op`, here or on the owner when attached), validated by the real loader: comments
survive, a bad value is refused with the loader's own ``file:line: message @ key.path`` and nothing is
written. (:func:`add_agent` is the same edit without a running kernel.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
from rich.table import Table
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, Static

from aegis_kernel import PERMISSIONS

from .config_forms import FORMS

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


def config_path(kernel: Any) -> Path:
    return kernel.config.path or (kernel.project_dir / ".aegis.yaml")


def add_agent(kernel: Any, name: str, profile: dict[str, Any], *, make_default: bool = False) -> None:
    """Write ``agents.<name>`` (and ``default_agent``) through the validated edit path, then reload the
    kernel's config. Raises ``ValueError`` for a bad name or a taken one, ``ConfigError`` when the
    loader refuses the result (nothing is written then)."""
    from aegis_kernel import set_key, validator_for

    check_new_agent(kernel, name)
    path = config_path(kernel)
    validate = validator_for(kernel, path)  # the running kernel's rules: checks, drivers, dormant sections
    set_key(path, ["agents", name], {k: v for k, v in profile.items() if v not in (None, "")}, validate=validate)
    if make_default or not kernel.config.get("default_agent"):
        set_key(path, ["default_agent"], name, validate=validate)
    reload_config(kernel)


def check_new_agent(kernel: Any, name: str) -> None:
    """Raise ``ValueError`` for a bad agent name or a taken one."""
    if not NAME_RE.match(name):
        raise ValueError("the agent name must be lowercase letters, digits, '-' or '_', starting with a letter")
    if name in (kernel.config.get("agents") or {}):
        raise ValueError(f"an agent named '{name}' already exists")


def reload_config(kernel: Any) -> None:
    kernel.reload_config()


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))
                if getattr(value, f.name) != f.default and not (isinstance(f.default, attrs.Factory)
                                                                and not getattr(value, f.name))}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _brief(value: Any) -> str:
    plain = _plain(value)
    if isinstance(plain, dict):
        return "  ".join(f"{k}={_brief(v) if isinstance(v, (dict, list)) else v}" for k, v in plain.items()) or "(defaults)"
    if isinstance(plain, list):
        return f"[{len(plain)} items]"
    return str(plain)


def summary(kernel: Any) -> Table:
    config = kernel.config
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    agents = config.get("agents") or {}
    default = config.get("default_agent")
    table.add_row(Text("agents", style="bold cyan"), Text(f"{len(agents)} configured"
                                                         + (f" · default: {default}" if default else "")))
    for name, p in agents.items():
        star = "★ " if name == default else "  "
        table.add_row(f"{star}{name}", Text(f"{p.provider}  model={p.model or '-'}  permission={p.permission}"
                                            + (f"  effort={p.effort}" if p.effort else "")
                                            + (f"  — {p.description}" if p.description else "")))
    plugins = config.raw.get("plugins") if isinstance(config.raw.get("plugins"), dict) else {}
    if plugins.get("disabled") or plugins.get("dirs"):
        table.add_row("", "")
        table.add_row(Text("plugins", style="bold cyan"),
                      Text(f"disabled: {', '.join(plugins.get('disabled') or ()) or 'none'}"
                           f"  folders: {', '.join(plugins.get('dirs') or ()) or 'none'}"))
    for section, value in config.sections.items():
        if section in ("agents", "default_agent", "plugins") or value in (None, {}, [], ()):
            continue
        table.add_row("", "")
        if isinstance(value, dict):
            table.add_row(Text(section, style="bold cyan"), Text(f"{len(value)} entries"))
            for key, item in value.items():
                table.add_row(f"  {key}", Text(_brief(item)))
        else:
            table.add_row(Text(section, style="bold cyan"), Text(_brief(value)))
    return table


class ConfigPanel(Vertical):
    """The config tab."""

    BINDINGS = [Binding("a", "add_agent", "add agent"), Binding("r", "reload", "reload"),
                *[Binding(key, f"form('{key}')", help) for key, (help, _) in FORMS.items()]]
    DEFAULT_CSS = """
    ConfigPanel { height: 1fr; padding: 0 1; }
    ConfigPanel #config-head { height: auto; margin-bottom: 1; }
    ConfigPanel #config-prompt { height: auto; color: $warning; text-style: bold; margin-bottom: 1; }
    """

    class AgentAdded(Message):
        def __init__(self, name: str) -> None:
            self.name = name
            super().__init__()

    def __init__(self, kernel: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel = kernel

    def compose(self) -> Any:
        yield Static("", id="config-head")
        yield Static("", id="config-prompt")
        with VerticalScroll(id="config-scroll"):
            yield Static("", id="config-body")

    def on_mount(self) -> None:
        self.refresh_summary()

    def focus_content(self) -> None:
        self.query_one("#config-scroll").focus()

    def refresh_summary(self) -> None:
        path = self.kernel.config.path
        self.query_one("#config-head", Static).update(
            Text.assemble(("config ", "bold"), (str(path) if path else f"no .aegis.yaml in {self.kernel.project_dir}",
                                               "dim"), ("   a add agent · r reload · " + " · ".join(f"{k} {h}" for k, (h, _) in FORMS.items()), "dim")))
        agents = self.kernel.config.get("agents") or {}
        prompt = self.query_one("#config-prompt", Static)
        if not agents:
            prompt.update("No agents yet — press a to add your first agent (try provider 'scripted': no account "
                          "needed).")
            prompt.display = True
        else:
            prompt.display = False
        self.query_one("#config-body", Static).update(summary(self.kernel))

    def action_reload(self) -> None:
        from aegis_kernel import ConfigError

        try:
            reload_config(self.kernel)
        except ConfigError as exc:
            self.notify(str(exc), title="invalid configuration", severity="error", timeout=10)
            return
        self.refresh_summary()
        self.notify("config reloaded")

    def action_form(self, key: str) -> None:
        """Open the edit form bound to ``key`` (:data:`aegis_tui.config_forms.FORMS`); a saved edit
        redraws the summary (attached: after re-reading the file the owner just wrote)."""
        def done(saved: bool | None) -> None:
            if not saved:
                return
            if getattr(self.app, "remote", None) is not None:
                from aegis_kernel import ConfigError

                try:
                    reload_config(self.kernel)
                except ConfigError as exc:
                    self.notify(str(exc), title="invalid configuration", severity="error", timeout=10)
            self.refresh_summary()
            self.notify("config saved")

        self.app.push_screen(FORMS[key][1](self.kernel), done)

    def action_add_agent(self) -> None:
        def done(name: str | None) -> None:
            if name:
                self.refresh_summary()
                self.post_message(self.AgentAdded(name))

        self.app.push_screen(AddAgentForm(self.kernel), done)


class AddAgentForm(ModalScreen[str | None]):
    """Name, provider, model, permission, effort, description, default — validated by the real loader."""

    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "save", "save", priority=True)]
    DEFAULT_CSS = """
    AddAgentForm { align: center middle; }
    AddAgentForm > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%; border: round $accent;
                              background: $surface; padding: 0 1; }
    AddAgentForm .title { text-style: bold; color: $accent; }
    AddAgentForm .label { margin-top: 1; color: $text-muted; }
    AddAgentForm Input, AddAgentForm Select { background: $boost; }
    AddAgentForm #form-error { color: $error; height: auto; }
    AddAgentForm Horizontal { height: auto; margin-top: 1; }
    AddAgentForm Button { margin-right: 2; }
    """

    def __init__(self, kernel: Any) -> None:
        super().__init__()
        self.kernel = kernel

    def compose(self) -> Any:
        drivers = sorted(self.kernel.plugins.registry.objects("drivers"))
        first = not (self.kernel.config.get("agents") or {})
        with Vertical():
            yield Static("add an agent", classes="title")
            yield Static("name", classes="label")
            yield Input(placeholder="e.g. reviewer", id="f-name", compact=True)
            yield Static("provider", classes="label")
            yield Select([(d, d) for d in drivers], id="f-provider", allow_blank=False, compact=True,
                         value="scripted" if "scripted" in drivers else (drivers[0] if drivers else Select.BLANK))
            yield Static("model (optional)", classes="label")
            yield Input(placeholder="e.g. opus, gemini-2.5-pro", id="f-model", compact=True)
            yield Static("permission", classes="label")
            yield Select([(p, p) for p in PERMISSIONS], id="f-permission", allow_blank=False, value="write", compact=True)
            yield Static("effort (optional)", classes="label")
            yield Input(placeholder="e.g. high", id="f-effort", compact=True)
            yield Static("description (optional)", classes="label")
            yield Input(id="f-description", compact=True)
            yield Checkbox("make it the default agent", value=first, id="f-default", compact=True)
            yield Static("", id="form-error")
            with Horizontal():
                yield Button("Save (Ctrl+S)", variant="primary", id="f-save")
                yield Button("Cancel (Esc)", id="f-cancel")

    def on_mount(self) -> None:
        self.query_one("#f-name", Input).focus()

    @on(Button.Pressed, "#f-save")
    def action_save(self) -> None:
        def value(widget_id: str) -> str:
            return self.query_one(widget_id, Input).value.strip()

        provider = self.query_one("#f-provider", Select).value
        profile = {
            "provider": provider if isinstance(provider, str) else "",
            "model": value("#f-model"),
            "permission": self.query_one("#f-permission", Select).value,
            "effort": value("#f-effort"),
            "description": value("#f-description"),
        }
        name = value("#f-name")
        make_default = bool(self.query_one("#f-default", Checkbox).value)
        try:
            check_new_agent(self.kernel, name)
        except ValueError as exc:
            self.query_one("#form-error", Static).update(f"✗ {exc}")
            return
        self._save_on_owner(name, profile, make_default)

    def _save_on_owner(self, name: str, profile: dict[str, Any], make_default: bool) -> None:
        """``aegis_config_add_agent`` (and ``aegis_config_set default_agent``) as the user, on the kernel
        that owns the project (this one, or the Aegis this TUI is attached to): validated and applied
        there at once; an attached TUI then re-reads the file."""
        app: Any = self.app
        args = {k: v for k, v in profile.items() if v not in (None, "")}

        async def save() -> None:
            try:
                await app.call_op("aegis_config_add_agent", name=name, **args)
                if make_default:
                    await app.call_op("aegis_config_set", path="default_agent", value=name)
            except Exception as exc:  # noqa: BLE001 - shown in the form, as a local refusal is
                app.call_later(self._show_error, str(exc))
                return
            app.call_later(self._saved_on_owner, name)

        app.in_kernel(save)

    def _show_error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(f"✗ {message}")

    def _saved_on_owner(self, name: str) -> None:
        from aegis_kernel import ConfigError

        try:
            if getattr(self.app, "remote", None) is not None:  # owning: the edit already applied it here
                reload_config(self.kernel)
        except ConfigError as exc:
            self.notify(str(exc), title="invalid configuration", severity="error", timeout=10)
        self.notify(f"added agent '{name}' to {config_path(self.kernel).name}")
        self.dismiss(name)

    @on(Button.Pressed, "#f-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


_ = Horizontal
