"""Helpers of the workflow tests: test workflows, a plugin registering them, and waits with deadlines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from aegis_kernel import hookimpl
from aegis_workflow import workflow

CONFIG = """\
default_agent: helper
agents:
  helper:
    provider: scripted
  implementer:
    provider: scripted
    permission: auto
  reviewer:
    provider: scripted
"""

MODE = {"echo": "a"}  # what `shifty` runs: a test changes it to make a replay diverge


@workflow("two_sends")
async def two_sends(engine: Any, path: str) -> str:
    """Spawn, send twice, append a line to a file, wait for a person, send again."""
    h = await engine.spawn("helper")
    first = await engine.send(h, "@reply first answer")
    second = await engine.send(h, "@reply second answer")
    await engine.bash(f"echo line >> {path}")
    answer = await engine.ask_human("go on?", options=["yes", "no"])
    third = await engine.send(h, "@reply third answer")
    return f"{first} | {second} | {answer} | {third}"


@workflow("shifty")
async def shifty(engine: Any) -> str:
    await engine.bash(f"echo {MODE['echo']}")
    await engine.ask_human("wait here")
    return "done"


@workflow("steps")
async def steps(engine: Any, n: int = 3) -> list[Any]:
    out = []
    for i in range(n):
        out.append(await engine.checkpoint(f"c{i}", i))
    return out


@workflow("fan")
async def fan(engine: Any, path: str) -> list[Any]:
    """Two branches in parallel, each appending to a file, then a pause for a person."""

    async def branch(name: str) -> str:
        out = await engine.bash(f"echo {name} >> {path}; echo {name}")
        return out["stdout"].strip()

    got = await engine.parallel(lambda: branch("a"), branch("b"))
    await engine.ask_human("pause")
    return got


@workflow("fan_fail")
async def fan_fail(engine: Any) -> str:
    async def bad() -> None:
        await engine.bash("exit 3")
        raise RuntimeError("branch failed")

    try:
        await engine.parallel(bad, engine.ask_human("never answered"))
    except RuntimeError as exc:
        return f"caught: {exc}"
    return "no error"


class Flows:
    @hookimpl
    def aegis_register_workflows(self, register: Any) -> None:
        for fn in (two_sends, shifty, steps, fan, fan_fail):
            register(fn)


def runtime(kernel: Any) -> Any:
    from aegis_workflow.runtime import WorkflowRuntime

    return kernel.service(WorkflowRuntime)


async def until(predicate: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``predicate()`` (every 10 ms) until truthy; fail after ``timeout`` s."""
    with trio.move_on_after(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await trio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def finished(run: Any, timeout: float = 60) -> Any:
    with trio.move_on_after(timeout):
        await run.done.wait()
    assert run.done.is_set(), f"run {run.id} ({run.name}) did not finish: {run.status} at {run.step!r}"
    return run


def journal(project: Path, run_id: str) -> list[dict[str, Any]]:
    path = project / ".aegis" / "state" / "workflows" / "runs" / f"{run_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
