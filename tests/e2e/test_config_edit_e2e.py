"""Agents extend the substrate from inside a running ``aegis serve``: config tools, live, under policy."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def call_line(tool: str, **args) -> str:
    return f"@call {tool} {json.dumps(args)}"


def texts(serve, handle: str) -> str:
    return json.dumps(serve.events(handle))


def test_an_agent_declares_a_queue_and_enqueues_to_it_in_one_turn_and_gets_the_callback(serve):
    serve.start()
    prompt = "\n".join([call_line("aegis_config_add_queue", name="work", agent="helper"),
                        call_line("aegis_enqueue", queue="work", payload="@reply FROM\\tWORKER")])
    serve.cli("spawn", "helper", "--handle", "boss", "--prompt", prompt)
    # the worker replies "FROM<tab>WORKER" (the directive unescapes \t); only the callback carries it
    serve.wait(lambda: "FROM\\tWORKER" in texts(serve, "boss"), "the queue's callback reaches the producer",
               timeout=60)
    events = texts(serve, "boss")
    assert "tool aegis_config_add_queue" in events and "unknown queue" not in events
    config = (serve.project / ".aegis.yaml").read_text()
    assert config.endswith("queues:\n  work:\n    agent: helper\n    max_parallel: 1\n")
    ledger = [json.loads(line) for line in
              (serve.project / ".aegis" / "state" / "config_edits.jsonl").read_text().splitlines()]
    assert [(r["who"], r["op"], r["key"]) for r in ledger] == [("agent:boss", "add_queue", "queues.work")]


GREET = """\
from aegis_kernel import hookimpl, params


async def greet(ctx, who: str = "world"):
    return {"greeting": f"%s {who}"}


@hookimpl
def aegis_register_operations(register):
    register("aegis_greet", greet, "Say hello.", params(who={"type": "string"}))


@hookimpl
def aegis_register_workflows(register):
    from aegis_workflow import workflow

    @workflow("folder-hello")
    async def folder_hello(engine, *, who: str = "world"):
        return f"workflow says hello to {who}"

    register(folder_hello)
"""


def run_workflow(serve, name: str, **kwargs) -> dict:
    started = json.loads(serve.cli("call", "aegis_run_workflow", "--json",
                                   json.dumps({"name": name, "kwargs": kwargs, "callback": False})).stdout)
    return json.loads(serve.cli("call", "aegis_workflow_wait", f"run_id={started['run_id']}").stdout)


def greeting(serve) -> str | None:
    out = serve.cli("call", "aegis_greet", "who=me", check=False)
    return json.loads(out.stdout)["greeting"] if out.returncode == 0 and "greeting" in out.stdout else None


def test_adding_a_plugin_folder_waits_for_the_users_approval_then_its_operations_run_live(serve):
    (serve.project / "plug").mkdir()
    (serve.project / "plug" / "greet.py").write_text(GREET % "hello")
    serve.start()
    serve.cli("spawn", "helper", "--handle", "boss", "--prompt", call_line("aegis_config_add_plugin_dir", path="plug"))
    serve.wait(lambda: (serve.session("boss") or {}).get("state") == "input-required", "the edit is held")
    assert "plug" not in (serve.project / ".aegis.yaml").read_text() and greeting(serve) is None
    serve.cli("approve", "boss")
    serve.wait(lambda: "plugins:\n  dirs:\n    - plug\n" in (serve.project / ".aegis.yaml").read_text(),
               "the approved edit lands")
    serve.wait(lambda: "tool aegis_config_add_plugin_dir" in texts(serve, "boss"), "the agent gets the result")
    assert greeting(serve) == "hello me"  # loaded by the same serve, no restart
    done = run_workflow(serve, "folder-hello", who="you")  # a workflow defined in the folder runs
    assert done["status"] == "ok" and done["result"] == "workflow says hello to you", done
    (serve.project / "plug" / "greet.py").write_text(GREET % "hi there")
    serve.wait(lambda: greeting(serve) == "hi there me", "the changed module is reloaded")
    (serve.project / "plug" / "broken.py").write_text("x = 1\ndef broken(:\n    pass\n")
    listing = serve.cli("plugins", "list").stdout
    assert f"{serve.project / 'plug' / 'broken.py'}:2: SyntaxError" in listing
    assert [line.split()[3] for line in listing.splitlines() if line.startswith(("broken ", "greet "))] == [
        "failed", "enabled"]
    assert greeting(serve) == "hi there me"  # the rest keep working
    (serve.project / "plug" / "greet.py").unlink()
    serve.wait(lambda: "unknown operation 'aegis_greet'" in serve.cli("call", "aegis_greet", check=False).stdout,
               "a deleted module's operations go")


def test_a_deny_policy_refuses_an_agents_config_edit_clearly(serve):
    (serve.project / ".aegis.yaml").write_text(
        (serve.project / ".aegis.yaml").read_text() + "config_edits: deny\n")
    serve.start()
    before = (serve.project / ".aegis.yaml").read_text()
    serve.cli("spawn", "helper", "--handle", "boss", "--prompt",
              call_line("aegis_config_add_agent", name="extra", provider="scripted"))
    serve.wait(lambda: "denied by 'config_edits'" in texts(serve, "boss"), "the refusal reaches the agent")
    assert (serve.project / ".aegis.yaml").read_text() == before
    refused = serve.cli("spawn", "extra", check=False)
    assert refused.returncode == 1 and "unknown agent 'extra'" in refused.stderr


def test_a_removed_queue_finishes_the_task_in_flight_and_accepts_no_more(serve):
    (serve.project / ".aegis.yaml").write_text(
        (serve.project / ".aegis.yaml").read_text() + "queues:\n  work:\n    agent: helper\n")
    serve.start()
    serve.cli("queue", "enqueue", "work", "@ask execute run-it\n@reply finished after removal")
    shown = serve.wait(lambda: (q := json.loads(serve.cli("queue", "show", "work", "--json").stdout))
                       and q["in_flight_tasks"] and q, "the task is in flight")
    worker = shown["in_flight_tasks"][0]["worker"]
    serve.wait(lambda: (serve.session(worker) or {}).get("state") == "input-required", "the worker waits")
    serve.cli("config", "queue", "remove", "work")  # the running serve applies it at once
    assert (serve.project / ".aegis.yaml").read_text() == "default_agent: helper\nagents:\n  helper:\n" \
        "    provider: scripted\n"  # the last queue gone, its section too
    refused = serve.cli("queue", "enqueue", "work", "more", check=False)
    assert refused.returncode == 1 and "queue 'work' was removed from the config" in refused.stderr
    assert "work (removed)  helper  1/1" in serve.cli("queue", "list").stdout
    serve.cli("approve", worker)
    done = serve.wait(lambda: (q := json.loads(serve.cli("queue", "show", "work", "--json").stdout))
                      and q["completed"] == 1 and q, "the admitted task completes")
    assert done["removed"] is True and "finished after removal" in done["recent"][0]["result"]
