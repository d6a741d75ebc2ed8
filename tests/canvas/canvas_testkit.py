"""Shared helpers for the canvas tests."""

from __future__ import annotations

import re
from typing import Any

import trio

from aegis_kernel import Caller
from aegis_kernel.events import EnvelopeReceived
from aegis_testkit.serve import ServeProcess, reap_orphans
from aegis_testkit.serve import wait_for as kit_wait_for

__all__ = ["CONFIG", "SUMMARY_RE", "Serve", "agent", "call", "reap_orphans", "summaries", "wait_for", "wait_until",
           "wakeups"]

CONFIG = """\
default_agent: agent
plugins:
  disabled: [mcp]
agents:
  agent:
    provider: fake
"""

SUMMARY_RE = re.compile(r'^section "(?P<section>[^"]+)" · written by (?P<writer>\S+) '
                        r'\(\+(?P<added>\d+) / -(?P<removed>\d+) lines\)$')


async def agent(kernel: Any, handle: str | None = None) -> Any:
    """A live, ready agent session."""
    session = await kernel.sessions.spawn("agent", handle=handle)
    await session.wait_for(lambda s: s.state == "ready")
    return session


async def call(kernel: Any, op: str, caller: str | None = None, **args: Any) -> Any:
    """Call operation ``op`` as agent ``caller`` (None: the user)."""
    return await kernel.operations.call(kernel, op, args, Caller(caller, via="mcp" if caller else "user"))


async def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    """Poll ``predicate`` until it holds; fail only after a generous deadline."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


def wakeups(session: Any, canvas: str | None = None) -> list[Any]:
    """The canvas envelopes ``session`` received (optionally of one canvas)."""
    return [e for e in session.history if isinstance(e, EnvelopeReceived) and e.sender.startswith("canvas:")
            and (canvas is None or e.sender == f"canvas:{canvas}")]


def summaries(envelope: Any) -> list[dict[str, Any]]:
    """The parsed ``section "s" · written by w (+a / -r lines)`` lines of a wake-up's body."""
    head = envelope.body.split("\n──\n", 1)[0]
    out = []
    for line in head.splitlines():
        m = SUMMARY_RE.match(line)
        assert m, f"not a canvas summary line: {line!r}"
        out.append({**m.groupdict(), "added": int(m["added"]), "removed": int(m["removed"])})
    return out


# --- a real `aegis serve` (e2e and CLI tests) ---------------------------------------------------------


class Serve(ServeProcess):
    """A real ``aegis serve`` subprocess on ``project`` (:class:`aegis_testkit.serve.ServeProcess`)."""

    def kill(self) -> None:
        self.kill9()


def wait_for(predicate, what: str, timeout: float = 60):
    return kit_wait_for(predicate, what, timeout=timeout, poll=0.05)
