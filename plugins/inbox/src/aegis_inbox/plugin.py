"""Inbox plugin: the core agent-to-agent operations (handlers in :mod:`aegis_inbox.operations`,
imported on first call so registration stays cheap)."""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl

_STR = {"type": "string", "minLength": 1}
# Optional and redundant (identity comes from the MCP token); when given it must be the caller.
_FROM = {"type": "string", "description": "your own handle (optional; must be you)"}
_OPS = "aegis_inbox.operations:"


@hookimpl
def aegis_system_prompt(text: str) -> str:
    """Agents learn from their primer that the ``aegis_*`` tools reach their peers and that
    ``aegis_meta`` (this plugin's) briefs them."""
    return text + " Your tools prefixed aegis_ reach the other agents (call aegis_meta for a short briefing)."


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from aegis_kernel import params

    register("aegis_meta", _OPS + "meta", "A short briefing: who you are and the Aegis tools installed here.",
             params())
    register("aegis_list_sessions", _OPS + "list_sessions", "The live agent sessions: handle, agent, state.",
             params())
    register("aegis_list_agents", _OPS + "list_agents", "The agent profiles you can spawn.", params())
    register("aegis_handoff", _OPS + "handoff",
             "Send context to a live peer; it arrives as '✉ from agent:<you>'. Busy peers get it at their turn "
             "end unless interrupt=true.",
             params(("target_handle", "context"), target_handle=_STR, context=_STR,
                    interrupt={"type": "boolean", "default": False}, from_handle=_FROM))
    register("aegis_spawn", _OPS + "spawn",
             "Start a new agent session of a profile (default: the default agent) with an opening prompt; "
             "returns its handle.",
             params(agent={"type": ["string", "null"], "default": None},
                    prompt={"type": ["string", "null"], "default": None},
                    handle={"type": ["string", "null"], "default": None}, from_handle=_FROM))
    register("aegis_close", _OPS + "close", "Close a session you spawned.", params(("handle",), handle=_STR),
             check=_OPS + "may_close")
    register("aegis_read_peer", _OPS + "read_peer", "Read the last turns of a peer's transcript.",
             params(("handle",), handle=_STR, turns={"type": "integer", "minimum": 1, "maximum": 200, "default": 12}))
    register("aegis_view_file", _OPS + "view_file", "Open a file view for the user in the TUI.",
             params(("path",), path=_STR))
