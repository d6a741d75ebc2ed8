"""Queue throughput and kernel CPU per task, with real scripted ACP workers that answer at once.

    .venv/bin/python contrib/bench/bench_queue.py [--tasks 200] [--parallel 8] [--profile]

The kernel runs in this process (as under ``aegis serve``: all installed plugins, MCP plane included);
each task spawns a fresh scripted worker (``aegis_scripted.driver.agent_command()``: ``python -S``),
runs the payload as its opening turn, and closes it. Figures:

- throughput: tasks / wall time from the first enqueue to the last terminal record;
- kernel CPU per task: ``time.process_time()`` of this process (the kernel; children excluded) / tasks;
- worker spawn: dispatch → the worker's session is ready (process start + ACP handshake), and
  turn end → worker closed, reported separately (that is the floor the kernel cannot remove);
- worker CPU per task: the children's CPU (``os.times()``), for scale.

Targets (issue 5): ≥ 100 tasks/s at max_parallel 8 and ≤ 3 ms kernel CPU per task.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import trio

from aegis_kernel import hookimpl
from aegis_kernel.kernel import open_kernel
from aegis_kernel.operations import Caller
from aegis_queue.runtime import QueueRuntime

CONFIG = """\
default_agent: worker
agents:
  worker:
    provider: {provider}
queues:
  bench:
    agent: worker
    max_parallel: {parallel}
    timeout: 120
"""


class Probe:
    """Times each worker: dispatch → ready, and first turn end → closed."""

    def __init__(self) -> None:
        self.kernel: Any = None
        self.ready: list[float] = []
        self.closing: dict[str, float] = {}
        self.close: list[float] = []

    @hookimpl
    def aegis_session_started(self, session: Any) -> None:
        rt = self.kernel.find_service(QueueRuntime) if self.kernel else None
        task = rt._by_handle.get(session.handle) if rt is not None else None
        if task is not None and task.started is not None:
            self.ready.append(time.monotonic() - task.started)

    @hookimpl
    def aegis_turn_finished(self, session: Any, result: Any, final_text: str) -> None:
        self.closing[session.handle] = time.monotonic()

    @hookimpl
    def aegis_session_closed(self, session: Any, reason: str) -> None:
        t = self.closing.pop(session.handle, None)
        if t is not None:
            self.close.append(time.monotonic() - t)


async def run(project: Path, tasks: int, parallel: int, extra: list[tuple[str, Any]], probe: Probe,
              profile: bool) -> dict[str, float]:
    async with open_kernel(project, extra_plugins=extra) as kernel:
        probe.kernel = kernel
        rt = kernel.service(QueueRuntime)

        async def batch(n: int, tag: str) -> list[Any]:
            out = []
            for i in range(n):
                res = await kernel.operations.call(kernel, "aegis_enqueue",
                                                   {"queue": "bench", "payload": f"@reply {tag} {i}"}, Caller())
                out.append(rt.tasks[res["task_id"]])
            for task in out:
                await task.finished.wait()
            while rt.queues["bench"].inflight:  # let the last workers close
                await trio.sleep(0.01)
            return out

        await batch(parallel, "warm-up")
        probe.ready.clear()
        probe.close.clear()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        children0 = os.times()
        cpu0, t0 = time.process_time(), time.perf_counter()
        done = await batch(tasks, "task")
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        children1 = os.times()
        if profiler is not None:
            import pstats

            profiler.disable()
            if os.environ.get("BENCH_PROFILE_OUT"):
                profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])
            pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(60)
        failed = [t for t in done if t.status != "completed"]
        if failed:
            print(f"!! {len(failed)} task(s) did not complete, e.g. {failed[0].error}", file=sys.stderr)
        worker_cpu = (children1.children_user + children1.children_system
                      - children0.children_user - children0.children_system)
        return {"wall": wall, "cpu": cpu, "worker_cpu": worker_cpu}


class PopenMeter:
    """Sums the CPU the kernel spends inside ``subprocess.Popen`` (pipes, fork/exec: trio runs it in a
    worker thread), so the spawn's share of the kernel's CPU can be reported apart."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._popen_init = subprocess.Popen.__init__

    def __enter__(self) -> PopenMeter:
        meter, original, lock = self, self._popen_init, threading.Lock()

        def timed_init(popen: Any, *a: Any, **kw: Any) -> None:  # runs in trio's worker threads
            t0 = time.thread_time()
            try:
                original(popen, *a, **kw)
            finally:
                with lock:
                    meter.cpu += time.thread_time() - t0

        subprocess.Popen.__init__ = timed_init  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.Popen.__init__ = self._popen_init  # type: ignore[method-assign]


def one_run(args: argparse.Namespace, profile: bool) -> tuple[dict[str, float], Probe]:
    with tempfile.TemporaryDirectory(prefix="aegis-bench-") as tmp:
        project = Path(tmp)
        probe = Probe()
        (project / ".aegis.yaml").write_text(CONFIG.format(parallel=args.parallel, provider=args.driver))
        extra: list[tuple[str, Any]] = [("bench-probe", probe)]
        if args.driver == "fake":
            from aegis_kernel.testing import DriverPlugin, FakeDriver

            extra.append(("bench-fake-driver", DriverPlugin(FakeDriver())))
        with PopenMeter() as meter:
            figures = trio.run(run, project, args.tasks, args.parallel, extra, probe, profile)
        figures["popen"] = meter.cpu * args.tasks / (args.tasks + args.parallel)  # warm-up batch excluded
        return figures, probe


def worker_bytecode(compile_it: bool) -> str:
    """Compile the worker's package as a pip install does (unless told not to); say which case runs.

    Without bytecode (a dev checkout under ``PYTHONDONTWRITEBYTECODE``) every worker compiles the
    agent from source at start, which roughly doubles its start-up CPU."""
    import compileall
    import importlib.util

    import aegis_scripted.agent as agent

    if compile_it:
        compileall.compile_dir(Path(agent.__file__).parent, quiet=1)
    cached = importlib.util.cache_from_source(agent.__file__)
    state = "with" if Path(cached).exists() else "WITHOUT"
    return (f"workers import {state} compiled bytecode"
            + (" (compiled by this bench, as a pip install would; --no-compile to measure without)"
               if compile_it else f" (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5, help="repeat the measured batch; medians are reported")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the kernel during the run")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile the worker's bytecode first (a dev checkout under PYTHONDONTWRITEBYTECODE)")
    parser.add_argument("--driver", choices=("scripted", "fake"), default="scripted",
                        help="scripted: real worker subprocesses (default); fake: in-process workers "
                             "(aegis_kernel.testing.FakeDriver), isolating the kernel's own cost")
    args = parser.parse_args()
    n = args.tasks
    kind = "scripted ACP workers (python -S, one per task)" if args.driver == "scripted" else "in-process fake workers"
    print(f"queue bench: {n} tasks, max_parallel {args.parallel}, {kind}, {os.cpu_count()} CPUs,"
          f" {1 if args.profile else args.runs} run(s)")
    if args.driver == "scripted":
        print(f"  ({worker_bytecode(not args.no_compile)})")
    rows: list[dict[str, float]] = []
    for i in range(1 if args.profile else args.runs):
        figures, probe = one_run(args, args.profile)
        row = {"rate": n / figures["wall"], "cpu": figures["cpu"] / n * 1000,
               "worker_cpu": figures["worker_cpu"] / n * 1000, "popen": figures["popen"] / n * 1000,
               "ready": statistics.median(probe.ready) * 1000 if probe.ready else float("nan"),
               "close": statistics.median(probe.close) * 1000 if probe.close else float("nan")}
        rows.append(row)
        print(f"  run {i + 1}: {row['rate']:6.1f} tasks/s  kernel {row['cpu']:5.2f} ms/task  "
              f"workers {row['worker_cpu']:5.2f} ms/task  spawn {row['ready']:5.1f} ms  close {row['close']:5.1f} ms")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"median of {len(rows)}:")
    print(f"  throughput          {med('rate'):7.1f} tasks/s")
    print(f"  kernel CPU / task   {med('cpu'):7.2f} ms        (this process: queue, sessions, drivers, MCP plane)")
    if args.driver == "scripted":
        print(f"    of which Popen    {med('popen'):7.2f} ms        (pipes + fork/exec of the worker, in the kernel)")
    print(f"  worker CPU / task   {med('worker_cpu'):7.2f} ms        (the child processes: the spawn floor)")
    if args.driver == "scripted":
        print(f"  worker spawn        {med('ready'):7.1f} ms        (dispatch → worker session ready)")
        print(f"  worker close        {med('close'):7.1f} ms        (turn end → worker gone)")
        cores = os.cpu_count() or 1
        print(f"  CPU ceiling         {cores * 1000 / (med('cpu') + med('worker_cpu')):7.1f} tasks/s"
              f"   ({cores} cores / (kernel + worker CPU per task))")
    print("targets (issue 5): >= 100 tasks/s at max_parallel 8, <= 3 ms kernel CPU per task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
