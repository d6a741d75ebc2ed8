"""The config operations in a running kernel: live, attributed, and agents' edits under the policy."""

from __future__ import annotations

import json

import pytest
import trio

from aegis_kernel import OperationError
from aegis_kernel.cli import build_parser
from aegis_kernel.operations import Caller
from aegis_kernel.testing import DriverPlugin, FakeDriver

CONFIG = """\
default_agent: fake
agents:
  fake:
    provider: fake
    env: {API_KEY: s3cret}
"""
USER = Caller()


@pytest.fixture
def project(write_config, register_plugin):
    register_plugin(DriverPlugin(FakeDriver()))
    return write_config(CONFIG).parent


async def call(kernel, operation, caller=USER, /, **args):
    return await kernel.operations.call(kernel, operation, args, caller)


async def agent(kernel) -> Caller:
    session = await kernel.sessions.spawn("fake", prompt="hi")
    await session.wait_for(lambda s: s.metrics.turns == 1)
    return Caller(session.handle, via="mcp")


def ledger(project) -> list[tuple[str, str, str]]:
    lines = (project / ".aegis" / "state" / "config_edits.jsonl").read_text().splitlines()
    return [(r["who"], r["op"], r["key"]) for r in map(json.loads, lines)]


@pytest.mark.trio
async def test_a_queue_added_by_an_edit_takes_a_task_at_once(project, kernel):
    await call(kernel, "aegis_config_add_queue", name="fresh", agent="fake", max_parallel=2)
    assert kernel.config.get("queues")["fresh"].max_parallel == 2  # applied in-process, not at the next reload
    task = await call(kernel, "aegis_enqueue", queue="fresh", payload="work", callback=False)
    with trio.fail_after(30):
        while (await call(kernel, "aegis_task_status", task_id=task["task_id"]))["status"] != "completed":
            await trio.sleep(0.02)
    await call(kernel, "aegis_config_remove_queue", name="fresh")
    with pytest.raises(OperationError, match="queue 'fresh' was removed from the config"):
        await call(kernel, "aegis_enqueue", queue="fresh", payload="more", callback=False)
    assert ledger(project) == [("user", "add_queue", "queues.fresh"), ("user", "remove_queue", "queues.fresh")]


@pytest.mark.trio
async def test_an_agent_adds_a_profile_by_default_and_it_is_spawnable_at_once(project, kernel):
    boss = await agent(kernel)
    out = await call(kernel, "aegis_config_add_agent", boss, name="critic", provider="fake", permission="read")
    assert out["changed"] and out["after"] == {"provider": "fake", "permission": "read"}
    session = await kernel.sessions.spawn("critic", prompt="review")
    await session.wait_for(lambda s: s.metrics.turns == 1)
    assert ledger(project) == [(boss.tag, "add_agent", "agents.critic")]


@pytest.mark.trio
async def test_an_agent_cannot_give_a_new_profile_more_power_than_its_own_without_a_person(project, kernel):
    boss = await agent(kernel)  # permission: write (the default)
    session = kernel.sessions.get(boss.handle)
    results: list[object] = []

    async def add(**fields) -> None:
        try:
            results.append(await call(kernel, "aegis_config_add_agent", boss, provider="fake", **fields))
        except OperationError as exc:
            results.append(exc)

    for fields in ({"name": "root", "permission": "full"}, {"name": "shell", "command": ["/bin/sh", "-c", "id"]}):
        async with trio.open_nursery() as nursery:  # policy 'allow', yet a person is asked
            nursery.start_soon(lambda: add(**fields))
            await session.wait_for(lambda s: s.state == "input-required")
            assert fields["name"] not in (project / ".aegis.yaml").read_text()
            assert "runs with that power" in session.pending_permission.summary
            await call(kernel, "aegis_deny", handle=boss.handle)
        assert isinstance(results[-1], OperationError) and results[-1].code == "forbidden"
    assert "root" not in kernel.config.get("agents") and "shell" not in kernel.config.get("agents")
    await add(name="peer", permission="write")  # no more than its own: no one is asked
    assert results[-1]["changed"] and session.state != "input-required"


@pytest.mark.trio
async def test_a_plugin_folder_waits_for_a_person_and_a_denial_is_forbidden(project, kernel):
    boss = await agent(kernel)
    session = kernel.sessions.get(boss.handle)
    results: list[object] = []

    async def ask() -> None:
        try:
            results.append(await call(kernel, "aegis_config_add_plugin_dir", boss, path="plug"))
        except OperationError as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await session.wait_for(lambda s: s.state == "input-required")
        assert "plug" not in (project / ".aegis.yaml").read_text()
        assert "allow agent:" in session.pending_permission.summary
        await call(kernel, "aegis_deny", handle=boss.handle)
    assert isinstance(results[0], OperationError) and results[0].code == "forbidden"
    assert "the user denied it" in results[0].message
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await session.wait_for(lambda s: s.state == "input-required")
        await call(kernel, "aegis_approve", handle=boss.handle)
    assert results[1]["after"] == ["plug"] and kernel.config.get("plugins").dirs == ("plug",)


@pytest.mark.trio
async def test_a_per_kind_deny_policy_refuses_clearly_and_people_are_not_asked(project, kernel, write_config):
    await call(kernel, "aegis_config_set", path="config_edits", value={"agents": "deny"})
    boss = await agent(kernel)
    with pytest.raises(OperationError, match="config edits of agents by agents are denied by 'config_edits'"):
        await call(kernel, "aegis_config_add_agent", boss, name="x", provider="fake")
    await call(kernel, "aegis_config_add_queue", boss, name="q", agent="fake")  # queues: still allowed
    await call(kernel, "aegis_config_add_plugin_dir", USER, path="plug")  # the user's own edit: no question
    assert kernel.config.get("plugins").dirs == ("plug",) and "x" not in kernel.config.get("agents")


@pytest.mark.trio
async def test_reads_redact_secrets_for_agents_and_people_only_verbs_stay_theirs(project, kernel):
    boss = await agent(kernel)
    mine = await call(kernel, "aegis_config_get", path="agents.fake")
    theirs = await call(kernel, "aegis_config_get", boss, path="agents.fake")
    assert mine["value"]["env"] == {"API_KEY": "s3cret"} and "s3cret" not in json.dumps(theirs)
    got: list[dict] = []

    async def add_keyed() -> None:
        got.append(await call(kernel, "aegis_config_add_agent", boss, name="keyed", provider="fake",
                              env={"TOKEN": "t0ken"}))

    async with trio.open_nursery() as nursery:  # a profile's own env runs code as the user: a person is asked
        nursery.start_soon(add_keyed)
        session = kernel.sessions.get(boss.handle)
        await session.wait_for(lambda s: s.state == "input-required")
        await call(kernel, "aegis_approve", handle=boss.handle)
    added = got[0]
    await call(kernel, "aegis_config_set", path="agents.keyed.env.OTHER", value="0ther")
    removed = await call(kernel, "aegis_config_remove_agent", boss, name="keyed")
    assert "t0ken" not in json.dumps([added, removed]) and added["after"]["env"] == {"TOKEN": "«redacted»"}
    ledger_text = (project / ".aegis" / "state" / "config_edits.jsonl").read_text()
    assert "t0ken" not in ledger_text and "0ther" not in ledger_text and "keyed" in ledger_text
    for name, args in (("aegis_config_set", {"path": "default_agent", "value": "fake"}),
                       ("aegis_config_unset", {"path": "default_agent"})):
        with pytest.raises(OperationError, match="not allowed for agent:"):
            await call(kernel, name, boss, **args)
    from importlib.util import find_spec  # where aegis-scheduler is installed, it owns the section

    refusal = "unknown schedule 'nightly'" if find_spec("aegis_scheduler") else "schedules are not available"
    with pytest.raises(OperationError, match=refusal):
        await call(kernel, "aegis_config_set_schedule_enabled", boss, name="nightly", enabled=False)
    with pytest.raises(OperationError, match="unknown queue 'nope'"):
        await call(kernel, "aegis_config_remove_queue", boss, name="nope")


def test_a_plugin_mounts_its_section_verbs_under_aegis_config():
    ran: list[object] = []
    verbs = {"config-telegram": {"help": "the telegram section", "run": ran.append,
                                 "setup": lambda p: p.add_argument("--token-env")}}
    parser = build_parser(verbs)
    args = parser.parse_args(["config", "telegram", "--token-env", "TG_TOKEN"])
    assert (args.command, args.sub, args.token_env) == ("config", "telegram", "TG_TOKEN")
    with pytest.raises(SystemExit):
        parser.parse_args(["config-telegram"])  # not a top-level verb

    class Host:
        class registry:
            @staticmethod
            def objects(kind):
                return verbs

    from aegis_kernel.config_cli import run

    assert run(args, Host()) == 0 and ran == [args]


@pytest.mark.trio
async def test_a_set_expecting_what_was_shown_is_refused_after_a_hand_edit(project, kernel):
    path = project / ".aegis.yaml"
    shown = (await call(kernel, "aegis_config_get", path="default_agent"))["value"]
    path.write_text(path.read_text() + "  other:\n    provider: fake\n")
    path.write_text(path.read_text().replace("default_agent: fake", "default_agent: other"))  # by hand
    with pytest.raises(OperationError, match="changed meanwhile: expected 'fake', found 'other'") as info:
        await call(kernel, "aegis_config_set", path="default_agent", value="fake", expect=shown)
    assert info.value.code == "conflict" and "default_agent: other" in path.read_text()
    out = await call(kernel, "aegis_config_set", path="agents.other.model", value="m", expect=None)
    assert out["changed"] and "model: m" in path.read_text()  # expected absent, was absent

