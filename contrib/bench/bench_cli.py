"""CLI start-up: median wall time of `aegis --version` and `aegis plugins list` (all workspace plugins).

Run: .venv/bin/python contrib/bench/bench_cli.py [--runs 30]
Targets: --version ≤ 150 ms, plugins list ≤ 250 ms (the earlier system: 2.0 s for --version).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(argv: list[str], runs: int, cwd: str) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    aegis = shutil.which("aegis", path=str(Path(sys.executable).parent)) or "aegis"
    with tempfile.TemporaryDirectory() as project:
        Path(project, ".aegis.yaml").write_text("agents:\n  helper:\n    provider: scripted\n")
        measure([aegis, "--version"], 3, project)  # warm the page cache
        version = measure([aegis, "--version"], args.runs, project)
        listing = measure([aegis, "plugins", "list"], args.runs, project)
        python = measure([sys.executable, "-c", "pass"], args.runs, project)
    print(f"python -c pass          median {python:7.1f} ms  (interpreter floor)")
    print(f"aegis --version         median {version:7.1f} ms  (target ≤ 150 ms)")
    print(f"aegis plugins list      median {listing:7.1f} ms  (target ≤ 250 ms)")


if __name__ == "__main__":
    main()
