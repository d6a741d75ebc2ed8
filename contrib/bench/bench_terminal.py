"""Terminal figures: ``aegis_term_run(name, "true")`` round trip on a warm shell, and output throughput.

    .venv/bin/python contrib/bench/bench_terminal.py [--rounds 200] [--mb 100] [--shell bash] [--tui-mb 100]

The kernel runs in this process (as under ``aegis serve``: all installed plugins); one terminal is
spawned on ``--shell``. Figures:

- **round trip**: ``aegis_term_run(cmd="true")`` called through the operations registry (as an MCP
  tool call lands), from the call to its record — median, p90, max over ``--rounds`` runs after 10
  warm-up runs. Target (issue 14): median ≤ 20 ms.
- **throughput**: ``head -c <mb>M /dev/zero | base64`` run through ``aegis_term_run``; the bytes the
  reader took from the PTY (through the OSC parser, the command's capture and the raw log) divided by
  the run's wall time, in MB/s. The record keeps only head + tail (``bytes_cut`` says how much went).
- **with the TUI open on that terminal**: the real TUI runs in a pseudo-terminal (120×40, as in
  bench_tui.py) owning the kernel, with the ``term:bench`` tab open in front (run mode: its view
  polls ``aegis_term_read`` and draws the running command's tail). The same
  ``head -c <tui-mb>M /dev/zero | base64`` runs in that terminal (MB/s as above); meanwhile
  characters are typed into the tab's input line and the time from each key press to its character
  drawn on the pty is the **key → frame latency** (median, p90, max over the keys typed while the
  output flows, at most ``--keys``: the TUI must stay interactive).
"""

from __future__ import annotations

import argparse
import json
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


# --- with the TUI open on the terminal --------------------------------------------------------------


def child_tui(project: Path, mb: int) -> None:
    """The TUI (in the parent's pty) with ``term:bench`` in front; the flood runs once the tab shows it.
    Writes ``flood-started`` then ``flood.json`` (the record and the wall time) into the project."""
    from aegis_kernel.kernel import build_kernel
    from aegis_tui.cli import run_app

    async def tour(app: object) -> None:
        kernel = app.kernel  # type: ignore[attr-defined]
        app.call_later(app.open_panel_tab, "terminal", arg="bench")  # type: ignore[attr-defined]
        user = Caller(via="user")

        async def op(operation: str, **args: object) -> dict:
            return await kernel.operations.call(kernel, operation, args, user)

        while not any(t["terminal"] == "bench" and t["state"] == "idle"
                      for t in (await op("aegis_term_list"))["terminals"]):
            await trio.sleep(0.05)
        await op("aegis_term_run", name="bench", cmd="true", timeout_s=60)  # warm
        await trio.sleep(1.0)  # the tab settles (the parent waits for this file before typing)
        (project / "flood-started").write_text("")
        t0 = time.perf_counter()
        rec = await op("aegis_term_run", name="bench", cmd=f"head -c {mb}M /dev/zero | base64", timeout_s=3600)
        wall = time.perf_counter() - t0
        (project / "flood.json").write_text(json.dumps({"record": rec, "wall_s": wall}))

    sys.exit(run_app(build_kernel(project), clean=True, tour=tour))


def bench_with_tui(mb: int, shell: str, max_keys: int) -> tuple[dict, list[float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_tui import KEYS, PtyChild

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text(CONFIG)
        child = PtyChild([sys.executable, __file__, "--child-tui", str(project), "--tui-mb", str(mb)], tmp,
                         env={"SHELL": shell if "/" in shell else f"/bin/{shell}"})
        child.wait_for(b"term:bench", 60)
        deadline = time.perf_counter() + 120
        while not (project / "flood-started").exists():
            assert time.perf_counter() < deadline, child.buffer[-400:]
            child.read(0.05)
        latencies: list[float] = []
        done = project / "flood.json"
        while not done.exists() and len(latencies) < max_keys:
            i = len(latencies)
            if i and i % 30 == 0:  # keep the input short: clear it (not measured)
                child.send(b"\x7f" * 30)
                child.read(0.3)
            needle = KEYS[i % len(KEYS)].encode()
            mark = len(child.buffer)
            sent = time.perf_counter()
            child.send(needle)
            while time.perf_counter() < sent + 10:
                if needle in child.buffer[mark:]:
                    latencies.append(time.perf_counter() - sent)
                    break
                child.read(0.002)
            else:
                latencies.append(float("inf"))
            child.read(0.05)
        while not done.exists():
            assert time.perf_counter() < deadline + 3600, "the flood never finished"
            child.read(0.1)
        result = json.loads(done.read_text())
        child.quit()
    return result, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--shell", default="bash")
    parser.add_argument("--tui-mb", type=int, default=100, help="the flood's size with the TUI open (0: skip)")
    parser.add_argument("--keys", type=int, default=400, help="at most this many keys typed during the flood")
    parser.add_argument("--child-tui", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_tui:
        child_tui(Path(args.child_tui), args.tui_mb)
        return 0
    times, mbps, rec = trio.run(run, args.rounds, args.mb, args.shell)
    times.sort()
    print(f"aegis_term_run('true') round trip over {len(times)} runs on a warm {args.shell}: "
          f"median {statistics.median(times):.2f} ms · p90 {times[int(len(times) * 0.9)]:.2f} ms · "
          f"max {times[-1]:.2f} ms (target ≤ 20 ms)")
    print(f"output throughput: head -c {args.mb}M /dev/zero | base64 → {rec['bytes'] / 1e6:.1f} MB through the "
          f"reader in {rec['duration_s']:.2f}s of command time: {mbps:.1f} MB/s "
          f"(record keeps {rec['bytes'] - rec['bytes_cut']} bytes, {rec['bytes_cut']} cut)")
    if args.tui_mb:
        result, keys = bench_with_tui(args.tui_mb, args.shell, args.keys)
        rec, wall = result["record"], result["wall_s"]
        print(f"with the TUI open on it (run mode): head -c {args.tui_mb}M /dev/zero | "
              f"base64 → {rec['bytes'] / 1e6:.1f} MB in {wall:.2f}s: {rec['bytes'] / wall / 1e6:.1f} MB/s")
        if keys:
            ordered = sorted(keys)
            print(f"key → frame meanwhile: median {statistics.median(keys) * 1000:.1f} ms · "
                  f"p90 {ordered[int(len(ordered) * 0.9)] * 1000:.1f} ms · max {ordered[-1] * 1000:.1f} ms "
                  f"({len(keys)} keys typed into the tab while the output flowed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
