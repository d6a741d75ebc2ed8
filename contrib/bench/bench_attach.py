"""Attach figure: bare ``aegis`` started while ``aegis serve`` holds 20 live sessions, in a real pty (120×40).

- attached: process start → first frame (the title line on the pty) and → all 20 tabs shown
  (``· 20 agents ·`` in the title); target ≤ 1.5 s to the 20 tabs. Ctrl+Q detaches (the serve keeps them).
- reference, the owning TUI's cold start on the same project once the serve is stopped: → first frame and
  → its 20 restored sessions shown (each run restores them; Ctrl+Q closes them again).

Scripted agents (real subprocesses), each with one finished turn. Prints medians.

Run: .venv/bin/python contrib/bench/bench_attach.py [--runs 5] [--sessions 20]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tui import PtyChild  # noqa: E402 - the pty helper of the TUI figures

CONFIG = "default_agent: helper\nagents:\n  helper: {provider: scripted}\n"


def _aegis() -> str:
    return shutil.which("aegis", path=str(Path(sys.executable).parent)) or "aegis"


def _start_serve(project: Path) -> subprocess.Popen:
    proc = subprocess.Popen([_aegis(), "serve"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    while "ready in" not in (line := proc.stdout.readline()):
        if not line:
            raise SystemExit(f"aegis serve did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc


def _fill(project: Path, sessions: int) -> None:
    from aegis_kernel.client import connect

    with connect(project / ".aegis" / "state") as aegis:
        handles = [aegis.call("aegis_spawn", {"handle": f"s{i:02d}"})["handle"] for i in range(sessions)]
        for handle in handles:
            aegis.call("aegis_send", {"handle": handle, "text": f"hello {handle}"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [s["state"] for s in aegis.call("aegis_sessions")]
            if len(states) == sessions and all(s == "ready" for s in states) and \
                    all(s["metrics"]["turns"] for s in aegis.call("aegis_sessions")):
                return
            time.sleep(0.1)
    raise SystemExit("the sessions did not settle")


def _measure(project: Path, sessions: int, args: list[str]) -> tuple[float, float]:
    child = PtyChild([_aegis(), *args], str(project))
    first = child.wait_for(b"aegis", 20)
    shown = child.wait_for(f"{sessions} agents".encode(), 30)
    child.quit(timeout=60)
    return first, shown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "proj"
        project.mkdir()
        (project / ".aegis.yaml").write_text(CONFIG)
        serve = _start_serve(project)
        try:
            _fill(project, args.sessions)
            attached = [_measure(project, args.sessions, []) for _ in range(args.runs)]
        finally:
            serve.terminate()
            serve.wait(60)
        owning = [_measure(project, args.sessions, []) for _ in range(args.runs)]

    def show(label: str, runs: list[tuple[float, float]]) -> None:
        first = statistics.median(r[0] for r in runs)
        shown = statistics.median(r[1] for r in runs)
        print(f"{label:<34} first frame {first * 1000:6.0f} ms · {args.sessions} tabs shown {shown * 1000:6.0f} ms"
              f"  (runs: {', '.join(f'{r[1] * 1000:.0f}' for r in runs)})")

    show(f"attached to a serve ({args.sessions} live)", attached)
    show(f"owning, cold start ({args.sessions} restored)", owning)
    target = statistics.median(r[1] for r in attached)
    print(f"target: attached, {args.sessions} tabs shown ≤ 1500 ms → {'met' if target <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
