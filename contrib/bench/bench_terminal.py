"""Terminal figures: ``aegis_term_run(name, "true")`` round trip on a warm shell, and output throughput.

    .venv/bin/python contrib/bench/bench_terminal.py [--rounds 200] [--mb 100] [--shell bash]

The kernel runs in this process (as under ``aegis serve``: all installed plugins); one terminal is
spawned on ``--shell``. Figures:

- **round trip**: ``aegis_term_run(cmd="true")`` called through the operations registry (as an MCP
  tool call lands), from the call to its record — median, p90, max over ``--rounds`` runs after 10
  warm-up runs. Target (issue 14): median ≤ 20 ms.
- **throughput**: ``head -c <mb>M /dev/zero | base64`` run through ``aegis_term_run``; the bytes the
  reader took from the PTY (through the OSC parser, the command's capture and the raw log) divided by
  the run's wall time, in MB/s. The record keeps only head + tail (``bytes_cut`` says how much went).

Not measured here: the TUI's frame rate meanwhile (the terminal tab is not in the TUI yet, see
docs/terminal.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from aegis_kernel.kernel import open_kernel
from aegis_kernel.operations import Caller

CONFIG = """\
default_agent: helper
plugins:
  disabled: [mcp]
agents:
  helper:
    provider: scripted
"""


async def run(rounds: int, mb: int, shell: str) -> tuple[list[float], float, dict]:
    user = Caller(via="user")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text(CONFIG)
        async with open_kernel(project) as kernel:
            async def op(operation: str, **args: object) -> dict:
                return await kernel.operations.call(kernel, operation, args, user)

            await op("aegis_term_spawn", name="bench", shell=shell)
            for _ in range(10):
                await op("aegis_term_run", name="bench", cmd="true", timeout_s=60)
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                rec = await op("aegis_term_run", name="bench", cmd="true", timeout_s=60)
                times.append((time.perf_counter() - t0) * 1000)
                assert rec["exit"] == 0, rec
            t0 = time.perf_counter()
            rec = await op("aegis_term_run", name="bench", cmd=f"head -c {mb}M /dev/zero | base64", timeout_s=3600)
            elapsed = time.perf_counter() - t0
            assert rec["exit"] == 0, rec
            await op("aegis_term_close", name="bench")
            return times, rec["bytes"] / elapsed / 1e6, rec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--shell", default="bash")
    args = parser.parse_args()
    times, mbps, rec = trio.run(run, args.rounds, args.mb, args.shell)
    times.sort()
    print(f"aegis_term_run('true') round trip over {len(times)} runs on a warm {args.shell}: "
          f"median {statistics.median(times):.2f} ms · p90 {times[int(len(times) * 0.9)]:.2f} ms · "
          f"max {times[-1]:.2f} ms (target ≤ 20 ms)")
    print(f"output throughput: head -c {args.mb}M /dev/zero | base64 → {rec['bytes'] / 1e6:.1f} MB through the "
          f"reader in {rec['duration_s']:.2f}s of command time: {mbps:.1f} MB/s "
          f"(record keeps {rec['bytes'] - rec['bytes_cut']} bytes, {rec['bytes_cut']} cut)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
