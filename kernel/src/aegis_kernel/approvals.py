"""The approval broker: one policy for every vendor's permission prompts.

``decide(session, request)`` returns True (allow), False (deny) or None (a human must answer: the
session goes ``input-required``). Rules, in order:

1. the profile's ``deny`` patterns, then its ``allow`` patterns (``fnmatch`` on the tool name, or on
   ``name:summary`` — e.g. ``Bash:git *``);
2. approvals remembered with ``--always`` for this session;
3. Aegis's own tools (``aegis_*`` tools of the ``aegis`` MCP server) are always allowed; how a vendor
   spells an MCP tool's name is its driver's knowledge (:meth:`aegis_kernel.drivers.Driver.mcp_tool`),
   asked through the ``driver_for(provider)`` lookup the broker is built with;
4. the profile's ``permission``: ``full``/``auto`` allow everything; ``write`` allows reading,
   searching, thinking, fetching and editing; ``read`` allows reading, searching, thinking and fetching.
   Anything else is for the user. The broker never picks an option blindly.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from .drivers import bare_tool_name

if TYPE_CHECKING:
    from .drivers import Driver
    from .events import PermissionRequest
    from .sessions import Session

_BY_PERMISSION = {
    "read": {"read", "search", "think", "fetch"},
    "write": {"read", "search", "think", "fetch", "edit"},
}

#: The name under which agents reach the Aegis MCP plane (``McpEndpoint.name``).
AEGIS_SERVER = "aegis"


def is_aegis_tool(name: str, driver: Driver | None, server: str = AEGIS_SERVER) -> bool:
    """``name`` (as ``driver``'s agent spells it) is a tool of the Aegis MCP plane named ``server``:
    the driver says which tool of ``server`` it names, and Aegis's tools are called ``aegis_*``.
    Without a driver only the bare spelling ``aegis_x`` counts. A tool of another server never does."""
    tool = driver.mcp_tool(name, server) if driver is not None else bare_tool_name(name)
    return tool is not None and tool.startswith("aegis_")


class ApprovalBroker:
    """``driver_for(provider)``: the registered driver of a provider, or None (the kernel passes its
    driver registry); without it only bare ``aegis_x`` names count as Aegis's tools."""

    def __init__(self, driver_for: Callable[[str], Driver | None] | None = None) -> None:
        self._remembered: dict[str, set[str]] = {}
        self._driver_for = driver_for

    def decide(self, session: Session, request: PermissionRequest) -> bool | None:
        subject = f"{request.tool_name}:{request.summary}"
        profile = session.profile
        if any(fnmatchcase(request.tool_name, p) or fnmatchcase(subject, p) for p in profile.deny):
            return False
        if any(fnmatchcase(request.tool_name, p) or fnmatchcase(subject, p) for p in profile.allow):
            return True
        if request.tool_name in self._remembered.get(session.log_id, set()):
            return True
        driver = self._driver_for(session.profile.provider) if self._driver_for is not None else None
        if is_aegis_tool(request.tool_name, driver):
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
