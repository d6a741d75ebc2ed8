"""Pure helpers for tests of Aegis plugins and drivers — no pytest, no server, nothing auto-loaded.

- :class:`FakeDriver` / :class:`FakeProcess`: an in-memory driver for unit tests of one layer (no subprocess);
- :class:`DriverPlugin`: wrap drivers as a plugin object (``register_plugin(DriverPlugin(FakeDriver()))``);
- :func:`running_agent`, :func:`events_until`: drive one agent of a real driver;
- :func:`pids_mentioning`: check that no agent process was left behind.

The pytest fixtures (``kernel``, ``aegis_project``, ``register_plugin``, …) and the fake model server are in
the separate ``aegis-testkit`` distribution, which users' pytest runs load only if they install it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from . import hookimpl
from .drivers import AgentProcess, Driver, Launch, SpawnSpec
from .events import AgentError, AssistantText, SystemInit, TokenUsage, TurnResult


# --- FakeDriver --------------------------------------------------------------------------------------

Reply = Callable[[str], "str | Awaitable[str]"]


class FakeProcess(AgentProcess):
    def __init__(self, reply: Reply, session_id: str) -> None:
        self._reply = reply
        self.session_id = session_id
        self.prompts: list[str] = []
        self._send, self._receive = trio.open_memory_channel[Any](1000)
        self._turn: trio.CancelScope | None = None
        self._awaiting_turn = False
        self._interrupt_pending = False  # an interrupt that came before the turn's task ran
        self._nursery: trio.Nursery | None = None
        self.closed = False

    async def events(self) -> AsyncIterator[Any]:
        async for event in self._receive:
            yield event

    async def prompt(self, text: str) -> None:
        self.prompts.append(text)
        assert self._nursery is not None
        self._awaiting_turn = True
        self._nursery.start_soon(self._run_turn, text)

    async def _run_turn(self, text: str) -> None:
        try:
            with trio.CancelScope() as scope:
                self._turn, self._awaiting_turn = scope, False
                if self._interrupt_pending:
                    self._interrupt_pending = False
                    scope.cancel()
                result = self._reply(text)
                if inspect.isawaitable(result):
                    result = await result
                await self._send.send(AssistantText(text=str(result)))
                await self._send.send(TurnResult(usage=TokenUsage(input=10, output=5)))
                return
            await self._send.send(TurnResult(stop_reason="cancelled"))
        finally:
            self._turn = None

    async def interrupt(self) -> None:
        if self._turn is not None:
            self._turn.cancel()
        elif self._awaiting_turn:  # the turn's task has not run yet: cancel it as soon as it does
            self._interrupt_pending = True

    async def close(self, grace: float = 2.0) -> None:
        self.closed = True
        self._send.close()


class FakeDriver(Driver):
    """An in-memory driver: ``reply(text)`` (sync or async) gives each turn's answer."""

    name = "fake"
    supports_resume = True

    def __init__(self, reply: Reply | None = None, name: str = "fake") -> None:
        self.name = name
        self.reply = reply or (lambda text: f"fake reply to: {text.splitlines()[-1] if text else ''}")
        self.processes: list[FakeProcess] = []

    def build_launch(self, spec: SpawnSpec) -> Launch:
        return Launch(argv=("fake-agent", spec.handle))

    async def start(self, spec: SpawnSpec, launch: Launch, nursery: trio.Nursery) -> AgentProcess:
        session_id = spec.resume_id or f"fake-{spec.handle}"
        proc = FakeProcess(self.reply, session_id)
        proc._nursery = nursery
        self.processes.append(proc)
        await proc._send.send(SystemInit(session_id=session_id))
        return proc


@asynccontextmanager
async def running_agent(driver: Driver, spec: SpawnSpec) -> AsyncIterator[AgentProcess]:
    """Start ``driver``'s agent for ``spec`` (its own launch) in a nursery; close it on the way out."""
    async with trio.open_nursery() as nursery:
        proc = await driver.start(spec, driver.build_launch(spec), nursery)
        try:
            yield proc
        finally:
            await proc.close(grace=1)


async def events_until(events: AsyncIterator[Any], stop: type | tuple[type, ...] = (TurnResult, AgentError),
                       timeout: float = 15) -> list[Any]:
    """Collect ``events`` up to and including the first ``stop`` event; fail after ``timeout`` s."""
    out = []
    with trio.fail_after(timeout):
        async for event in events:
            out.append(event)
            if isinstance(event, stop):
                break
    return out


def pids_mentioning(marker: str) -> list[int]:
    """Live processes (Linux ``/proc``; zombies and this process excluded) whose command line or
    environment mentions ``marker``: how tests check that no agent process was left behind."""
    import os

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker.encode() in blob and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


class DriverPlugin:
    """Wrap drivers as a plugin object: ``register_plugin(DriverPlugin(FakeDriver()))``."""

    def __init__(self, *drivers: Driver) -> None:
        self.drivers = drivers

    @hookimpl
    def aegis_register_drivers(self, register: Any) -> None:
        for driver in self.drivers:
            register(driver)
