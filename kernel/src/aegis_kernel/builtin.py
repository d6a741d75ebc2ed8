"""The kernel's own plugin: the sections every project has (``default_agent``, ``agents``, ``plugins``,
``config_edits``), the session and config operations, the event bus's kernel sources."""

from __future__ import annotations

from typing import Any

from . import hookimpl
from .profiles import AgentProfile, PluginsSection, check_agents, check_default_agent


@hookimpl
def aegis_register_config_sections(register: Any) -> None:
    register("default_agent", str | None, check=check_default_agent)
    register("agents", dict[str, AgentProfile], check=check_agents)
    register("plugins", PluginsSection)
    from .config_ops import POLICY_TYPE

    register("config_edits", POLICY_TYPE)


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from .session_ops import register_session_operations

    register_session_operations(register)
    from .config_ops import register_config_operations

    register_config_operations(register)


# --- the event bus's kernel sources (see aegis_kernel.bus) ------------------------------------------


@hookimpl
def aegis_session_started(session: Any) -> None:
    session.kernel.bus.watch_session(session)
    session.kernel.bus.publish("session.started", {"agent": session.profile_name}, session.handle)


@hookimpl
def aegis_session_state_changed(session: Any, old: str, new: str) -> None:
    session.kernel.bus.publish("session.state", {"old": old, "new": new}, session.handle)


@hookimpl
def aegis_envelope_delivered(session: Any, envelope: Any) -> None:
    session.kernel.bus.publish("envelope", {"id": envelope.id, "from": envelope.sender, "text": envelope.body},
                               session.handle)


@hookimpl
def aegis_session_closed(session: Any, reason: str) -> None:
    session.kernel.bus.publish("session.closed", {"reason": reason}, session.handle)
