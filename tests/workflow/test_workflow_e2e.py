"""End to end under a real ``aegis serve`` with scripted agents: a scripted agent starts a workflow
through the MCP plane with a callback; kill -9 of the serve during the run's durable sleep; a restart
finishes the run without redoing its steps (the agent reopened, not re-spawned); exactly one callback.
Then ``ask_human`` answered from the CLI after a restart, and ``aegis workflow run prompt``."""

from __future__ import annotations

import json
import textwrap

import pytest
from wserve import Serve, inbox, records, runs_dir, wait

pytestmark = pytest.mark.e2e

CONFIG = """\
default_agent: producer
agents:
  producer:
    provider: scripted
  helper:
    provider: scripted
"""

FLOWS = '''\
from aegis_workflow import workflow


@workflow("durable")
async def durable(engine, path, nap=3):
    h = await engine.spawn("helper")
    a = await engine.send(h, "@reply one")
    b = await engine.send(h, "@reply two")
    await engine.bash(f"echo line >> {path}")
    await engine.sleep(nap)
    return f"{a} {b}"


@workflow("asker")
async def asker(engine):
    answer = await engine.ask_human("ship it?", options=["yes", "no"])
    return f"answer: {answer}"
'''


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "proj"
    (project / ".aegis" / "workflows").mkdir(parents=True)
    (project / ".aegis.yaml").write_text(CONFIG)
    (project / ".aegis" / "workflows" / "flows.py").write_text(FLOWS)
    return project


@pytest.fixture
def serve(project):
    server = Serve(project)
    yield server
    server.stop()


def _run_ids(project):
    folder = runs_dir(project)
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def test_kill9_during_sleep_then_restart_finishes_once(project, serve):
    target = project / "lines.txt"
    serve.start()
    call = json.dumps({"name": "durable", "kwargs": {"path": str(target), "nap": 3}})
    serve.cli("spawn", "producer", "--handle", "producer", "--prompt", f"@call aegis_run_workflow {call}")
    run_id = wait(lambda: (_run_ids(project) or [None])[0], "the run's journal")
    wait(lambda: any(r.get("event") == "begin" and r.get("verb") == "sleep" for r in records(project, run_id)),
         "the run to reach its sleep")
    serve.kill9()
    assert not any(r["event"] == "finished" for r in records(project, run_id))

    serve.start()
    fin = wait(lambda: next((r for r in records(project, run_id) if r["event"] == "finished"), None),
               "the resumed run to finish")
    assert fin["status"] == "ok", fin
    assert fin["result"] == "one two"
    assert target.read_text() == "line\n"  # the bash step ran once
    recs = records(project, run_id)
    assert [r["verb"] for r in recs if r["event"] == "step"] == ["spawn", "send", "send", "bash", "sleep"]
    sessions = [r for r in recs if r["event"] == "session"]
    first = next(r["driver_session_id"] for r in sessions if r.get("driver_session_id"))
    resumed = [r for r in sessions if r.get("resumed")]
    assert resumed and resumed[0]["driver_session_id"] == first  # the agent's own conversation, reopened
    assert sessions[-1].get("closed") and sessions[-1]["driver_session_id"] == first
    callbacks = wait(lambda: [e for e in inbox(project, "producer") if e["sender"].startswith("workflow:durable")],
                     "the callback")
    assert len(callbacks) == 1
    env = callbacks[0]
    assert env["sender"] == f"workflow:durable · run#{run_id}" and env["status"] == "ok"
    assert env["body"] == "one two"
    assert len({e["id"] for e in inbox(project, "producer") if e["sender"].startswith("workflow:")}) == 1


def test_ask_human_answered_from_the_cli_after_a_restart(project, serve):
    serve.start()
    out = serve.cli("workflow", "run", "prompt", "--arg", 'agent="helper"', "--arg", 'message="hi"')
    assert out.stdout.strip() == "scripted reply to: hi"

    run_id = serve.json("workflow", "run", "asker", "--detach")["run_id"]
    wait(lambda: serve.json("workflow", "status", run_id)["awaiting_human"], "the question")
    serve.kill9()
    serve.start()
    status = wait(lambda: (s := serve.json("workflow", "status", run_id))["awaiting_human"] and s,
                  "the question asked again after the restart")
    assert status["awaiting_human"] == {"question": "ship it?", "options": ["yes", "no"]}
    listed = serve.cli("workflow", "status", run_id).stdout
    assert "? awaiting: ship it? [yes / no]" in listed
    serve.cli("workflow", "answer", run_id, "yes")
    done = wait(lambda: (s := serve.json("workflow", "status", run_id))["status"] != "running" and s, "the run's end")
    assert done["status"] == "ok" and done["result"] == "answer: yes"
    logs = serve.cli("workflow", "logs", run_id).stdout
    assert "ask_human 'ship it?' → yes" in logs

    other = serve.json("workflow", "run", "asker", "--detach")["run_id"]
    wait(lambda: serve.json("workflow", "status", other)["awaiting_human"], "the second question")
    assert serve.cli("workflow", "cancel", other).stdout.strip() == f"run#{other} cancelled"
    assert serve.json("workflow", "status", other)["status"] == "cancelled"
    listed = serve.json("workflow", "list")
    assert {r["run_id"]: r["status"] for r in listed["runs"]}[run_id] == "ok"
    serve.stop()
    assert "ask_human 'ship it?' → yes" in serve.cli("workflow", "logs", run_id).stdout  # read from the journal
    offline = serve.json("workflow", "status", run_id)
    assert offline["status"] == "ok" and offline["result"] == "answer: yes"


def test_workflow_run_without_a_running_aegis_uses_a_local_kernel(project):
    out = Serve(project).cli("workflow", "run", "prompt", "--arg", 'agent="helper"', "--arg", 'message="hi"')
    assert out.stdout.strip() == "scripted reply to: hi"
    bad = Serve(project).cli("workflow", "run", "prompt", "--arg", 'agent="nobody"', "--arg", 'message="hi"',
                             check=False)
    assert bad.returncode == 1
    assert "agent profile 'nobody' is not configured" in bad.stderr
