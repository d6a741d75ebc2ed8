"""The approval broker: one policy for every vendor's permission prompts.

``decide(session, request)`` returns True (allow), False (deny) or None (a human must answer: the
session goes ``input-required``). Rules, in order:

1. the profile's ``deny`` patterns, then its ``allow`` patterns (``fnmatch`` on the tool name, or on
   ``name:summary`` — e.g. ``Bash:git *``);
2. approvals remembered with ``--always`` for this session;
3. Aegis's own tools (``aegis_*`` in any vendor's spelling) are always allowed;
4. the profile's ``permission``: ``full``/``auto`` allow everything; ``write`` allows reading,
   searching, thinking, fetching and editing; ``read`` allows reading, searching, thinking and fetching.
   Anything else is for the user. The broker never picks an option blindly.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import PermissionRequest
    from .sessions import Session

_BY_PERMISSION = {
    "read": {"read", "search", "think", "fetch"},
    "write": {"read", "search", "think", "fetch", "edit"},
}


def is_aegis_tool(name: str, server: str = "aegis") -> bool:
    """A tool of the Aegis MCP plane (named ``server`` in the agent's config), in each vendor's spelling:
    Claude ``mcp__aegis__aegis_x``, Gemini ``mcp_aegis_aegis_x`` or the title ``aegis_x (aegis MCP Server)``,
    OpenCode ``aegis_aegis_x``, or the bare ``aegis_x``. A tool of another server is never one."""
    for prefix in (f"mcp__{server}__", f"mcp_{server}_", f"{server}_"):
        if name.startswith(prefix + "aegis_"):
            return True
    if name.endswith(f" ({server} MCP Server)"):
        return name.startswith("aegis_")
    return name.startswith("aegis_") and " " not in name


class ApprovalBroker:
    def __init__(self) -> None:
        self._remembered: dict[str, set[str]] = {}

    def decide(self, session: Session, request: PermissionRequest) -> bool | None:
        subject = f"{request.tool_name}:{request.summary}"
        profile = session.profile
        if any(fnmatchcase(request.tool_name, p) or fnmatchcase(subject, p) for p in profile.deny):
            return False
        if any(fnmatchcase(request.tool_name, p) or fnmatchcase(subject, p) for p in profile.allow):
            return True
        if request.tool_name in self._remembered.get(session.log_id, set()):
            return True
        if is_aegis_tool(request.tool_name):
            return True
        if profile.permission in ("full", "auto"):
            return True
        allowed = _BY_PERMISSION.get(profile.permission, set())
        return True if request.kind in allowed else None

    def remember(self, session: Session, request: PermissionRequest) -> None:
        """``--always``: allow this tool for the rest of *this* session (keyed by its log id, so a later
        session reusing the handle, or a rename, never inherits or loses it)."""
        self._remembered.setdefault(session.log_id, set()).add(request.tool_name)

    def forget(self, session: Session) -> None:
        self._remembered.pop(session.log_id, None)
