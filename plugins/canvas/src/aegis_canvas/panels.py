"""The TUI's canvases tab (``kind="tab"``, Ctrl+B), contributed through aegis-tui's panels hook.

Every canvas rendered as markdown, each section heading followed by who wrote it last; it redraws on
every change the runtime reports (:meth:`CanvasRuntime.on_change`), in-process; attached to a serve, it
asks the serve (``aegis_canvas_list`` / ``aegis_canvas_read``) once a second. Textual is imported inside
the factory only, so the plugin stays import-light and works headless.
"""

from __future__ import annotations

from typing import Any

from .sections import PREAMBLE, parse, split_lines


def annotated(info: dict[str, Any], text: str) -> str:
    """``text`` with a line under each section heading naming who wrote that section last (for display
    only), under a title line naming the canvas, its file and version."""
    lines = split_lines(text)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    last = info.get("last") or {}
    for sec in reversed(parse(text)):
        if sec.name == PREAMBLE or sec.heading is None or sec.name not in last:
            continue
        rec = last[sec.name]
        lines.insert(sec.heading + 1, f"\n*✎ {rec.get('writer')} · v{rec.get('version')} · "
                                      f"+{rec.get('added')} / -{rec.get('removed')} · {rec.get('at')}*\n\n")
    subs = ", ".join(info.get("subscribers") or {}) or "nobody"
    title = f"# {info['canvas']}\n\n`{info['file']}` · version {info['version']} · subscribers: {subs}\n\n"
    return title + "".join(lines)


def document(entries: list[tuple[dict[str, Any], str]]) -> str:
    """The tab's whole markdown: every canvas, :func:`annotated`, separated by rules."""
    if not entries:
        return "*No canvases yet: an agent opens one with `aegis_canvas_open`.*"
    return "\n\n---\n\n".join(annotated(info, text) for info, text in entries)


def _runtime(kernel: Any) -> Any:
    from .runtime import CanvasRuntime

    return kernel.find_service(CanvasRuntime)


def local_entries(rt: Any) -> list[tuple[dict[str, Any], str]]:
    if rt is None:
        return []
    return [(rt.canvases[name].info(), rt.canvases[name].text) for name in sorted(rt.canvases)]


async def claims(app: Any, kernel: Any, rel: str) -> bool:
    """Does ``rel`` (a project file, POSIX) hold a canvas? Then ``aegis_view_file`` on it opens this tab
    on that canvas (aegis-tui's ``claims``): from the runtime here, or the owner's ``aegis_canvas_list``."""
    if getattr(app, "remote", None) is not None:
        listed = await app.call_op("aegis_canvas_list")
        return any(info.get("file") == rel for info in listed.get("canvases") or ())
    rt = _runtime(kernel)
    return rt is not None and any(c.rel == rel for c in rt.canvases.values())


def first(entries: list[tuple[dict[str, Any], str]], rel: str | None) -> list[tuple[dict[str, Any], str]]:
    """``entries`` with the canvas bound to file ``rel`` first (the one the user was sent to)."""
    return sorted(entries, key=lambda e: e[0].get("file") != rel) if rel else entries


def tab(app: Any, kernel: Any) -> Any:
    """Factory for the canvases tab."""
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown

    class CanvasTab(VerticalScroll):
        DEFAULT_CSS = "CanvasTab { height: 1fr; padding: 0 1; }"

        def __init__(self) -> None:
            super().__init__(id="canvas-tab")
            self.view = Markdown("", id="canvas-doc")
            self._seen: Any = None
            self._unsubscribe: Any = None
            self.focus_file: str | None = None  # the canvas file shown first (``show_path``)

        def compose(self) -> Any:
            yield self.view

        def on_mount(self) -> None:
            self.set_interval(1.0, self._follow)  # catches a canvas service starting after the TUI, or a serve
            self._follow()

        def on_unmount(self) -> None:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

        def _follow(self) -> None:
            if getattr(app, "remote", None) is not None:  # attached to a serve: ask it
                app.in_kernel(self._poll)
                return
            rt = _runtime(kernel)
            if rt is not None and self._unsubscribe is None:
                self._unsubscribe = rt.on_change(lambda name, what: self.redraw())
            self.redraw()

        def show_path(self, rel: str) -> None:
            """Put the canvas bound to ``rel`` first and scroll to the top (``aegis_view_file`` on it)."""
            self.focus_file = rel
            self._seen = None
            self._follow()
            self.scroll_home(animate=False)

        def redraw(self) -> None:
            rt = _runtime(kernel)
            generation = getattr(rt, "generation", None)
            if generation is not None and generation == self._seen:
                return
            self._seen = generation
            self.show(document(first(local_entries(rt), self.focus_file)))

        def show(self, text: str) -> None:
            if text != getattr(self, "_shown", None):
                self._shown = text
                self.call_later(self.view.update, text)

        async def _poll(self) -> None:
            try:
                listed = await app.call_op("aegis_canvas_list")
                entries = [(info, (await app.call_op("aegis_canvas_read", name=info["canvas"]))["text"])
                           for info in listed["canvases"]]
            except Exception:  # noqa: BLE001 - no canvas service there
                entries = []
            self.show(document(first(entries, self.focus_file)))

    return CanvasTab()
