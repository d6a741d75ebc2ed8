"""The group tab (contributed through aegis-tui's ``aegis_register_panels``): Members (state dots),
Current broadcast (who has answered) and Recent broadcasts, redrawn on every change the runtime
reports (:meth:`GroupRuntime.subscribe`). Textual is imported inside the factory only."""

from __future__ import annotations

from typing import Any

DOTS = {"ready": "●", "working": "◐", "input-required": "?", "starting": "○", "error": "✗", "closed": "·",
        "gone": "·"}
ANSWER = {"yes": "✓", "no": "…", "error": "✗", "-": " "}


def _runtime(kernel: Any) -> Any:
    from .runtime import GroupRuntime

    return kernel.find_service(GroupRuntime)


def tab_text(runtime: Any) -> str:
    """The tab's content as plain lines (one block per group)."""
    if runtime is None:
        return "the groups service is not running"
    if not runtime.groups:
        return "no groups — spawn one with aegis_group_spawn or `aegis group spawn NAME PROFILE…`"
    blocks = []
    for group in runtime.groups.values():
        info = runtime.group_info(group, detail=True)
        lines = [f"■ {group.name}", "  Members"]
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
        for b in info["recent"][:5] or []:
            lines.append(f"    {b['broadcast_id']} {b['status']:<11} {len(b['answered'])}/{len(b['members'])} "
                         f"{b['objective'][:50]}")
        if not info["recent"]:
            lines.append("    none")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def group_tab(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    class GroupTab(Static):
        def on_mount(self) -> None:
            rt = _runtime(kernel)
            self._unsubscribe = rt.subscribe(lambda _name: self.refresh_text()) if rt is not None else None
            self.refresh_text()

        def on_unmount(self) -> None:
            if self._unsubscribe is not None:
                self._unsubscribe()

        def refresh_text(self) -> None:
            self.update(tab_text(_runtime(kernel)))

    return GroupTab(tab_text(_runtime(kernel)), id="group-tab")
