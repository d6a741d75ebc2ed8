"""End to end under a real ``aegis serve`` with scripted agents: a ``fire_at`` two seconds ahead running
``prompt`` fires once and the agent receives it; kill -9 and a restart do not fire it again; a fire in
flight at kill -9 is closed ``failed:interrupted``; an overlay dropped in while serve runs is listed
within two seconds; ``aegis schedule disable`` keeps the YAML's comments byte for byte; an agent
schedules a prompt for itself through ``aegis_schedule_add`` and receives it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aegis_testkit.serve import ServeProcess, wait_for

pytestmark = pytest.mark.e2e

CONFIG = """\
# the e2e project
default_agent: helper
agents:
  helper:
    provider: scripted
"""


class Serve(ServeProcess):
    """:class:`aegis_testkit.serve.ServeProcess` whose ``kill9`` kills the serve's process group."""

    def kill9(self, *, group: bool = True) -> None:
        super().kill9(group=group)


def wait(predicate: Any, what: str, timeout: float = 60) -> Any:
    """Poll until ``predicate()`` is truthy (observing real processes); fail after ``timeout`` s."""
    return wait_for(predicate, what, timeout=timeout)


def received(project: Path, handle: str, body: str) -> list[dict[str, Any]]:
    """The envelopes whose body is ``body`` ever queued for ``handle`` (its inbox ledger)."""
    path = project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl"
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["envelope"] for r in recs if r.get("op") == "queued" and r["envelope"].get("body", "").strip() == body]


def journal(project: Path, name: str) -> list[dict[str, Any]]:
    path = project / ".aegis" / "state" / "schedules" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def soon(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    return project


@pytest.fixture
def serve(project):
    server = Serve(project)
    yield server
    server.stop()


def test_fire_at_fires_once_across_kill9_and_a_dangling_fire_is_interrupted(project, serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "boss", "--prompt", "hello")
    serve.cli("schedule", "add", "ping", "--workflow", "prompt", "--fire-at", soon(2),
              "--arg", "agent=boss", "--arg", "message=scheduled hello")
    envelope = wait(lambda: received(project, "boss", "scheduled hello"), "the scheduled prompt", timeout=30)[0]
    assert envelope["sender"].split(":")[0] in ("schedule", "workflow")  # see test_the_sender_names_the_schedule
    wait(lambda: serve.json("schedule", "show", "ping")["last_status"] == "ok", "the fire completes")
    # a fire in flight when the serve dies: the agent sleeps on it
    serve.cli("schedule", "add", "nap", "--workflow", "prompt", "--every", "1d",
              "--arg", "agent=boss", "--arg", "message=@sleep 120")
    serve.cli("schedule", "run", "nap")
    wait(lambda: serve.json("schedule", "show", "nap")["in_flight"] == 1, "the nap fire in flight")
    serve.kill9()
    assert journal(project, "nap")[-1]["event"] == "fire_requested"

    serve.start()
    ping = serve.json("schedule", "show", "ping")
    assert ping["fires"] == 1 and ping["next_fire"] is None and ping["last_status"] == "ok"
    nap = serve.json("schedule", "show", "nap")
    assert nap["last_status"] == "failed:interrupted"
    last = journal(project, "nap")[-1]
    assert last["event"] == "fire_failed" and last["status"] == "failed:interrupted"
    assert len(received(project, "boss", "scheduled hello")) == 1
    assert [r["event"] for r in journal(project, "ping")] == ["created", "fire_requested", "fire_completed"]


def test_an_overlay_appears_live_and_disable_keeps_comments(project, serve):
    text = CONFIG + """\
schedules:
  # the morning report
  morning:   # keep this comment
    workflow: prompt      # the seed workflow
    cron: "0 6 * * *"     # six o'clock
    timezone: Europe/Berlin
    args: {agent: helper, message: "Write today's briefing."}
"""
    (project / ".aegis.yaml").write_text(text)
    serve.start()
    overlay = project / ".aegis" / "schedules" / "dropped.yaml"
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.write_text("workflow: prompt\nevery: 2h\nargs: {agent: helper, message: hi}\n")
    # picked up live (the watcher's debounce is at most 1.6 s); the test waits for it, never times it
    wait(lambda: "dropped" in [s["name"] for s in serve.json("schedule", "list")["schedules"]],
         "the overlay in the list", timeout=30)
    out = serve.json("schedule", "disable", "morning")
    assert out["changed"] is True
    assert (project / ".aegis.yaml").read_text() == text + "    enabled: false\n"
    row = wait(lambda: next((s for s in serve.json("schedule", "list")["schedules"]
                             if s["name"] == "morning" and not s["enabled"]), None), "morning disabled")
    assert row["next_fire"] is None


def test_an_agent_schedules_a_prompt_for_itself_and_receives_it(project, serve):
    serve.start()
    args = {"name": "remind-me", "workflow": "prompt", "fire_at": soon(3),
            "args": {"agent": "boss", "message": "reminder: check the build"}}
    serve.cli("spawn", "helper", "--handle", "boss", "--prompt", f"@call aegis_schedule_add {json.dumps(args)}")
    wait(lambda: received(project, "boss", "reminder: check the build"), "the reminder", timeout=60)
    overlay = (project / ".aegis" / "schedules" / "remind-me.yaml").read_text()
    assert "added_by: agent:boss" in overlay


def test_the_sender_names_the_schedule(project, serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "boss", "--prompt", "hello")
    serve.cli("schedule", "add", "ping", "--workflow", "prompt", "--fire-at", soon(2),
              "--arg", "agent=boss", "--arg", "message=scheduled hello")
    envelope = wait(lambda: received(project, "boss", "scheduled hello"), "the scheduled prompt", timeout=30)[0]
    assert envelope["sender"] == "schedule:ping"
