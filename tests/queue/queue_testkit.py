"""Shared helpers for the queue unit tests: an in-memory driver whose workers obey the payload.

Payload (the last line of the worker's opening turn) commands:
``sleep <s> [text]`` answer after s seconds · ``hang`` never answer · ``crash`` the process dies ·
``error`` the turn ends with an error · ``usage in=N out=N [cr=N cw=N]`` answer with that usage ·
``multi`` a draft message, a tool call, then a final message in two chunks · ``hang-once <x>`` hang,
unless the turn is a resumed task's (then answer ``resumed: <x> in <agent session id>``) · anything else →
``done: <payload>``.
"""

from __future__ import annotations

from typing import Any

import trio

from aegis_kernel import hookimpl
from aegis_kernel.events import AgentError, AssistantText, SystemInit, TokenUsage, ToolResult, ToolUse, TurnResult
from aegis_kernel.operations import Caller
from aegis_kernel.testing import FakeDriver, FakeProcess

CONFIG = """\
default_agent: producer
plugins:
  disabled: [mcp]
agents:
  producer:
    provider: qfake
  worker:
    provider: qfake
  ghost:  # a worker that cannot start (its binary does not exist)
    provider: acp
    command: [/nonexistent/aegis-no-such-agent]
queues:
  tests:
    agent: worker
    max_parallel: 2
  solo:
    agent: worker
  quick:
    agent: worker
    max_parallel: 1
    timeout: 0.5
  broken:
    agent: ghost
"""


class QProcess(FakeProcess):
    def __init__(self, driver: QDriver, session_id: str) -> None:
        super().__init__(driver.reply, session_id)
        self.driver = driver
        self.lost: str | None = None  # set: every turn ends with this error (a session the agent lost)

    async def _run_turn(self, text: str) -> None:
        if self.lost is not None:
            await self._send.send(TurnResult(stop_reason="error", is_error=True, error=self.lost))
            return
        payload = text.strip().splitlines()[-1].strip() if text.strip() else ""
        self.driver.turns.append(payload)
        with trio.CancelScope() as scope:
            self._turn = scope
            word, _, rest = payload.partition(" ")
            usage = TokenUsage(input=10, output=5)
            if word == "sleep":
                seconds, _, reply = rest.partition(" ")
                await trio.sleep(float(seconds))
                reply = reply or f"done: {payload}"
            elif word == "hang":
                await trio.sleep_forever()
            elif word == "hang-once":  # hangs, unless this is the turn of a resumed task
                if "[aegis restarted" not in text:
                    await trio.sleep_forever()
                reply = f"resumed: {rest} in {self.session_id}"
            elif word == "crash":
                await self._send.send(AgentError(message="the agent process exited with code 3", exit_code=3))
                self._send.close()
                return
            elif word == "error":
                await self._send.send(AssistantText(text="partial thoughts"))
                await self._send.send(TurnResult(stop_reason="error", is_error=True, error="model refused"))
                return
            elif word == "usage":
                values = dict(item.split("=") for item in rest.split())
                usage = TokenUsage(input=int(values.get("in", 0)), output=int(values.get("out", 0)),
                                   cache_read=int(values.get("cr", 0)), cache_creation=int(values.get("cw", 0)))
                reply = f"used {rest}"
            elif word == "multi":
                await self._send.send(AssistantText(text="a draft", message_id="m1"))
                await self._send.send(ToolUse(tool_call_id="t1", name="Read", summary="x"))
                await self._send.send(ToolResult(tool_call_id="t1", text="ok"))
                await self._send.send(AssistantText(text="sub-agent noise", message_id="s1", parent_tool_use_id="t9"))
                await self._send.send(AssistantText(text="final part one", message_id="m2"))
                await self._send.send(AssistantText(text=" and part two", message_id="m2"))
                await self._send.send(TurnResult(usage=usage))
                return
            elif self.driver.producer_reply is not None and "· task#" in text.split("\n", 1)[0]:
                reply = self.driver.producer_reply
            else:
                reply = f"done: {payload}"
            await self._send.send(AssistantText(text=reply))
            await self._send.send(TurnResult(usage=usage))
            return
        await self._send.send(TurnResult(stop_reason="cancelled"))


class QDriver(FakeDriver):
    supports_resume = True

    def __init__(self) -> None:
        super().__init__(name="qfake")
        self.turns: list[str] = []
        self.launches: list[Any] = []
        self.producer_reply: str | None = "ack"
        # a resume of a session the agent no longer has: True fails at start (an ACP agent refusing
        # session/load); "late" starts, then fails the first turn (claude --resume: "No conversation found")
        self.refuse_resume: bool | str = False

    async def start(self, spec: Any, launch: Any, nursery: trio.Nursery) -> Any:
        self.launches.append((spec, launch))
        if self.refuse_resume is True and spec.resume_id:
            raise RuntimeError(f"session not found: {spec.resume_id}")
        proc = QProcess(self, spec.resume_id or f"qfake-{spec.handle}")
        proc._nursery = nursery
        self.processes.append(proc)
        if self.refuse_resume == "late" and spec.resume_id:
            proc.lost = f"No conversation found with session ID: {spec.resume_id}"
            return proc
        await proc._send.send(SystemInit(session_id=proc.session_id))
        return proc


class LiveCounter:
    """Counts live worker sessions (profile ``worker``) from started to closed; keeps the maximum."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.max = 0
        self.started: list[str] = []

    @hookimpl
    def aegis_session_started(self, session: Any) -> None:
        if session.profile_name == "worker":
            self.live.add(session.handle)
            self.started.append(session.handle)
            self.max = max(self.max, len(self.live))

    @hookimpl
    def aegis_session_closed(self, session: Any, reason: str) -> None:
        self.live.discard(session.handle)


async def producer(kernel: Any) -> Any:
    """A live, ready session of the ``producer`` profile."""
    session = await kernel.sessions.spawn("producer")
    await session.wait_for(lambda s: s.state == "ready")
    return session


async def call(kernel: Any, name: str, caller: str | None = None, **args: Any) -> Any:
    return await kernel.operations.call(kernel, name, args, Caller(caller, via="mcp" if caller else "user"))


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


def callbacks(session: Any) -> list[Any]:
    from aegis_kernel.events import EnvelopeReceived

    return [e for e in session.history if isinstance(e, EnvelopeReceived) and e.sender.startswith("queue:")]
