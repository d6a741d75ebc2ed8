"""The group tab (contributed through aegis-tui's ``aegis_register_panels``, F6): per group, Members
(state dots; for the current broadcast ✓ answered, … waiting, ✗ error), Current broadcast (who asked,
how many answered) and Recent broadcasts.

In-process it redraws on every change the runtime reports (:meth:`GroupRuntime.subscribe`); a TUI
attached to an ``aegis serve`` polls the owner's ``aegis_group_status`` instead (once a second).
Textual is imported inside the factory only.
"""

from __future__ import annotations

from typing import Any

DOTS = {"ready": "●", "working": "◐", "input-required": "?", "starting": "○", "error": "✗", "closed": "·",
        "gone": "·"}
ANSWER = {"yes": "✓", "no": "…", "error": "✗", "-": " "}
EMPTY = "no groups — spawn one with aegis_group_spawn or `aegis group spawn NAME PROFILE…`"


def _runtime(kernel: Any) -> Any:
    from .runtime import GroupRuntime

    return kernel.find_service(GroupRuntime) if kernel is not None else None


def infos_text(infos: list[dict[str, Any]]) -> str:
    """The tab's content from ``aegis_group_status`` results (one block per group)."""
    if not infos:
        return EMPTY
    blocks = []
    for info in infos:
        lines = [f"■ {info['name']}", "  Members"]
        for m in info["members"]:
            mark = ANSWER.get(m.get("answered", "-"), " ")
            lines.append(f"    {DOTS.get(m['state'], '?')} {m['handle']:<20} {m.get('profile') or '-':<16} {mark}")
        cur = info["current"]
        lines.append("  Current broadcast")
        if cur:
            lines.append(f"    {cur['broadcast_id']} by {cur['by']} · {len(cur['answered'])}/{len(cur['members'])} "
                         f"answered · {cur['objective'][:60]}")
        else:
            lines.append("    none")
        lines.append("  Recent broadcasts")
        recent = info.get("recent") or []
        for b in recent[:5]:
            lines.append(f"    {b['broadcast_id']} {b['status']:<11} {len(b['answered'])}/{len(b['members'])} "
                         f"{b['objective'][:50]}")
        if not recent:
            lines.append("    none")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def tab_text(runtime: Any) -> str:
    """The tab's content read from the runtime in this process."""
    if runtime is None:
        return "the groups service is not running"
    return infos_text([runtime.group_info(g, detail=True) for g in list(runtime.groups.values())])


def group_tab(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    class GroupTab(Static):
        def __init__(self) -> None:
            super().__init__("", id="group-tab")
            self._unsubscribe: Any = None

        def on_mount(self) -> None:
            if getattr(app, "remote", None) is not None:  # attached to a serve: ask it
                self.set_interval(1.0, lambda: app.in_kernel(self._poll))
                app.in_kernel(self._poll)
                return
            rt = _runtime(kernel)
            if rt is not None:
                self._unsubscribe = rt.subscribe(lambda _name: self.refresh_text())
            self.refresh_text()

        def on_unmount(self) -> None:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

        async def _poll(self) -> None:
            try:
                names = [g["name"] for g in (await app.call_op("aegis_group_list"))["groups"]]
                infos = [await app.call_op("aegis_group_status", name=name) for name in names]
                text = infos_text(infos)
            except Exception as exc:  # noqa: BLE001 - no groups service there: say so
                text = f"groups unavailable: {exc}"
            if self.is_mounted:
                self.update(text)

        def refresh_text(self) -> None:
            self.update(tab_text(_runtime(kernel)))

    return GroupTab()
