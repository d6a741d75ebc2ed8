"""Shared helpers for the terminal tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import trio

from aegis_kernel import Caller, Ledger
from aegis_kernel.events import EnvelopeReceived
from aegis_testkit.serve import ServeProcess, reap_orphans
from aegis_testkit.serve import wait_for as kit_wait_for

__all__ = ["CONFIG", "Serve", "agent", "call", "finished", "ledger", "pid_alive", "reap_orphans", "shells_with_term",
           "tool", "wait_for", "wait_until", "wakeups"]

CONFIG = """\
default_agent: agent
plugins:
  disabled: [mcp]
agents:
  agent:
    provider: fake
    permission: full      # runs commands in shared terminals without asking
  careful:
    provider: fake        # permission: write — a person approves each command
    deny: ["Terminal:rm *"]
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


# --- a real `aegis serve` (e2e and CLI tests) ---------------------------------------------------------

class Serve(ServeProcess):
    """A real ``aegis serve`` subprocess on ``project`` (:class:`aegis_testkit.serve.ServeProcess`);
    ``cli`` returns the command's result without checking its exit code."""

    def cli(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return super().cli(*args, check=check, timeout=timeout)

    def kill(self) -> None:
        self.kill9()


def tool(op: str, **args: Any) -> str:
    """A scripted agent's directive line calling MCP tool ``op``."""
    return f"@call {op} " + json.dumps(args)


def wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
    return kit_wait_for(predicate, what, timeout=timeout, poll=0.05)


def shells_with_term(name: str) -> list[int]:
    """Live processes whose environment has ``AEGIS_TERM=<name>`` (a terminal's shell and its children)."""
    import os

    marker = f"AEGIS_TERM={name}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and pid_alive(int(pid)):
            found.append(int(pid))
    return found
