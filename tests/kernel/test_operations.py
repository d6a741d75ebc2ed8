"""Operation arguments are validated strictly, with errors naming the parameter."""

import pytest

from aegis_kernel.operations import Caller, OperationError, OperationRegistry, Operation, params, validate_arguments

SCHEMA = params(("target", "count"), target={"type": "string", "minLength": 1},
                count={"type": "integer", "minimum": 1}, loud={"type": "boolean", "default": False},
                tags={"type": "array", "items": {"type": "string"}})


@pytest.mark.parametrize("args,param,fragment", [
    ({"count": 1}, "target", "missing required argument 'target'"),
    ({"target": "x", "count": "3"}, "count", "must be integer, got string"),
    ({"target": "x", "count": 2.5}, "count", "must be integer, got number"),
    ({"target": "x", "count": 1.0, "tags": [3]}, "tags[0]", "must be string"),
    ({"target": "x", "count": True}, "count", "must be integer, got boolean"),
    ({"target": "x", "count": 0}, "count", "must be ≥ 1"),
    ({"target": "", "count": 1}, "target", "must not be empty"),
    ({"target": "x", "count": 1, "loud": "yes"}, "loud", "must be boolean"),
    ({"target": "x", "count": 1, "tags": ["a", 2]}, "tags[1]", "must be string"),
    ({"target": "x", "count": 1, "extra": 1}, "extra", "unknown argument 'extra'"),
])
def test_bad_arguments_name_the_parameter(args, param, fragment):
    with pytest.raises(OperationError) as info:
        validate_arguments(SCHEMA, args)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.to_dict()["code"] == "bad_argument"


def test_defaults_are_filled():
    assert validate_arguments(SCHEMA, {"target": "x", "count": 2}) == {"target": "x", "count": 2, "loud": False}


@pytest.mark.trio
async def test_from_handle_must_be_the_caller():
    seen = []

    async def handler(ctx, from_handle, text):
        seen.append(from_handle)
        return "ok"

    registry = OperationRegistry()
    registry.add(Operation("aegis_say", handler, "say", params(("text",), text={"type": "string"},
                                                                from_handle={"type": "string"})))
    me = Caller("brisk-curie", via="mcp")
    assert await registry.call(None, "aegis_say", {"text": "hi"}, me) == "ok"
    assert await registry.call(None, "aegis_say", {"text": "hi", "from_handle": "brisk-curie"}, me) == "ok"
    with pytest.raises(OperationError) as info:
        await registry.call(None, "aegis_say", {"text": "hi", "from_handle": "wry-hopper"}, me)
    assert info.value.code == "forbidden" and info.value.param == "from_handle"
    assert seen == ["brisk-curie", "brisk-curie"]


@pytest.mark.trio
async def test_a_peer_cannot_act_as_an_agent_through_from_handle():
    seen = []

    async def handler(ctx, text, from_handle=None):
        seen.append((ctx.caller.tag, from_handle))
        return "ok"

    registry = OperationRegistry()
    registry.add(Operation("aegis_say", handler, "say", params(("text",), text={"type": "string"},
                                                                from_handle={"type": "string"}),
                           callers=("user", "agent", "peer", "telegram")))
    with pytest.raises(OperationError) as info:
        await registry.call(None, "aegis_say", {"text": "hi", "from_handle": "wry-hopper"}, Caller.peer("laptop"))
    assert info.value.code == "forbidden" and info.value.param == "from_handle"
    assert "peer:laptop" in info.value.message
    assert await registry.call(None, "aegis_say", {"text": "hi"}, Caller.peer("laptop")) == "ok"
    # the person (the control socket, their Telegram chat) may still name an agent, as before
    assert await registry.call(None, "aegis_say", {"text": "hi", "from_handle": "wry-hopper"}, Caller()) == "ok"
    assert await registry.call(None, "aegis_say", {"text": "hi", "from_handle": "wry-hopper"},
                               Caller.telegram(42)) == "ok"
    assert seen == [("peer:laptop", None), ("user", "wry-hopper"), ("telegram:42", "wry-hopper")]


@pytest.mark.trio
async def test_unknown_operation():
    with pytest.raises(OperationError, match="unknown operation 'aegis_nope'"):
        await OperationRegistry().call(None, "aegis_nope", {}, Caller())
