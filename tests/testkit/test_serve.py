"""aegis_testkit.serve.ServeProcess against a real ``aegis serve``: ready line, calls, clean stop, kill -9,
and a serve that cannot start failing with what it printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from aegis_testkit.serve import ServeProcess, wait_for

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")

pytestmark = pytest.mark.e2e


def project_with(tmp_path: Path, config: str) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".aegis.yaml").write_text(config)
    return project


def test_a_serve_starts_answers_calls_and_the_cli_then_stops_cleanly(tmp_path: Path) -> None:
    serve = ServeProcess(project_with(tmp_path, "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"))
    try:
        assert serve.start() is serve
        assert "ready in" in serve.ready_line and serve.mcp_url.startswith("http")
        assert serve.call("aegis_sessions") == []
        handle = serve.call("aegis_spawn", agent="helper", prompt="hello")["handle"]
        assert wait_for(lambda: handle in [s["handle"] for s in serve.json("sessions")], f"{handle} listed")
        assert serve.cli("nonexistent-verb", check=False).returncode != 0
        with pytest.raises(AssertionError, match="nonexistent-verb"):
            serve.cli("nonexistent-verb")
    finally:
        code = serve.stop()
    assert code == 0 and not serve.running()
    serve.kill9()  # a serve that is gone: nothing to do


def test_kill9_is_a_crash_the_next_serve_recovers_from(tmp_path: Path) -> None:
    serve = ServeProcess(project_with(tmp_path, "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"))
    serve.start()
    serve.kill9()
    assert serve.proc is not None and serve.proc.returncode == -9
    try:
        serve.start()
        assert serve.call("aegis_sessions") == []
    finally:
        assert serve.stop() == 0


def test_a_serve_that_cannot_start_fails_with_what_it_printed(tmp_path: Path) -> None:
    serve = ServeProcess(project_with(tmp_path, "default_agent: helper\nagents: [\n"))
    with pytest.raises(AssertionError, match=r"(?s)aegis serve exited 2:.*invalid configuration"):
        serve.start()
    assert not serve.running()
