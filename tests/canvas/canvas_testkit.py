"""Shared helpers for the canvas tests."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from aegis_kernel import Caller
from aegis_kernel.events import EnvelopeReceived

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


class Serve:
    """A real ``aegis serve`` subprocess on ``project``."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "aegis_kernel.cli", "serve"], cwd=self.project,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline, lines = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if not line and self.proc.poll() is not None:
                    break
                lines.append(line)
                if "ready in" in line:
                    return
        self.kill()
        raise AssertionError(f"aegis serve did not get ready: {''.join(lines)}")

    def call(self, operation: str, **params):
        from aegis_kernel.client import call as client_call

        return client_call(self.project / ".aegis" / "state", operation, params)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def reap_orphans(state_dir: Path) -> None:
    """Kill agents a SIGKILLed serve left behind (found by their AEGIS_SCRIPTED_STATE)."""
    marker = f"AEGIS_SCRIPTED_STATE={state_dir / 'scripted'}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
