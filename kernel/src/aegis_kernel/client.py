"""The one client every CLI verb uses to reach the Aegis that owns a project.

    with connect(state_dir) as aegis:
        aegis.call("aegis_sessions")

:func:`connect` finds the control socket of the running Aegis (``aegis serve`` or the TUI) and
raises :class:`NotRunning` — a typed error, never a string to match — when there is none, with the
command that starts one. :func:`call` is the one-shot form. Verbs that can work on state alone
catch :class:`NotRunning` and read the state themselves; verbs that need live agents let it reach
the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .control import ControlError, connect_path, socket_path
from .rpc import AsyncRpcClient, RpcClient, RpcError

# a public submodule of aegis_kernel: what a client of a running kernel needs (a CLI verb, an attached TUI)
__all__ = [
    "START_HINT", "AsyncRpcClient", "ControlError", "NotRunning", "RpcClient", "RpcError", "call", "connect",
    "connect_path", "socket_path",
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
