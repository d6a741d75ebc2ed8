"""Scheduler figures: fire lateness, and the idle CPU of 1,000 schedules.

    .venv/bin/python contrib/bench/bench_scheduler.py [--fires 100] [--every 1] [--schedules 1000] [--idle 60]

The kernel runs in this process with every installed plugin (as under ``aegis serve``), on the real clock.

1. **Lateness**: one schedule ``every: <--every>s`` runs a no-op workflow ``--fires`` times; the figure
   is the time from each due instant to the workflow's first line running (wall clock), median and p99.
2. **Idle CPU**: the process CPU time (user + system) of a kernel holding ``--schedules`` cron schedules
   (none due during the window) over ``--idle`` seconds, against the same kernel with none.

Targets (issue 17): lateness median ≤ 50 ms, p99 ≤ 200 ms; idle CPU with 1,000 schedules no more than
with none, within noise.
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
STARTED: list[float] = []


@workflow("bench_mark")
async def bench_mark(engine: Any) -> None:
    STARTED.append(time.time())


class Flows:
    @hookimpl
    def aegis_register_workflows(self, register: Any) -> None:
        register(bench_mark)


async def lateness(project: Path, fires: int, every: float) -> list[float]:
    (project / ".aegis.yaml").write_text(CONFIG + f"schedules:\n  tick:\n    workflow: bench_mark\n"
                                         f"    every: {every:g}s\n    lifecycle: {{fires: {fires}}}\n")
    STARTED.clear()
    async with open_kernel(project, extra_plugins=[("bench-flows", Flows())]) as kernel:
        from aegis_scheduler.runtime import SchedulerRuntime

        rt = kernel.service(SchedulerRuntime)
        while len(STARTED) < fires:
            await trio.sleep(every)
        records = [r for r in rt.logs("tick", 1_000_000) if r["event"] == "fire_requested"]
    dues = [r["due_ts"] for r in records]
    return [max(0.0, s - d) for s, d in zip(STARTED, dues)]


async def idle_cpu(project: Path, schedules: int, seconds: float) -> float:
    lines = [CONFIG, "schedules:\n"]
    for i in range(schedules):  # Jan 1st, 03:MM: never due during the window
        lines.append(f"  s{i}:\n    workflow: bench_mark\n    cron: \"{i % 60} 3 1 1 *\"\n    timezone: Europe/Berlin\n")
    (project / ".aegis.yaml").write_text("".join(lines))
    async with open_kernel(project, extra_plugins=[("bench-flows", Flows())]):
        await trio.sleep(5)  # let start-up settle (the first snapshot of every schedule)
        before = time.process_time()
        await trio.sleep(seconds)
        return time.process_time() - before


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fires", type=int, default=100)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("a", "b", "c"):
            (Path(tmp) / sub).mkdir()
        late = trio.run(lateness, Path(tmp) / "a", args.fires, args.every)
        print(f"lateness over {len(late)} fires: median {statistics.median(late) * 1000:.2f} ms, "
              f"p99 {pct(late, 0.99) * 1000:.2f} ms, max {max(late) * 1000:.2f} ms")
        none = trio.run(idle_cpu, Path(tmp) / "b", 0, args.idle)
        many = trio.run(idle_cpu, Path(tmp) / "c", args.schedules, args.idle)
        print(f"idle CPU over {args.idle:g} s: no schedules {none * 1000:.0f} ms, "
              f"{args.schedules} schedules {many * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
