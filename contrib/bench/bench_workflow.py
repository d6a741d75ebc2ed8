"""Workflow engine figures: the overhead of one journaled step, and a restart resuming a 100-step run.

    .venv/bin/python contrib/bench/bench_workflow.py [--steps 2000] [--journal 100] [--rounds 5]

The kernel runs in this process with every installed plugin (as under ``aegis serve``).

1. **Step overhead**: a workflow runs ``--steps`` no-op steps (``engine.checkpoint``: the engine's
   bookkeeping plus the journal append, the line written before the step returns); the figure is the
   median (and p90) time per step.
2. **Resume**: a run journals ``--journal`` steps and then waits for a person; its kernel stops. A new
   kernel is opened on the project: the figures are the time from opening it to the run waiting for
   the person again (the journal replayed: every step answered without running), and the part of it
   after the kernel was ready (replay alone). Median over ``--rounds``.

Targets (issue 16): ≤ 1 ms per step including the durable write; resume ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from aegis_kernel import hookimpl, open_kernel
from aegis_workflow import workflow

CONFIG = "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"
TIMES: list[float] = []


@workflow("bench_noop")
async def bench_noop(engine: Any, n: int) -> int:
    last = time.perf_counter()
    for i in range(n):
        await engine.checkpoint("k", i)
        now = time.perf_counter()
        TIMES.append(now - last)
        last = now
    return n


@workflow("bench_long")
async def bench_long(engine: Any, n: int) -> str:
    for i in range(n):
        await engine.checkpoint("k", i)
    return await engine.ask_human("go on?")


class Flows:
    @hookimpl
    def aegis_register_workflows(self, register: Any) -> None:
        register(bench_noop)
        register(bench_long)


def _runtime(kernel: Any) -> Any:
    from aegis_workflow.runtime import WorkflowRuntime

    return kernel.service(WorkflowRuntime)


async def _until(predicate: Any) -> None:
    while not predicate():
        await trio.sleep(0.0005)


async def step_overhead(steps: int) -> list[float]:
    TIMES.clear()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text(CONFIG)
        async with open_kernel(project, extra_plugins=[("bench-flows", Flows())]) as kernel:
            run = _runtime(kernel).start_run("bench_noop", {"n": steps})
            await run.done.wait()
            assert run.status == "ok", run.error
    return list(TIMES)


async def resume(journal: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text(CONFIG)
        plugins = [("bench-flows", Flows())]
        async with open_kernel(project, extra_plugins=plugins) as kernel:
            run = _runtime(kernel).start_run("bench_long", {"n": journal})
            await _until(lambda: run.question is not None)
            run_id = run.id
        t0 = time.perf_counter()
        async with open_kernel(project, extra_plugins=plugins) as kernel:
            t1 = time.perf_counter()
            run = _runtime(kernel).get(run_id)
            await _until(lambda: run.question is not None)
            t2 = time.perf_counter()
            assert run.replayed == journal, run.replayed
    return t2 - t0, t2 - t1


async def main(steps: int, journal: int, rounds: int) -> None:
    times = await step_overhead(steps)
    ms = sorted(t * 1000 for t in times)
    print(f"step overhead ({steps} no-op journaled steps): median {statistics.median(ms):.3f} ms, "
          f"p90 {ms[int(len(ms) * 0.9)]:.3f} ms, max {ms[-1]:.3f} ms")
    results = [await resume(journal) for _ in range(rounds)]
    total = statistics.median(r[0] for r in results) * 1000
    replay = statistics.median(r[1] for r in results) * 1000
    print(f"resume ({journal}-step journal, {rounds} rounds): kernel open → run continuing {total:.0f} ms "
          f"(median), of which replay after the kernel was ready {replay:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--journal", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    a = parser.parse_args()
    trio.run(main, a.steps, a.journal, a.rounds)
    sys.exit(0)
