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

import json  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


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

    def call(self, operation: str, **params: Any) -> Any:
        from aegis_kernel.client import call as client_call

        return client_call(self.project / ".aegis" / "state", operation, params)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=self.project,
                              capture_output=True, text=True, timeout=120)

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


def tool(op: str, **args: Any) -> str:
    """A scripted agent's directive line calling MCP tool ``op``."""
    return f"@call {op} " + json.dumps(args)


def reap_orphans(state_dir: Path) -> None:
    """Kill agents a SIGKILLed serve left behind (found by their AEGIS_SCRIPTED_STATE)."""
    import os

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


def wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


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
