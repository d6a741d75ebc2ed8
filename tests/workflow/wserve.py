"""A real ``aegis serve`` subprocess for the workflow end-to-end tests, and CLI helpers."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class Serve:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Serve:
        self.proc = subprocess.Popen([sys.executable, "-m", "aegis_kernel.cli", "serve"], cwd=self.project,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        deadline, lines = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if not line and self.proc.poll() is not None:
                    break
                lines.append(line)
                if "ready in" in line:
                    return self
        self.kill9()
        raise AssertionError("serve did not become ready:\n" + "".join(lines))

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        out = subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=self.project,
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"aegis {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the serve only: agents are in their own groups
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait(predicate: Any, what: str, timeout: float = 60, poll: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy (observing real processes); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def runs_dir(project: Path) -> Path:
    return project / ".aegis" / "state" / "workflows" / "runs"


def records(project: Path, run_id: str) -> list[dict[str, Any]]:
    path = runs_dir(project) / f"{run_id}.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out


def inbox(project: Path, handle: str) -> list[dict[str, Any]]:
    """The envelopes ever queued for ``handle`` (its inbox ledger)."""
    path = project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl"
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["envelope"] for r in recs if r.get("op") == "queued"]
