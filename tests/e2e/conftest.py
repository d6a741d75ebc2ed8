"""A real ``aegis serve`` subprocess on a temp project, and CLI helpers that talk to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aegis_testkit.serve import ServeProcess

SCRIPTED_CONFIG = """\
default_agent: helper
agents:
  helper:
    provider: scripted
"""


class Serve(ServeProcess):
    """:class:`aegis_testkit.serve.ServeProcess` plus the transcript and session look-ups these tests use."""

    def events(self, handle: str) -> list[dict]:
        out = self.cli("transcript", handle, "--json")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def session(self, handle: str) -> dict | None:
        sessions = json.loads(self.cli("sessions", "--json").stdout)
        return next((s for s in sessions if s["handle"] == handle), None)


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
    if server.running():
        server.stop()
