"""``.aegis/state/workspace.json``: the TUI's tabs in order, so reopening restores them.

``{"v": 1, "saved_at": "...", "active": 2, "tabs": [{"kind": "agent", "handle": "brisk-curie",
"agent": "helper"}, {"kind": "file", "path": "src/x.py"}, {"kind": "panel", "name": "hello"},
{"kind": "config"}]}``. The agents themselves are restored by the kernel (``sessions.restore``); this
file only says which tabs there were and their order. A file that cannot be read or has the wrong
shape raises :class:`WorkspaceError` with a message naming the file and the way out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aegis_kernel import StateError, read_json, write_json_atomic

VERSION = 1
KINDS = ("agent", "file", "panel", "config")


class WorkspaceError(Exception):
    """The saved workspace is unreadable; the message says why and what to do."""


def workspace_path(state_root: Path) -> Path:
    return state_root / "workspace.json"


def load_workspace(path: Path) -> dict[str, Any]:
    """The saved workspace (``{"tabs": [], "active": 0}`` when there is none)."""
    try:
        data = read_json(path, None)
    except StateError as exc:
        raise WorkspaceError(f"{exc}") from None
    if data is None:
        return {"v": VERSION, "tabs": [], "active": 0}
    problem = _check(data)
    if problem:
        raise WorkspaceError(f"{path}: {problem}")
    return data


def _check(data: Any) -> str:
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if data.get("v") != VERSION:
        return f"unsupported workspace version {data.get('v')!r} (this aegis writes v{VERSION})"
    tabs = data.get("tabs")
    if not isinstance(tabs, list):
        return "'tabs' must be a list"
    for i, tab in enumerate(tabs):
        if not isinstance(tab, dict) or tab.get("kind") not in KINDS:
            return f"tabs[{i}] is not a tab record"
        if tab["kind"] == "agent" and not isinstance(tab.get("handle"), str):
            return f"tabs[{i}] has no handle"
        if tab["kind"] == "file" and not isinstance(tab.get("path"), str):
            return f"tabs[{i}] has no path"
        if tab["kind"] == "panel" and not isinstance(tab.get("name"), str):
            return f"tabs[{i}] has no panel name"
        if tab["kind"] == "panel" and not isinstance(tab.get("arg", ""), str):
            return f"tabs[{i}] has a panel arg that is not a string"
    if not isinstance(data.get("active", 0), int):
        return "'active' must be an integer"
    return ""


def save_workspace(path: Path, tabs: list[dict[str, Any]], active: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"v": VERSION, "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "active": active, "tabs": tabs})


def set_aside(path: Path) -> Path:
    """Move an unreadable workspace file out of the way (kept for inspection); returns the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    try:
        path.replace(target)
    except OSError:
        pass
    return target
