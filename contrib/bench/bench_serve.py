"""`aegis serve` start → MCP plane accepting, idle RSS, and handoff latency.

Run: .venv/bin/python contrib/bench/bench_serve.py [--starts 10] [--handoffs 300]

- start: wall time from spawning `aegis serve` to the first answered MCP request (target ≤ 400 ms;
  measured with compiled bytecode as a pip install has it — without any, every import compiles from
  source and this figure roughly doubles);
- idle RSS of the serve process with no agents (target ≤ 60 MB);
- handoff: from calling `aegis_handoff` to the target agent process having the prompt on its stdin
  (the ACP `session/prompt` line written), warm, target idle (target median ≤ 1.5 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CONFIG = "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"


def measure_start(project: Path) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "aegis_kernel.cli", "serve", "--clean"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split("MCP ", 1)[1].split(" ", 1)[0] + "no-such-token"
        while True:  # the plane answers (a refusal is an answer)
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=2)
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.002)
        elapsed = (time.perf_counter() - started) * 1000
        time.sleep(1.0)
        rss_kb = next(int(l.split()[1]) for l in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                      if l.startswith("VmRSS:"))
        return elapsed, rss_kb / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def measure_handoffs(project: Path, count: int) -> list[float]:
    import trio

    from aegis_kernel import process
    from aegis_kernel.kernel import open_kernel
    from aegis_kernel.operations import Caller

    marks: list[float] = []
    original = process.AgentSubprocess.send_line

    async def send_line(self, line):  # the moment the prompt is on the agent's stdin
        await original(self, line)
        if b"session/prompt" in (line if isinstance(line, bytes) else line.encode()):
            marks.append(time.perf_counter())

    process.AgentSubprocess.send_line = send_line
    async with open_kernel(project) as kernel:
        target = await kernel.sessions.spawn(handle="target")
        await target.wait_for(lambda s: s.state == "ready")
        source = Caller("source", via="mcp")
        samples = []
        for i in range(count):
            marks.clear()
            t0 = time.perf_counter()
            await kernel.operations.call(kernel, "aegis_handoff", {"target_handle": "target",
                                                                    "context": f"@reply ok {i}"}, source)
            with trio.fail_after(10):
                while not marks:
                    await trio.sleep(0)
            samples.append((marks[0] - t0) * 1000)
            await target.wait_for(lambda s: s.state == "ready" and not s.pending_count, 10)
    process.AgentSubprocess.send_line = original
    return samples[10:]  # warm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--handoffs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text(CONFIG)
        runs = [measure_start(project) for _ in range(args.starts)]
        starts = [r[0] for r in runs]
        rss = [r[1] for r in runs]
        import trio

        handoffs = trio.run(measure_handoffs, project, args.handoffs)
    import importlib.util
    import os

    cached = importlib.util.find_spec("trio").cached
    bytecode = "with" if cached and Path(cached).exists() else "WITHOUT"
    print(f"(imports run {bytecode} compiled bytecode; PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}. pip installs compile it; a uv venv under "
          "PYTHONDONTWRITEBYTECODE has none: `python -m compileall` the venv and src folders to compare)")
    print(f"serve start → MCP accepting  median {statistics.median(starts):7.1f} ms  (target ≤ 400 ms)")
    print(f"serve idle RSS               median {statistics.median(rss):7.1f} MB  (target ≤ 60 MB)")
    print(f"handoff → prompt on stdin    median {statistics.median(handoffs):7.3f} ms  "
          f"p90 {statistics.quantiles(handoffs, n=10)[8]:.3f} ms  (target ≤ 1.5 ms, n={len(handoffs)})")
    print(json.dumps({"start_ms": statistics.median(starts), "rss_mb": statistics.median(rss),
                      "handoff_ms": statistics.median(handoffs)}))


if __name__ == "__main__":
    main()
