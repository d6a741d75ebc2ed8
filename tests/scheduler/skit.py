"""Helpers of the scheduler tests: test workflows that record when they ran, and waits with deadlines."""

from __future__ import annotations

from typing import Any

import trio

from aegis_kernel import hookimpl
from aegis_workflow import workflow

BASE = """\
default_agent: helper
agents:
  helper:
    provider: scripted
"""


class Flows:
    """A plugin registering ``tick`` (records the wall time it started), ``slow`` (runs ``seconds``)
    and ``boom`` (raises)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, dict[str, Any]]] = []
        self.finished: list[tuple[str, float]] = []

    @hookimpl
    def aegis_register_workflows(self, register: Any) -> None:
        flows = self

        @workflow("tick")
        async def tick(engine: Any, label: str = "") -> str:
            flows.calls.append(("tick", engine.kernel.clock.now(), {"label": label}))
            return f"tick {label}"

        @workflow("slow")
        async def slow(engine: Any, seconds: float = 60) -> str:
            flows.calls.append(("slow", engine.kernel.clock.now(), {"seconds": seconds}))
            await trio.sleep(seconds)
            flows.finished.append(("slow", engine.kernel.clock.now()))
            return "slow done"

        @workflow("boom")
        async def boom(engine: Any) -> str:
            flows.calls.append(("boom", engine.kernel.clock.now(), {}))
            raise RuntimeError("kaboom")

        register(tick)
        register(slow)
        register(boom)


def scheduler(kernel: Any) -> Any:
    from aegis_scheduler.runtime import SchedulerRuntime

    return kernel.service(SchedulerRuntime)


async def until(predicate: Any, timeout: float = 30.0) -> None:
    """Wait (on the trio clock) until ``predicate()`` holds; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)
