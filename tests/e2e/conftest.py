"""A real ``aegis serve`` subprocess on a temp project, and CLI helpers that talk to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTED_CONFIG = """\
default_agent: helper
agents:
  helper:
    provider: scripted
"""


class Serve:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.proc: subprocess.Popen | None = None
        self.ready_line = ""

    def start(self, *extra: str, timeout: float = 30) -> Serve:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aegis_kernel.cli", "serve", *extra], cwd=self.project,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited: {self.proc.wait()} {self.proc.stderr.read()}")
            if "ready in" in line:
                self.ready_line = line
                return self
        raise AssertionError("serve did not become ready")

    @property
    def mcp_url(self) -> str:
        return self.ready_line.split("MCP ", 1)[1].split(" ", 1)[0]

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        out = subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=self.project,
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"aegis {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def events(self, handle: str) -> list[dict]:
        out = self.cli("transcript", handle, "--json")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def wait(self, predicate, what: str, timeout: float = 30, poll: float = 0.1):
        """Poll the serve through its CLI until ``predicate()`` is truthy (observing a real process)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(poll)

    def session(self, handle: str) -> dict | None:
        sessions = json.loads(self.cli("sessions", "--json").stdout)
        return next((s for s in sessions if s["handle"] == handle), None)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        return self.proc.returncode if self.proc else 0

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def serve_project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".aegis.yaml").write_text(SCRIPTED_CONFIG)
    return project


@pytest.fixture
def serve(serve_project: Path):
    server = Serve(serve_project)
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()
