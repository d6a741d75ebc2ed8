"""Helpers for the groups unit tests: an in-memory driver whose members answer per a plan.

``GDriver.plan[handle]`` says how that member answers a broadcast turn (a turn whose text carries
``## Objective``): ``"ok"`` (default) at once, ``"sleep <s>"`` after s seconds, ``"fail"`` the turn
ends with an error, ``"crash"`` the agent process dies, ``"hang"`` never. A broadcast answer is
``answer from <handle>: <objective>``; any other turn is answered ``early <handle>: <last line>``.
"""

from __future__ import annotations

from typing import Any

import trio

from aegis_kernel.events import AgentError, AssistantText, SystemInit, TokenUsage, TurnResult
from aegis_kernel.operations import Caller
from aegis_kernel.testing import FakeDriver, FakeProcess

CONFIG = """\
default_agent: producer
plugins:
  disabled: [mcp]
agents:
  producer:
    provider: gfake
  member:
    provider: gfake
  other:
    provider: gfake
groups:
  defaults:
    timeout: 1h
  presets:
    trio:
      profiles: [member, member, other]
"""


def objective(text: str) -> str | None:
    if "## Objective" not in text:
        return None
    return text.split("## Objective\n", 1)[1].split("\n", 1)[0]


class GProcess(FakeProcess):
    def __init__(self, driver: GDriver, handle: str, session_id: str) -> None:
        super().__init__(driver.reply, session_id)
        self.driver = driver
        self.handle = handle

    async def _run_turn(self, text: str) -> None:
        self.driver.turns.append((self.handle, text))
        goal = objective(text)
        last = text.strip().splitlines()[-1] if text.strip() else ""
        plan = self.driver.plan.get(self.handle, "ok") if goal is not None else ("gate" if last == "gate" else "ok")
        with trio.CancelScope() as scope:
            self._turn = scope
            word, _, rest = plan.partition(" ")
            if word == "sleep":
                await trio.sleep(float(rest))
            elif word == "gate":
                await self.driver.gate.wait()
            elif word == "hang":
                await trio.sleep_forever()
            elif word == "crash":
                await self._send.send(AgentError(message="the agent process exited with code 3", exit_code=3))
                self._send.close()
                return
            elif word == "fail":
                await self._send.send(TurnResult(stop_reason="error", is_error=True, error="model refused"))
                return
            reply = f"answer from {self.handle}: {goal}" if goal is not None else f"early {self.handle}: {last}"
            await self._send.send(AssistantText(text=reply))
            await self._send.send(TurnResult(usage=TokenUsage(input=10, output=5)))
            return
        await self._send.send(TurnResult(stop_reason="cancelled"))


class GDriver(FakeDriver):
    def __init__(self) -> None:
        super().__init__(name="gfake")
        self.plan: dict[str, str] = {}
        self.turns: list[tuple[str, str]] = []
        self.gate = trio.Event()  # a turn whose text ends with the line "gate" waits for it

    async def start(self, spec: Any, launch: Any, nursery: trio.Nursery) -> Any:
        proc = GProcess(self, spec.handle, spec.resume_id or f"gfake-{spec.handle}")
        proc._nursery = nursery
        self.processes.append(proc)
        await proc._send.send(SystemInit(session_id=proc.session_id))
        return proc


async def call(kernel: Any, op: str, caller: str | None = None, **args: Any) -> Any:
    return await kernel.operations.call(kernel, op, args, Caller(caller, via="mcp" if caller else "user"))


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate`` (fails only after a generous deadline)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def ready(kernel: Any, profile: str = "producer") -> Any:
    session = await kernel.sessions.spawn(profile)
    await session.wait_for(lambda s: s.state == "ready")
    return session


def envelopes(session: Any, prefix: str) -> list[Any]:
    from aegis_kernel.events import EnvelopeReceived

    return [e for e in session.history if isinstance(e, EnvelopeReceived) and e.sender.startswith(prefix)]
