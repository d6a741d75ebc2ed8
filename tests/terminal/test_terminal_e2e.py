"""End to end under a real ``aegis serve``: scripted agents (real ACP subprocesses) use a shared terminal
through the real MCP plane. A spawns ``build`` and subscribes; B runs commands with known exit codes and a
``sleep`` that times out (``timed_out``), then interrupts it with ``ctrl-c``; A's inbox holds one envelope
per finished command with the right exit codes; the screen shows the prompt; ``aegis term`` works as a
thin client; stopping serve leaves no shell behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")

from terminal_testkit import Serve, reap_orphans, shells_with_term, tool, wait_for  # noqa: E402

from aegis_kernel.state import Ledger  # noqa: E402

pytestmark = pytest.mark.e2e

CONFIG = """\
default_agent: helper
agents:
  helper:
    provider: scripted
    permission: full        # runs commands in shared terminals without asking
"""
HEAD_RE = re.compile(r"^\$ (?P<cmd>.+) · run by (?P<who>\S+)\nexit (?P<exit>\d+) · \d+\.\d\ds\n──")


def envelopes(project: Path, handle: str) -> list[dict]:
    recs = Ledger.replay(project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl").records
    return [r["envelope"] for r in recs if r.get("op") == "queued" and r["envelope"]["sender"] == "term:build"]


def terminal(serve: Serve) -> dict | None:
    return next((t for t in serve.call("aegis_term_list")["terminals"] if t["terminal"] == "build"), None)


@pytest.fixture
def project(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", "/bin/bash")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    yield project
    reap_orphans(project / ".aegis" / "state")


def test_two_scripted_agents_share_a_terminal_under_serve(project):
    serve = Serve(project)
    serve.start()
    try:
        serve.call("aegis_spawn", handle="pm", prompt="\n".join([
            tool("aegis_term_spawn", name="build", from_handle="pm"),
            tool("aegis_term_subscribe", name="build", from_handle="pm")]))
        wait_for(lambda: (t := terminal(serve)) and "pm" in t["subscribers"], "pm to spawn build and subscribe")
        serve.call("aegis_spawn", handle="builder", prompt="\n".join([
            tool("aegis_term_run", name="build", cmd="printf 'x\\n'; (exit 3)", from_handle="builder"),
            tool("aegis_term_run", name="build", cmd="printf 'y\\n'", from_handle="builder"),
            tool("aegis_term_run", name="build", cmd="sleep 5", timeout_s=1, from_handle="builder")]))
        wait_for(lambda: "still running" in json.dumps(serve.call("aegis_read_peer", handle="builder")),
                 "the timed-out run in the builder's transcript")
        transcript = json.dumps(serve.call("aegis_read_peer", handle="builder"))
        assert "still running" in transcript and "ctrl-c" in transcript
        assert terminal(serve)["running"]["cmd"] == "sleep 5"
        serve.call("aegis_handoff", target_handle="builder", context=tool("aegis_term_keys", name="build",
                                                                         keys="ctrl-c"))
        envs = wait_for(lambda: len(envelopes(project, "pm")) == 3 and envelopes(project, "pm"), "pm's 3 wake-ups")
        heads = [HEAD_RE.match(e["body"]).groupdict() for e in envs]
        assert heads == [{"cmd": "printf 'x\\n'; (exit 3)", "who": "agent:builder", "exit": "3"},
                         {"cmd": "printf 'y\\n'", "who": "agent:builder", "exit": "0"},
                         {"cmd": "sleep 5", "who": "agent:builder", "exit": "130"}]
        assert envs[0]["body"].endswith("──\nx") and envs[1]["body"].endswith("──\ny")
        assert envelopes(project, "builder") == []  # the runner is not woken by its own commands
        screen = serve.call("aegis_term_screen", name="build")
        assert screen["text"].rstrip().endswith(("$", "#"))  # the prompt is back

        # the CLI, a thin client (recorded as run by the user, which wakes pm too)
        run = serve.cli("term", "run", "build", "echo from-cli; (exit 4)", "--json")
        assert run.returncode == 4 and json.loads(run.stdout)["who"] == "user"
        listed = json.loads(serve.cli("term", "list", "--json").stdout)["terminals"]
        assert [(t["terminal"], t["state"], t["seq"]) for t in listed] == [("build", "idle", 4)]
        read = serve.cli("term", "read", "build", "-n", "2")
        assert "from-cli" in read.stdout and "exit 4" in read.stdout
        assert serve.cli("term", "screen", "build").stdout.rstrip().endswith(("$", "#"))
        wait_for(lambda: len(envelopes(project, "pm")) == 4, "pm's wake-up for the user's command")
        assert serve.cli("term", "keys", "build", "ctrl-c").stdout.startswith("sent 1 bytes to term:build")
        closed = serve.cli("term", "close", "build")
        assert closed.returncode == 0 and closed.stdout.strip() == "term:build closed"
        assert shells_with_term("build") == []
        again = serve.cli("term", "spawn", "build")
        assert again.returncode == 0 and again.stdout.startswith("term:build started")
        assert json.loads(serve.cli("term", "run", "build", "echo again", "--json").stdout)["seq"] == 5
        assert shells_with_term("build")
    finally:
        serve.stop()
    assert shells_with_term("build") == []  # stopping serve closed the shell
