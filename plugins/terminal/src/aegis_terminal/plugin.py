"""aegis-terminal plugin entry point. Import-light: heavy modules are imported inside the hooks.

Registers the terminal operations (handlers in :mod:`aegis_terminal.operations`, imported on first
call), the terminal service (which publishes its runtime: ``kernel.service(TerminalRuntime)``),
``aegis term …``, the TUI's terminal tab (where aegis-tui is installed), and the observer that ends a
closed session's subscriptions.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl

_OPS = "aegis_terminal.operations:"
_FROM = {"type": "string", "description": "your own handle (optional; must be you)"}
_NAME = {"type": "string", "minLength": 1, "description": "the terminal name (lowercase letters, digits, - or _)"}

# the session-close reasons that do not end subscriptions (the kernel stopping; a resume taking over)
KEEP_ON_CLOSE = ("shutdown", "resumed")


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from aegis_kernel import params

    register("aegis_term_spawn", _OPS + "term_spawn",
             "Start (or re-start, keeping its history) a named shell on a pseudo-terminal that every agent and "
             "the user share. shell: default $SHELL or /bin/bash; cwd: a folder of the project (default its "
             "root). The shell's environment has AEGIS_TERM=<name>. Spawning a running terminal returns it.",
             params(("name",), name=_NAME, shell={"type": ["string", "null"], "default": None},
                    cwd={"type": ["string", "null"], "default": None}, from_handle=_FROM),
             approval=_OPS + "may_execute")
    register("aegis_term_run", _OPS + "term_run",
             "Run a command line in a terminal and wait for it: returns its record (seq, exit, duration_s, "
             "output capped head+tail with bytes_cut). Runs on one terminal go first come, first served. After "
             "timeout_s it returns timed_out: true — the command is still running; interrupt it with "
             "aegis_term_keys(name, 'ctrl-c') or follow it with aegis_term_read. Subscribers are woken.",
             params(("name", "cmd"), name=_NAME, cmd={"type": "string", "minLength": 1},
                    timeout_s={"type": "number", "exclusiveMinimum": 0, "maximum": 86400, "default": 120},
                    from_handle=_FROM),
             approval=_OPS + "may_execute")
    register("aegis_term_keys", _OPS + "term_keys",
             "Type into a terminal: text, or named keys — 'ctrl-c', 'enter', 'up', 'esc', 'tab'… — alone or "
             "as {name} inside text ('q{enter}'). Commands started this way are recorded too.",
             params(("name", "keys"), name=_NAME, keys={"type": "string", "minLength": 1}, from_handle=_FROM),
             approval=_OPS + "may_execute")
    register("aegis_term_read", _OPS + "term_read",
             "A terminal's finished commands (the last last_n, or all after since_seq) and the running one "
             "with its output so far.",
             params(("name",), name=_NAME, last_n={"type": "integer", "minimum": 0, "maximum": 500, "default": 5},
                    since_seq={"type": ["integer", "null"], "minimum": 0, "default": None}, from_handle=_FROM))
    register("aegis_term_screen", _OPS + "term_screen",
             "The terminal's current screen as text (from a terminal emulator: what a person would see, "
             "full-screen programs included) and the cursor position.",
             params(("name",), name=_NAME, from_handle=_FROM))
    register("aegis_term_resize", _OPS + "term_resize", "Set a terminal's size (rows × cols).",
             params(("name", "rows", "cols"), name=_NAME, rows={"type": "integer", "minimum": 2, "maximum": 1000},
                    cols={"type": "integer", "minimum": 10, "maximum": 1000}))
    register("aegis_term_subscribe", _OPS + "term_subscribe",
             "Be woken when a command finishes in a terminal (not for your own): '✉ from term:<name>' with "
             "'$ <cmd> · run by <who>', 'exit N · 1.23s' and the output's tail.",
             params(("name",), name=_NAME, from_handle=_FROM))
    register("aegis_term_unsubscribe", _OPS + "term_unsubscribe", "Stop being woken by a terminal.",
             params(("name",), name=_NAME, from_handle=_FROM))
    register("aegis_term_close", _OPS + "term_close",
             "Close a terminal's shell (SIGHUP, then SIGTERM, then SIGKILL to its processes after a grace "
             "period). Its history stays; aegis_term_spawn starts it again.",
             params(("name",), name=_NAME, from_handle=_FROM))
    register("aegis_term_list", _OPS + "term_list",
             "The terminals: state (idle, busy, closed), shell, cwd, last seq, the running command, subscribers.",
             params())


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("terminal", "aegis_terminal.service:TerminalService")  # lazy: plugin loading never imports trio


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("term", "shared terminals: list, spawn, run, keys, read, screen, close", setup, run)


@hookimpl(optionalhook=True)
def aegis_register_panels(register: Any) -> None:
    """The terminal tabs where aegis-tui is installed: Ctrl+E asks a name, then one ``term:<name>`` tab per
    terminal (opened with ``app.open_panel_tab("terminal", arg=name)``, saved and re-spawned on restore)."""
    register("terminal", _terminal_tab, kind="tab", key="ctrl+e", title="terminal", arg_title="term:{arg}")


def _terminal_tab(app: Any, kernel: Any, name: str | None = None) -> Any:
    from .tui import terminal_tab

    return terminal_tab(app, kernel, name)


@hookimpl
def aegis_session_closed(session: Any, reason: str) -> None:
    """A closed session's subscriptions end (not when the kernel stops, nor when a resume takes over)."""
    if reason in KEEP_ON_CLOSE:
        return
    from .runtime import TerminalRuntime

    rt = session.kernel.find_service(TerminalRuntime)
    if rt is not None:
        rt.session_closed(session.handle, reason)
