"""The kernel's own plugin: the sections every project has (``default_agent``, ``agents``, ``plugins``)."""

from __future__ import annotations

from typing import Any

from . import hookimpl
from .profiles import AgentProfile, PluginsSection


@hookimpl
def aegis_register_config_sections(register: Any) -> None:
    register("default_agent", str | None)
    register("agents", dict[str, AgentProfile])
    register("plugins", PluginsSection)
