"""Aegis kernel: the public API for plugin authors.

Everything a plugin may use is a name in :data:`__all__`, imported from ``aegis_kernel`` itself
(``from aegis_kernel import hookimpl, Envelope, OperationError``). The other modules of the package
(``aegis_kernel.sessions``, ``aegis_kernel.state``, …) are the kernel's own and may change without
notice; first-party plugins import only from here (``tests/kernel/test_public_api.py`` enforces it).

Three submodules are public on purpose, each with one job:

- ``aegis_kernel.testing``: helpers for plugin authors' tests (``FakeDriver``, ``FakeProcess``,
  ``DriverPlugin``, ``pids_mentioning``); the pytest plugin and the fake model server live in
  ``aegis-testkit``.
- ``aegis_kernel.client``: clients of a running kernel's control socket, for CLI verbs and an
  attached front end (``call``, ``connect``, ``NotRunning``, ``RpcClient``, ``AsyncRpcClient``,
  ``socket_path``/``connect_path``); importing it loads no plugins.
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
    "run_service_runtime": "serviceruntime",
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
    "apply_config_edit": ("config_edit", "apply_edit"),
    "read_config_key": ("config_edit", "read_key"),
    "ConfigConflict": "config_edit",
    "CONFIG_ABSENT": ("config_edit", "ABSENT"),
    "CONFIG_REMOVE": ("config_edit", "REMOVE"),
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

if TYPE_CHECKING:  # the same names for type checkers (`X as X`: an explicit re-export; a test keeps it in step)
    import pluggy

    from .bus import BusEvent as BusEvent, EventBus as EventBus, Lagged as Lagged, Subscription as Subscription
    from .cli import print_table as print_table
    from .clock import Clock as Clock, iso_utc as iso_utc, parse_iso as parse_iso
    from .config import (
        Config as Config,
        ConfigError as ConfigError,
        config_validator as config_validator,
        remove_key as remove_key,
        set_key as set_key,
    )
    from .config_sections import Section as Section, check_safe_name as check_safe_name, is_safe_name as is_safe_name
    from .config_edit import (
        ABSENT as CONFIG_ABSENT,
        REMOVE as CONFIG_REMOVE,
        ConfigConflict as ConfigConflict,
        apply_edit as apply_config_edit,
        read_key as read_config_key,
    )
    from .config_watch import validator_for as validator_for
    from .control import ControlError as ControlError, ControlServer as ControlServer
    from .delivery import (
        DeliveryError as DeliveryError,
        Envelope as Envelope,
        Receipt as Receipt,
        new_id as new_id,
        utc_now as utc_now,
    )
    from .drivers import (
        AgentProcess as AgentProcess,
        Driver as Driver,
        Launch as Launch,
        McpEndpoint as McpEndpoint,
        SpawnRefused as SpawnRefused,
        SpawnSpec as SpawnSpec,
        bare_tool_name as bare_tool_name,
        private_dir as private_dir,
    )
    from .events import (
        AgentError as AgentError,
        ApprovalAnswered as ApprovalAnswered,
        AssistantText as AssistantText,
        CompactBoundary as CompactBoundary,
        Diff as Diff,
        DriverEvent as DriverEvent,
        EnvelopeReceived as EnvelopeReceived,
        EventTypeError as EventTypeError,
        PermissionRequest as PermissionRequest,
        Plan as Plan,
        PlanEntry as PlanEntry,
        StateChanged as StateChanged,
        SystemInit as SystemInit,
        Thinking as Thinking,
        TokenUsage as TokenUsage,
        ToolResult as ToolResult,
        ToolUse as ToolUse,
        TurnResult as TurnResult,
        Unknown as Unknown,
        UnknownEvent as UnknownEvent,
        UsageUpdate as UsageUpdate,
        UserEcho as UserEcho,
        UserTurn as UserTurn,
        event_from_dict as event_from_dict,
        event_to_dict as event_to_dict,
        register_event_type as register_event_type,
    )
    from .hookcall import HookFailed as HookFailed
    from .hookspecs import (
        RegisterCli as RegisterCli,
        RegisterConfigSection as RegisterConfigSection,
        RegisterDriver as RegisterDriver,
        RegisterEventType as RegisterEventType,
        RegisterOperation as RegisterOperation,
        RegisterService as RegisterService,
        hookspec as hookspec,
    )
    from .journal import ArchivePlan as ArchivePlan, Journal as Journal, fold as fold, plan_archive as plan_archive
    from .kernel import (
        Kernel as Kernel,
        build_kernel as build_kernel,
        open_kernel as open_kernel,
        setup_logging as setup_logging,
        unwrap_group as unwrap_group,
    )
    from .metrics import SessionMetrics as SessionMetrics, format_tokens as format_tokens, status_line as status_line
    from .names import generate_handle as generate_handle
    from .operations import (
        CallContext as CallContext,
        Caller as Caller,
        Operation as Operation,
        OperationError as OperationError,
        OperationRegistry as OperationRegistry,
        params as params,
    )
    from .owner import ProjectOwned as ProjectOwned, current_owner as current_owner
    from .plugins import RegistrationError as RegistrationError, registration_hook as registration_hook
    from .process import (
        AgentProcessError as AgentProcessError,
        AgentStdinClosed as AgentStdinClosed,
        AgentSubprocess as AgentSubprocess,
        SpawnFailed as SpawnFailed,
        SubprocessAgent as SubprocessAgent,
        open_agent_process as open_agent_process,
    )
    from .profiles import PERMISSIONS as PERMISSIONS, AgentProfile as AgentProfile
    from .project import resolve_project_dir as resolve_project_dir
    from .redact import forget_secret as forget_secret, redact_event as redact_event, register_secret as register_secret
    from .serviceruntime import run_service_runtime as run_service_runtime
    from .services import FileViewer as FileViewer, ServiceError as ServiceError
    from .sessions import (
        Session as Session,
        SessionError as SessionError,
        SessionManager as SessionManager,
        transcript_lines as transcript_lines,
    )
    from .state import (
        Ledger as Ledger,
        LedgerWriteError as LedgerWriteError,
        Problem as Problem,
        ReplayResult as ReplayResult,
        StateError as StateError,
        read_json as read_json,
        write_bytes_atomic as write_bytes_atomic,
        write_json_atomic as write_json_atomic,
        write_text_atomic as write_text_atomic,
    )
    from .turns import (
        Turn as Turn,
        TurnOutcome as TurnOutcome,
        TurnStatus as TurnStatus,
        open_transient_turn as open_transient_turn,
        run_transient_turn as run_transient_turn,
        run_turn as run_turn,
    )
    from .writer import StateWriter as StateWriter, Ticket as Ticket
    from . import owner as _owner, redact as _redact, turns as _turns

    hookimpl: pluggy.HookimplMarker
    TURN_AGENT_FAILED = _turns.AGENT_FAILED
    TURN_CANCELLED = _turns.CANCELLED
    TURN_CLOSED = _turns.CLOSED
    TURN_DEADLINE = _turns.DEADLINE
    TURN_START_FAILED = _turns.START_FAILED
    acquire_owner = _owner.acquire
    redact_secrets = _redact.redact


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
