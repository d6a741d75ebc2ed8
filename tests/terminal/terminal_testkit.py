"""Shared helpers for the terminal tests."""

from __future__ import annotations

from typing import Any

import trio

from aegis_kernel import Caller, Ledger
from aegis_kernel.events import EnvelopeReceived

CONFIG = """\
default_agent: agent
plugins:
  disabled: [mcp]
agents:
  agent:
    provider: fake
"""


async def agent(kernel: Any, handle: str | None = None) -> Any:
    """A live, ready agent session."""
    session = await kernel.sessions.spawn("agent", handle=handle)
    await session.wait_for(lambda s: s.state == "ready")
    return session


async def call(kernel: Any, op: str, caller: str | None = None, **args: Any) -> Any:
    """Call operation ``op`` as agent ``caller`` (None: the user)."""
    return await kernel.operations.call(kernel, op, args, Caller(caller, via="mcp" if caller else "user"))


async def wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    """Poll ``predicate`` until it holds; fail only after a generous deadline."""
    with trio.fail_after(timeout):
        while not (value := predicate()):
            await trio.sleep(0.01)
    return value


def wakeups(session: Any, name: str | None = None) -> list[Any]:
    """The terminal envelopes ``session`` received (optionally of one terminal)."""
    return [e for e in session.history if isinstance(e, EnvelopeReceived) and e.sender.startswith("term:")
            and (name is None or e.sender == f"term:{name}")]


def ledger(kernel: Any, name: str) -> list[dict[str, Any]]:
    return Ledger.replay(kernel.state.root / "terminals" / name / "ledger.jsonl").records


def finished(kernel: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in ledger(kernel, name) if r.get("event") == "finished"]


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] != b"Z"
