"""The one client every CLI verb uses to reach the Aegis that owns a project.

    with connect(state_dir) as aegis:
        aegis.call("aegis_sessions")

:func:`connect` finds the control socket of the running Aegis (``aegis serve`` or the TUI) and
raises :class:`NotRunning` — a typed error, never a string to match — when there is none, with the
command that starts one. :func:`call` is the one-shot form. Verbs that can work on state alone
catch :class:`NotRunning` and read the state themselves; verbs that need live agents let it reach
the user.

A plugin's CLI verbs share three helpers: :func:`state_dir_of` (the state folder of the project the
verb names), :func:`call_from_cli` (one call on that project's Aegis) and :func:`print_out` (``--json``
prints the answer as JSON, else the verb's own human form).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .control import ControlError, connect_path, socket_path
from .rpc import AsyncRpcClient, RpcClient, RpcError

# a public submodule of aegis_kernel: what a client of a running kernel needs (a CLI verb, an attached TUI)
__all__ = [
    "START_HINT", "AsyncRpcClient", "ControlError", "NotRunning", "RpcClient", "RpcError", "call", "call_from_cli",
    "connect", "connect_path", "print_json", "print_out", "socket_path", "state_dir_of",
]


class NotRunning(ControlError):
    """No Aegis owns this project right now (or its socket is stale)."""


START_HINT = "start one with: aegis serve (headless) or aegis (the TUI)"


def connect(state_dir: Path, timeout: float | None = 30.0) -> RpcClient:
    """A client of the Aegis running for the project whose state folder is ``state_dir``."""
    public = socket_path(state_dir)
    if not (public.exists() or public.is_symlink()):
        raise NotRunning(f"no running Aegis for this project; {START_HINT}")
    try:
        return RpcClient.connect(connect_path(public), timeout, where="the running Aegis")
    except OSError as exc:
        raise NotRunning(f"the running Aegis is not answering on {public} ({exc.strerror or exc}); it may have "
                         f"crashed: {START_HINT}") from None


def call(state_dir: Path, operation: str, params: Mapping[str, Any] | None = None,
         timeout: float | None = 30.0) -> Any:
    """Call one operation on the running Aegis; raises :class:`NotRunning` or :class:`ControlError`."""
    with connect(state_dir, timeout) as client:
        try:
            return client.call(operation, params)
        except RpcError as exc:
            raise ControlError(exc.message, data=exc.data) from None


def state_dir_of(args: Any) -> Path:
    """The state folder (``<project>/.aegis/state``) of the project a CLI verb names with ``--project``
    (``args.project``; absent or ``None`` = the project around the working directory)."""
    from .project import resolve_project_dir

    return Path(resolve_project_dir(getattr(args, "project", None))) / ".aegis" / "state"


def call_from_cli(args: Any, operation: str, /, _timeout: float | None = 30.0, **params: Any) -> Any:
    """:func:`call` ``operation`` with ``params`` on the Aegis of the project ``args`` names (see
    :func:`state_dir_of`), waiting at most ``_timeout`` seconds (``None`` = no limit). The timeout's
    name starts with ``_`` so that an operation may take a parameter called ``timeout``."""
    return call(state_dir_of(args), operation, params, timeout=_timeout)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON, non-ASCII text as is (what every ``--json`` verb prints)."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_out(args: Any, data: Any, human: Callable[[Any], object]) -> int:
    """``--json`` (``args.json``, absent = off) prints ``data`` with :func:`print_json`, otherwise
    ``human(data)`` prints it for a person; returns 0 (the exit status of a verb that succeeded)."""
    if getattr(args, "json", False):
        print_json(data)
    else:
        human(data)
    return 0
