"""Aegis kernel. Plugin authors need :data:`hookimpl` and the names in ``__all__``.

Everything is imported on first use so that ``aegis --version`` does not pay for importing pluggy.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name → the kernel module defining it (imported lazily by __getattr__)
_LAZY = {
    "FileViewer": "services",
    "HookFailed": "hookcall",
    "RegisterCli": "hookspecs",
    "RegisterConfigSection": "hookspecs",
    "RegisterDriver": "hookspecs",
    "RegisterEventType": "hookspecs",
    "RegisterOperation": "hookspecs",
    "RegisterService": "hookspecs",
    "ServiceError": "services",
    "registration_hook": "plugins",
    # configuration: records, errors, section checks, the safe-name rule for names used as file names
    "Config": "config",
    "ConfigError": "config",
    "Section": "config_sections",
    "check_safe_name": "config_sections",
    "is_safe_name": "config_sections",
    "validator_for": "config_watch",
    # the kernel clock, journals, open events and the turn primitive
    "ArchivePlan": "journal",
    "Clock": "clock",
    "EventTypeError": "events",
    "Journal": "journal",
    "Turn": "turns",
    "TurnOutcome": "turns",
    "UnknownEvent": "events",
    "open_transient_turn": "turns",
    "register_event_type": "events",
    "run_transient_turn": "turns",
    "run_turn": "turns",
    # secrets (redaction itself: ``aegis_kernel.redact.redact``); the owner-only folder for secret files
    "forget_secret": "redact",
    "private_dir": "drivers",
    # drivers: the default reading of an MCP tool name (Driver.mcp_tool)
    "bare_tool_name": "drivers",
    "register_secret": "redact",
    # durable state: a refused append (disk full…), and the writer thread ledgers hand their fsyncs to
    "LedgerWriteError": "state",
    "StateWriter": "writer",
    "Ticket": "writer",
}
__all__ = ["hookimpl", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        import pluggy

        marker = pluggy.HookimplMarker("aegis")
        globals()["hookimpl"] = marker
        return marker
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aegis_kernel' has no attribute {name!r}")
