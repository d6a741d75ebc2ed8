"""Registering workflows: a distribution's hook, project files (a broken file reported, the others
loaded, a reused name refused naming both places, edits picked up), the seeds; operations and errors."""

from __future__ import annotations

import os

import pytest
from wkit import finished, runtime

from aegis_kernel import Caller, Envelope, EnvelopeReceived, OperationError

GOOD = '''\
from aegis_workflow import workflow


@workflow("mine")
async def mine(engine, who="you"):
    """Say hello."""
    await engine.log(f"hello {who}")
    return f"hello {who}"
'''
DUPLICATE = '''\
from aegis_workflow import workflow


@workflow("steps")
async def steps(engine):
    return "mine"
'''
GROUPS = '''\
from aegis_workflow import workflow


@workflow("committee")
async def committee(engine):
    return await engine.spawn_group("c", ["helper"])
'''


async def _call(kernel, operation, caller=None, /, **args):
    return await kernel.operations.call(kernel, operation, args, caller or Caller())


@pytest.mark.trio
async def test_seeds_plugin_workflows_and_project_files(flows, write_config, make_kernel):
    write_config(GOOD, ".aegis/workflows/good.py")
    write_config(DUPLICATE, ".aegis/workflows/dup.py")
    write_config("raise RuntimeError('boom at import')\n", ".aegis/workflows/broken.py")
    async with make_kernel() as kernel:
        out = await _call(kernel, "aegis_workflow_list")
        names = {w["name"]: w for w in out["workflows"]}
        assert {"brainstorm_to_spec", "execute_plan", "review_branch", "tdd_cycle", "prompt", "enqueue"} <= set(names)
        assert names["mine"]["source"] == ".aegis/workflows/good.py"
        assert names["mine"]["description"] == "Say hello."
        assert names["steps"]["source"].startswith("plugin ")  # the plugin keeps its name
        problems = "\n".join(out["problems"])
        assert ".aegis/workflows/broken.py:1: cannot load workflows: RuntimeError: boom at import" in problems
        assert (".aegis/workflows/dup.py: workflow 'steps' is already registered by plugin "
                in problems)
        started = await _call(kernel, "aegis_run_workflow", name="mine", kwargs={"who": "there"})
        run = runtime(kernel).get(started["run_id"])
        await finished(run)
        assert run.result == "hello there"


@pytest.mark.trio
async def test_an_edited_file_is_reloaded(flows, write_config, kernel, aegis_project):
    path = write_config(GOOD, ".aegis/workflows/good.py")
    assert "mine" in runtime(kernel).catalog.all()
    path.write_text(GOOD.replace('"mine"', '"renamed"'))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    names = runtime(kernel).catalog.all()
    assert "renamed" in names and "mine" not in names


@pytest.mark.trio
async def test_unknown_workflow_and_bad_arguments_are_refused(flows, kernel):
    with pytest.raises(OperationError, match="unknown workflow 'nope'"):
        await _call(kernel, "aegis_run_workflow", name="nope")
    with pytest.raises(OperationError, match="bad arguments"):
        await _call(kernel, "aegis_run_workflow", name="steps", kwargs={"wrong": 1})


@pytest.mark.trio
async def test_group_verbs_without_aegis_groups_say_so(flows, write_config, make_kernel, aegis_project):
    config = (aegis_project / ".aegis.yaml").read_text()
    write_config(config + "plugins:\n  disabled: [groups]\n")
    write_config(GROUPS, ".aegis/workflows/groups.py")
    async with make_kernel() as kernel:
        run = runtime(kernel).start_run("committee")
        await finished(run)
    assert run.status == "error"
    assert "engine.spawn_group needs the aegis-groups plugin" in run.error


@pytest.mark.trio
async def test_the_caller_is_called_back_once_with_the_result(flows, kernel):
    caller = await kernel.sessions.spawn("helper", handle="producer")
    started = await _call(kernel, "aegis_run_workflow", Caller("producer", via="mcp"), name="steps",
                          kwargs={"n": 2})
    run = runtime(kernel).get(started["run_id"])
    await finished(run)
    sender = f"workflow:steps · run#{run.id}"

    def envelopes(session):
        return [e for e in session.history if isinstance(e, EnvelopeReceived) and e.sender == sender]

    await caller.wait_for(lambda s: envelopes(s), timeout=60)
    got = envelopes(caller)
    assert len(got) == 1 and got[0].status == "ok" and got[0].body == "[\n  0,\n  1\n]"
    assert Envelope.new(sender, "", status="ok").header().startswith(f"✉ from workflow:steps · run#{run.id} · ok")


@pytest.mark.trio
async def test_cancel_ends_the_run_and_closes_its_agents(flows, kernel, aegis_project):
    from wkit import until

    rt = runtime(kernel)
    run = rt.start_run("two_sends", {"path": str(aegis_project / "x.txt")})
    await until(lambda: run.question, "the question")
    handles = [h for h, s in kernel.sessions.sessions.items() if not s.restorable]
    out = await _call(kernel, "aegis_workflow_cancel", run_id=run.id)
    assert out["cancelled"] and out["status"] == "cancelled"
    assert all(kernel.sessions.get(h) is None or kernel.sessions.get(h).state == "closed" for h in handles)


PREDICATE = '''\
from aegis_workflow import PredicateFailed, workflow


@workflow("stubborn")
async def stubborn(engine):
    h = await engine.spawn("helper")
    await engine.send(h, "@reply ready")
    try:
        await engine.bash_predicate("echo nope; exit 4", retry_with=lambda r: f"@reply retrying after {r['exit']}",
                                    max_retries=2)
    except PredicateFailed as exc:
        return f"{exc} / last exit {exc.result['exit']}"
'''


@pytest.mark.trio
async def test_bash_predicate_gives_up_after_its_retries(flows, write_config, kernel, aegis_project):
    from wkit import journal

    write_config(PREDICATE, ".aegis/workflows/stubborn.py")
    run = runtime(kernel).start_run("stubborn")
    await finished(run)
    assert run.status == "ok", run.error
    assert run.result == "predicate 'echo nope; exit 4' still failed after 2 retries (exit 4) / last exit 4"
    sends = [(r["desc"], r["result"]) for r in journal(aegis_project, run.id) if r.get("verb") == "send"]
    assert [text for _, text in sends[1:]] == ["retrying after 4", "retrying after 4"]  # to the last agent


@pytest.mark.trio
async def test_a_name_two_distributions_register_is_refused_naming_both(flows, register_plugin, make_kernel):
    from wkit import Flows

    register_plugin(Flows(), "second-flows")
    async with make_kernel() as kernel:
        info = kernel.plugins.infos["second-flows"]
        assert info.status == "failed"
        assert "workflow 'two_sends' is already registered by plugin 'test-0-flows'" in info.error
        assert "refused for plugin 'second-flows'" in info.error
        assert runtime(kernel).catalog.get("two_sends").source == "plugin test-0-flows"
