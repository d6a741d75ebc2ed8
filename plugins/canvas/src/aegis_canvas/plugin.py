"""aegis-canvas plugin entry point. Import-light: heavy modules are imported inside the hooks.

Registers the canvas operations (handlers in :mod:`aegis_canvas.operations`, imported on first call),
the canvas service (which publishes its runtime: ``kernel.service(CanvasRuntime)``), ``aegis canvas …``,
the TUI's canvas tab (where aegis-tui is installed), and the observer that ends a closed session's
subscriptions.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl

_OPS = "aegis_canvas.operations:"
_STR = {"type": "string", "minLength": 1}
_FROM = {"type": "string", "description": "your own handle (optional; must be you)"}
_NAME = {"type": "string", "minLength": 1, "description": "the canvas name (lowercase letters, digits, - or _)"}
_SECTION = {"type": "string", "minLength": 1, "description": "a '## ' heading's text; _preamble is the text "
                                                              "before the first heading"}

# the session-close reasons that do not end subscriptions: the kernel stopping (the session is restored
# by the next start) and a failed session being taken over by its own resume
KEEP_ON_CLOSE = ("shutdown", "resumed")


class CanvasService:
    """Runs one :class:`~aegis_canvas.runtime.CanvasRuntime` per kernel: replays the ledgers, then
    watches the bound files."""

    provides = "aegis_canvas.runtime:CanvasRuntime"

    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        import trio

        from .runtime import CanvasRuntime

        task_status = task_status or trio.TASK_STATUS_IGNORED
        rt = CanvasRuntime(kernel)
        try:
            await rt.start()
            task_status.started(rt)
            await rt.watch()
        finally:
            for canvas in rt.canvases.values():
                canvas.journal.close()


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from aegis_kernel import params

    register("aegis_canvas_open", _OPS + "canvas_open",
             "Bind a canvas name to a markdown file in the project (created with its folders when missing). "
             "Sections are its '## ' headings. Returns the canvas's version and sections.",
             params(("name", "file"), name=_NAME, file={**_STR, "description": "path relative to the project root"},
                    from_handle=_FROM))
    register("aegis_canvas_read", _OPS + "canvas_read",
             "Read a canvas (its whole text) or one section, with the canvas's current version.",
             params(("name",), name=_NAME, section={**_SECTION, "type": ["string", "null"], "default": None},
                    from_handle=_FROM))
    register("aegis_canvas_write_section", _OPS + "canvas_write_section",
             "Replace one section's text (the section is created when missing). Returns the new version. "
             "With if_version, the write is refused as 'conflict' (with a diff of what changed since) when "
             "the canvas is no longer at that version: read again and retry. Every other subscriber is woken "
             "with a diff of the section.",
             params(("name", "section", "content"), name=_NAME, section=_SECTION, content={"type": "string"},
                    if_version={"type": ["integer", "null"], "minimum": 0, "default": None}, from_handle=_FROM))
    register("aegis_canvas_append_to_section", _OPS + "canvas_append_to_section",
             "Add text at the end of one section (created when missing). Returns the new version.",
             params(("name", "section", "content"), name=_NAME, section=_SECTION, content={"type": "string"},
                    from_handle=_FROM))
    register("aegis_canvas_subscribe", _OPS + "canvas_subscribe",
             "Be woken when someone else changes the canvas (or only the given sections): "
             "'✉ from canvas:<name>' with 'section \"s\" · written by <who> (+a / -r lines)' and a preview.",
             params(("name",), name=_NAME,
                    sections={"type": ["array", "null"], "items": {"type": "string"}, "default": None},
                    from_handle=_FROM))
    register("aegis_canvas_unsubscribe", _OPS + "canvas_unsubscribe", "Stop being woken by a canvas.",
             params(("name",), name=_NAME, from_handle=_FROM))
    register("aegis_canvas_list", _OPS + "canvas_list",
             "The canvases: file, version, sections, subscribers, who wrote each section last.", params())
    register("aegis_canvas_log", _OPS + "canvas_log",
             "A canvas's latest writes from its ledger: who, which section, +added/-removed lines, version.",
             params(("name",), name=_NAME, n={"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}))
    register("aegis_canvas_diff", _OPS + "canvas_diff",
             "A unified diff of the canvas from version `since` to now (recent versions only).",
             params(("name", "since"), name=_NAME, since={"type": "integer", "minimum": 0}))


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("canvas", CanvasService())


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("canvas", "canvases: list, show, read, write, log", setup, run)


@hookimpl(optionalhook=True)  # declared by aegis-tui; without it there are no panels to contribute
def aegis_register_panels(register: Any) -> None:
    from .panels import claims, tab

    # claims: aegis_view_file on a canvas file opens this tab on that canvas instead of a file view
    register("canvases", tab, kind="tab", key="ctrl+b", title="canvases", claims=claims)


@hookimpl
def aegis_session_closed(session: Any, reason: str) -> None:
    """A closed session's subscriptions end (not when the kernel stops, nor when a resume takes over)."""
    if reason in KEEP_ON_CLOSE:
        return
    from .runtime import CanvasRuntime

    rt = session.kernel.find_service(CanvasRuntime)
    if rt is not None:
        rt.session_closed(session.handle, reason)
