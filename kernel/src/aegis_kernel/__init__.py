"""Aegis kernel: the public API for plugin authors.

Everything a plugin may use is a name in :data:`__all__`, imported from ``aegis_kernel`` itself
(``from aegis_kernel import hookimpl, Envelope, OperationError``). The other modules of the package
(``aegis_kernel.sessions``, ``aegis_kernel.state``, …) are the kernel's own and may change without
notice; first-party plugins import only from here (``tests/kernel/test_public_api.py`` enforces it).

Three submodules are public on purpose, each with one job:

- ``aegis_kernel.testing``: helpers for plugin authors' tests (``FakeDriver``, ``FakeProcess``,
  ``DriverPlugin``, ``pids_mentioning``); the pytest plugin and the fake model server live in
  ``aegis-testkit``.
- ``aegis_kernel.client``: thin clients of a running kernel's control socket for CLI verbs
  (``call``, ``connect``, ``NotRunning``); importing it loads no plugins.
- ``aegis_kernel.jsonrpc``: the project's one JSON-RPC 2.0 codec (control socket, ACP drivers).

Every name is imported on first use (module ``__getattr__``) so that ``aegis --version`` and thin
CLI verbs do not pay for importing trio, attrs or pluggy. The ``TYPE_CHECKING`` block below states the
same names for type checkers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

PUBLIC_SUBMODULES = ("testing", "client", "jsonrpc")
"""Submodules plugin authors may import from, besides the package itself."""

# public name → the kernel module defining it, or (module, name there) where the public name differs
_LAZY: dict[str, str | tuple[str, str]] = {
    # hooks: the markers, the typed ``register`` callbacks of registration hooks, hook failures
    "hookspec": "hookspecs",
    "HookFailed": "hookcall",
    "RegisterCli": "hookspecs",
    "RegisterConfigSection": "hookspecs",
    "RegisterDriver": "hookspecs",
    "RegisterEventType": "hookspecs",
    "RegisterOperation": "hookspecs",
    "RegisterService": "hookspecs",
    "registration_hook": "plugins",
    "RegistrationError": "plugins",
    # the kernel, hosting it (a front end such as the TUI), and owning a project
    "Kernel": "kernel",
    "build_kernel": "kernel",
    "open_kernel": "kernel",
    "setup_logging": "kernel",
    "unwrap_group": "kernel",
    "resolve_project_dir": "project",
    "ControlError": "control",
    "ControlServer": "control",
    "ProjectOwned": "owner",
    "acquire_owner": ("owner", "acquire"),
    "current_owner": "owner",
    "print_table": "cli",
    # services: errors and the protocols services are looked up by
    "FileViewer": "services",
    "ServiceError": "services",
    # configuration: records, errors, the one edit path, section checks, the safe-name rule
    "AgentProfile": "profiles",
    "PERMISSIONS": "profiles",
    "Config": "config",
    "ConfigError": "config",
    "config_validator": "config",
    "remove_key": "config",
    "set_key": "config",
    "Section": "config_sections",
    "check_safe_name": "config_sections",
    "is_safe_name": "config_sections",
    "validator_for": "config_watch",
    # drivers and agent processes
    "AgentProcess": "drivers",
    "Driver": "drivers",
    "Launch": "drivers",
    "McpEndpoint": "drivers",
    "SpawnRefused": "drivers",
    "SpawnSpec": "drivers",
    "bare_tool_name": "drivers",
    "private_dir": "drivers",
    "AgentProcessError": "process",
    "AgentStdinClosed": "process",
    "AgentSubprocess": "process",
    "SpawnFailed": "process",
    "SubprocessAgent": "process",
    "open_agent_process": "process",
    # events: driver and kernel records, plugin event types, the transcript codec
    "AgentError": "events",
    "ApprovalAnswered": "events",
    "AssistantText": "events",
    "CompactBoundary": "events",
    "Diff": "events",
    "DriverEvent": "events",
    "EnvelopeReceived": "events",
    "EventTypeError": "events",
    "PermissionRequest": "events",
    "Plan": "events",
    "PlanEntry": "events",
    "StateChanged": "events",
    "SystemInit": "events",
    "Thinking": "events",
    "TokenUsage": "events",
    "ToolResult": "events",
    "ToolUse": "events",
    "TurnResult": "events",
    "Unknown": "events",
    "UnknownEvent": "events",
    "UsageUpdate": "events",
    "UserEcho": "events",
    "UserTurn": "events",
    "event_from_dict": "events",
    "event_to_dict": "events",
    "register_event_type": "events",
    # the event bus (what ``aegis_subscribe`` streams)
    "BusEvent": "bus",
    "EventBus": "bus",
    "Lagged": "bus",
    "Subscription": "bus",
    # sessions, handles, metrics, delivery of envelopes
    "Session": "sessions",
    "SessionError": "sessions",
    "SessionManager": "sessions",
    "transcript_lines": "sessions",
    "generate_handle": "names",
    "SessionMetrics": "metrics",
    "format_tokens": "metrics",
    "status_line": "metrics",
    "DeliveryError": "delivery",
    "Envelope": "delivery",
    "Receipt": "delivery",
    "new_id": "delivery",
    "utc_now": "delivery",
    # operations: the one command surface
    "CallContext": "operations",
    "Caller": "operations",
    "Operation": "operations",
    "OperationError": "operations",
    "OperationRegistry": "operations",
    "params": "operations",
    # the turn primitive
    "Turn": "turns",
    "TurnOutcome": "turns",
    "TurnStatus": "turns",
    "TURN_AGENT_FAILED": ("turns", "AGENT_FAILED"),
    "TURN_CANCELLED": ("turns", "CANCELLED"),
    "TURN_CLOSED": ("turns", "CLOSED"),
    "TURN_DEADLINE": ("turns", "DEADLINE"),
    "TURN_START_FAILED": ("turns", "START_FAILED"),
    "open_transient_turn": "turns",
    "run_transient_turn": "turns",
    "run_turn": "turns",
    # the kernel clock
    "Clock": "clock",
    "iso_utc": "clock",
    "parse_iso": "clock",
    # durable state: ledgers, journals, atomic files, the writer thread fsyncs go through
    "ArchivePlan": "journal",
    "Journal": "journal",
    "fold": "journal",
    "plan_archive": "journal",
    "Ledger": "state",
    "LedgerWriteError": "state",
    "Problem": "state",
    "ReplayResult": "state",
    "StateError": "state",
    "read_json": "state",
    "write_bytes_atomic": "state",
    "write_json_atomic": "state",
    "write_text_atomic": "state",
    "StateWriter": "writer",
    "Ticket": "writer",
    # secrets: registered secrets are redacted from logs, errors and transcripts
    "forget_secret": "redact",
    "redact_event": "redact",
    "redact_secrets": ("redact", "redact"),
    "register_secret": "redact",
}
__all__ = ["hookimpl", "__version__", *_LAZY]

if TYPE_CHECKING:  # the same names, for type checkers (keep in step with _LAZY; a test checks it)
    import pluggy

    from .bus import BusEvent, EventBus, Lagged, Subscription
    from .cli import print_table
    from .clock import Clock, iso_utc, parse_iso
    from .config import Config, ConfigError, config_validator, remove_key, set_key
    from .config_sections import Section, check_safe_name, is_safe_name
    from .config_watch import validator_for
    from .control import ControlError, ControlServer
    from .delivery import DeliveryError, Envelope, Receipt, new_id, utc_now
    from .drivers import AgentProcess, Driver, Launch, McpEndpoint, SpawnRefused, SpawnSpec, bare_tool_name, private_dir
    from .events import (
        AgentError,
        ApprovalAnswered,
        AssistantText,
        CompactBoundary,
        Diff,
        DriverEvent,
        EnvelopeReceived,
        EventTypeError,
        PermissionRequest,
        Plan,
        PlanEntry,
        StateChanged,
        SystemInit,
        Thinking,
        TokenUsage,
        ToolResult,
        ToolUse,
        TurnResult,
        Unknown,
        UnknownEvent,
        UsageUpdate,
        UserEcho,
        UserTurn,
        event_from_dict,
        event_to_dict,
        register_event_type,
    )
    from .hookcall import HookFailed
    from .hookspecs import (
        RegisterCli,
        RegisterConfigSection,
        RegisterDriver,
        RegisterEventType,
        RegisterOperation,
        RegisterService,
        hookspec,
    )
    from .journal import ArchivePlan, Journal, fold, plan_archive
    from .kernel import Kernel, build_kernel, open_kernel, setup_logging, unwrap_group
    from .metrics import SessionMetrics, format_tokens, status_line
    from .names import generate_handle
    from .operations import CallContext, Caller, Operation, OperationError, OperationRegistry, params
    from .owner import ProjectOwned, current_owner
    from .owner import acquire as acquire_owner
    from .plugins import RegistrationError, registration_hook
    from .process import (
        AgentProcessError,
        AgentStdinClosed,
        AgentSubprocess,
        SpawnFailed,
        SubprocessAgent,
        open_agent_process,
    )
    from .profiles import PERMISSIONS, AgentProfile
    from .project import resolve_project_dir
    from .redact import forget_secret, redact_event, register_secret
    from .redact import redact as redact_secrets
    from .services import FileViewer, ServiceError
    from .sessions import Session, SessionError, SessionManager, transcript_lines
    from .state import (
        Ledger,
        LedgerWriteError,
        Problem,
        ReplayResult,
        StateError,
        read_json,
        write_bytes_atomic,
        write_json_atomic,
        write_text_atomic,
    )
    from .turns import AGENT_FAILED as TURN_AGENT_FAILED
    from .turns import CANCELLED as TURN_CANCELLED
    from .turns import CLOSED as TURN_CLOSED
    from .turns import DEADLINE as TURN_DEADLINE
    from .turns import START_FAILED as TURN_START_FAILED
    from .turns import Turn, TurnOutcome, TurnStatus, open_transient_turn, run_transient_turn, run_turn
    from .writer import StateWriter, Ticket

    hookimpl: pluggy.HookimplMarker


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        import pluggy

        marker = pluggy.HookimplMarker("aegis")
        globals()["hookimpl"] = marker
        return marker
    target = _LAZY.get(name)
    if target is not None:
        module, attr = (target, name) if isinstance(target, str) else target
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aegis_kernel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
