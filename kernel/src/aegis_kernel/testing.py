"""The Aegis test kit — a pytest plugin shipped for plugin authors (entry point ``pytest11: aegis``).

Fixtures:
- ``aegis_project``: a temp project folder with a ``.aegis.yaml`` using the scripted agent.
- ``write_config(text, path=".aegis.yaml")`` / ``write_overlay(section, name, text)``: write config files.
- ``register_plugin(obj, name=None)``: add a plugin object (module or instance with ``@hookimpl``
  methods) to the kernels built in this test only.
- ``kernel``: a running kernel (trio) on ``aegis_project`` with every installed plugin + registered ones.
- ``make_kernel``: ``async with make_kernel(**build) as kernel`` for tests that need several.
- ``fake_model``: the fake model server (:mod:`aegis_kernel.fakemodel`) on 127.0.0.1, ``.url``.

Also :class:`FakeDriver`, an in-memory driver for unit tests of one layer (no subprocess).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from . import hookimpl
from .drivers import AgentProcess, Driver, Launch, SpawnSpec
from .events import AgentError, AssistantText, SystemInit, TokenUsage, TurnResult

DEFAULT_CONFIG = """\
# test project
default_agent: helper
agents:
  helper:
    provider: scripted
  other:
    provider: scripted
"""


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
        proc = FakeProcess(self.reply, spec.resume_id or f"fake-{spec.handle}")
        proc._nursery = nursery
        self.processes.append(proc)
        await proc._send.send(SystemInit(session_id=proc.session_id))
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


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def aegis_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(DEFAULT_CONFIG)
    return project


@pytest.fixture
def write_config(aegis_project: Path) -> Callable[..., Path]:
    def write(text: str, path: str = ".aegis.yaml") -> Path:
        target = aegis_project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    return write


@pytest.fixture
def write_overlay(write_config: Callable[..., Path]) -> Callable[..., Path]:
    def write(section: str, name: str, text: str) -> Path:
        return write_config(text, f".aegis/{section}/{name}.yaml")

    return write


@pytest.fixture
def fake_model() -> Any:
    """The fake model server (Anthropic, Gemini, OpenAI wire formats) on 127.0.0.1, for this test."""
    from .fakemodel import FakeModelServer

    with FakeModelServer() as server:
        yield server


@pytest.fixture
def aegis_plugins() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def register_plugin(aegis_plugins: list[tuple[str, Any]]) -> Callable[..., Any]:
    def register(obj: Any, name: str | None = None) -> Any:
        aegis_plugins.append((name or f"test-{len(aegis_plugins)}-{type(obj).__name__.lower()}", obj))
        return obj

    return register


@pytest.fixture
def make_kernel(aegis_project: Path, aegis_plugins: list[tuple[str, Any]]) -> Callable[..., Any]:
    from .kernel import open_kernel

    @asynccontextmanager
    async def make(project: Path | None = None, **build: Any) -> AsyncIterator[Any]:
        build.setdefault("extra_plugins", list(aegis_plugins))
        async with open_kernel(project or aegis_project, **build) as kernel:
            yield kernel

    return make


@pytest.fixture
async def kernel(make_kernel: Callable[..., Any]) -> AsyncIterator[Any]:
    async with make_kernel() as k:
        yield k
