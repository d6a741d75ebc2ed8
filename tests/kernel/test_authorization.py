"""Authorization is declared per operation and enforced once, in the registry, for every principal.

Every operation installed in this environment is called as an agent and as the user: a principal the
operation does not declare gets a structured ``forbidden`` error naming the operation and the
principal, and the handler never runs; a declared one is never refused by the registry.
"""

from __future__ import annotations

import pytest
import trio

from aegis_kernel import hookimpl

from aegis_kernel.operations import (
    PRINCIPAL_KINDS, Caller, Operation, OperationError, OperationRegistry, params,
)
from aegis_kernel.testing import DriverPlugin, FakeDriver

CONFIG = """\
default_agent: fake
agents:
  fake:
    provider: fake
"""

#: what only a person may do: agents never reach these
USER_ONLY = {"aegis_stop", "aegis_approve", "aegis_deny", "aegis_rename", "aegis_resume"}


def dummy(schema):
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "nobody-here", "integer": schema.get("minimum", 1), "number": schema.get("minimum", 1),
            "boolean": False, "object": {}, "array": []}.get(kind, "x")


def required_args(op):
    return {name: dummy(op.properties[name]) for name in op.params.get("required", ())}


@pytest.fixture
def fake(write_config, register_plugin):
    write_config(CONFIG)
    return register_plugin(DriverPlugin(FakeDriver())).drivers[0]


@pytest.mark.trio
async def test_every_operation_declares_who_may_call_it_and_the_registry_enforces_it(fake, kernel):
    stops = []
    kernel.stop_handler = lambda: stops.append(1)
    agent = Caller("rogue-agent", via="mcp")
    ops = list(kernel.operations)
    assert {op.name for op in ops} >= USER_ONLY | {"aegis_handoff", "aegis_send", "aegis_sessions"}
    for op in ops:
        assert op.callers and op.callers <= set(PRINCIPAL_KINDS), op.name
        if op.name in USER_ONLY:
            assert "agent" not in op.callers, f"{op.name} must not be reachable by agents"
        for caller in (agent, Caller(via="socket")):
            try:
                await kernel.operations.call(kernel, op.name, required_args(op), caller)
            except OperationError as err:
                if caller.kind in op.callers:
                    # an agent with no session cannot be asked for an approval (aegis_config_add_plugin_dir)
                    asked = op.approval is not None and "needs the user's approval" in err.message
                    assert err.code != "forbidden" or "from_handle" == err.param or asked, (op.name, err.message)
                else:
                    assert err.code == "forbidden", (op.name, caller.tag, err.to_dict())
                    assert op.name in err.message and caller.tag in err.message
                    assert err.to_dict()["operation"] == op.name and err.to_dict()["principal"] == caller.tag
                continue
            assert caller.kind in op.callers, f"{op.name} ran for {caller.tag}, which it does not declare"
    assert stops == [1]  # aegis_stop ran for the user only


@pytest.mark.trio
async def test_an_agent_closes_only_what_it_spawned_and_the_refusal_names_it(fake, kernel):
    spawned = await kernel.operations.call(kernel, "aegis_spawn", {"agent": "fake", "prompt": "hi"},
                                           Caller("boss", via="mcp"))
    with pytest.raises(OperationError) as info:
        await kernel.operations.call(kernel, "aegis_close", {"handle": spawned["handle"]},
                                     Caller("intruder", via="mcp"))
    assert info.value.code == "forbidden"
    assert "aegis_close" in info.value.message and "agent:intruder" in info.value.message
    assert "spawned by 'boss'" in info.value.message
    assert kernel.sessions.get(spawned["handle"]) is not None
    closed = await kernel.operations.call(kernel, "aegis_close", {"handle": spawned["handle"]},
                                          Caller("boss", via="mcp"))
    assert closed["closed"]


@pytest.mark.trio
async def test_peers_and_chats_reach_only_what_an_operation_opens_to_them():
    ran = []

    async def handler(ctx):
        ran.append(ctx.caller.tag)
        return "ok"

    registry = OperationRegistry()
    registry.add(Operation("aegis_mine", handler, "user only", params(), callers=("user",)))
    registry.add(Operation("aegis_shared", handler, "opened to peers", params(), callers=("user", "peer")))
    peer, chat = Caller.peer("laptop"), Caller.telegram(42)
    assert await registry.call(None, "aegis_shared", {}, peer) == "ok"
    for name, caller in (("aegis_mine", peer), ("aegis_shared", chat), ("aegis_mine", chat)):
        with pytest.raises(OperationError) as info:
            await registry.call(None, name, {}, caller)
        assert info.value.code == "forbidden" and caller.tag in info.value.message
    assert ran == ["peer:laptop"]
    assert [op.name for op in registry.visible_to(peer)] == ["aegis_shared"]


def test_principals_are_well_formed():
    assert Caller().tag == "user" and Caller("h", via="mcp").tag == "agent:h"
    assert Caller.peer("box").tag == "peer:box" and Caller.telegram(7).tag == "telegram:7"
    with pytest.raises(ValueError):
        Caller(None, kind="agent")
    with pytest.raises(ValueError):
        Caller("h", kind="user")
    with pytest.raises(ValueError):
        Operation("aegis_x", "m:f", "x", callers=("root",))


class Guarded:
    """A plugin whose operation needs the user's approval when an agent calls it."""

    ran: list[str] = []

    @hookimpl
    def aegis_register_operations(self, register):
        async def risky(ctx, target):
            Guarded.ran.append(f"{ctx.caller.tag}:{target}")
            return {"done": target}

        def ask(ctx, args):
            return None if args["target"] == "harmless" else f"let {ctx.caller.tag} touch {args['target']}?"

        register("aegis_risky", risky, "needs approval", params(("target",), target={"type": "string"}),
                 callers=("user", "agent", "peer"), approval=ask)


@pytest.fixture
def guarded(fake, register_plugin):
    Guarded.ran = []
    register_plugin(Guarded())


@pytest.mark.trio
async def test_an_operation_that_needs_approval_holds_the_agent_until_a_person_answers(guarded, kernel):
    agent = await kernel.sessions.spawn("fake", handle="asker")
    await agent.wait_for(lambda s: s.state == "ready")
    results = []

    async def agent_calls(target):
        try:
            results.append(await kernel.operations.call(kernel, "aegis_risky", {"target": target},
                                                        Caller("asker", via="mcp")))
        except OperationError as err:
            results.append(err)

    assert await kernel.operations.call(kernel, "aegis_risky", {"target": "harmless"},
                                        Caller("asker", via="mcp")) == {"done": "harmless"}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(agent_calls, "prod")
        await agent.wait_for(lambda s: s.state == "input-required")
        assert agent.pending_permission.tool_name == "aegis_risky"
        assert "let agent:asker touch prod?" in agent.pending_permission.summary
        assert Guarded.ran == ["agent:asker:harmless"]  # held: nothing ran yet
        await kernel.operations.call(kernel, "aegis_approve", {"handle": "asker"}, Caller(via="socket"))
    assert results == [{"done": "prod"}] and agent.state != "input-required"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(agent_calls, "db")
        await agent.wait_for(lambda s: s.state == "input-required")
        await kernel.operations.call(kernel, "aegis_deny", {"handle": "asker"}, Caller(via="socket"))
    assert results[-1].code == "forbidden" and "the user denied it" in results[-1].message
    # the user needs no approval; a peer cannot be asked
    assert await kernel.operations.call(kernel, "aegis_risky", {"target": "x"}, Caller()) == {"done": "x"}
    with pytest.raises(OperationError, match="needs the user's approval"):
        await kernel.operations.call(kernel, "aegis_risky", {"target": "y"}, Caller.peer("box"))
    assert Guarded.ran == ["agent:asker:harmless", "agent:asker:prod", "user:x"]
