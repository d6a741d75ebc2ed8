"""The control socket: JSON-RPC 2.0 carrying operations, and it keeps serving whatever one request does."""

from __future__ import annotations

import json
import os
import socket

import pytest
import trio
import trio.testing

from aegis_kernel import hookimpl
from aegis_kernel.client import NotRunning, call, connect
from aegis_kernel.delivery import Envelope
from aegis_kernel.control import ControlError, ControlServer, connect_path, socket_path
from aegis_kernel.events import AssistantText
from aegis_kernel.rpc import RpcError
from aegis_kernel.testing import DriverPlugin, FakeDriver


class Broken:
    @hookimpl
    def aegis_register_operations(self, register):
        async def explode(ctx):
            raise RuntimeError("plugin bug")

        register("aegis_explode", explode, "always fails")

        async def explode_in_a_nursery(ctx):  # a handler with a nursery raises its child's error in a group
            async with trio.open_nursery() as nursery:
                nursery.start_soon(explode, ctx)

        register("aegis_explode_grouped", explode_in_a_nursery, "always fails inside a nursery")


@pytest.fixture
def setup(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver()))
    register_plugin(Broken())


async def client_call(state_dir, op, **params):
    return await trio.to_thread.run_sync(lambda: call(state_dir, op, params))


async def raw_exchange(state_dir, *lines: bytes, replies: int = 1) -> list[dict]:
    """Send raw lines, read ``replies`` JSON lines back."""
    def go():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(connect_path(socket_path(state_dir))))
            for line in lines:
                sock.sendall(line)
            reader = sock.makefile("rb")
            return [json.loads(reader.readline()) for _ in range(replies)]

    return await trio.to_thread.run_sync(go)


@pytest.mark.trio
async def test_a_failing_request_is_an_error_reply_not_a_dead_serve(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    with pytest.raises(ControlError, match="internal error: plugin bug") as info:
        await client_call(kernel.state.root, "aegis_explode")
    assert info.value.code == "internal"
    assert (await client_call(kernel.state.root, "aegis_ping"))["pid"]


@pytest.mark.trio
async def test_an_error_raised_from_a_handlers_nursery_is_an_error_reply_too(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    for _ in range(2):
        with pytest.raises(ControlError, match="internal error: plugin bug") as info:
            await client_call(kernel.state.root, "aegis_explode_grouped")
        assert info.value.code == "internal"
    assert (await client_call(kernel.state.root, "aegis_ping"))["pid"]  # still serving


@pytest.mark.trio
async def test_requests_are_json_rpc_and_errors_are_structured(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    root = kernel.state.root
    ok, unknown, bad, notjson, notrpc = await raw_exchange(
        root,
        b'{"jsonrpc":"2.0","id":1,"method":"aegis_ping"}\n',
        b'{"jsonrpc":"2.0","id":2,"method":"aegis_nope"}\n',
        b'{"jsonrpc":"2.0","id":"x","method":"aegis_send","params":{"handle":3,"text":"hi"}}\n',
        b'{not json\n',
        b'{"op":"ping"}\n',
        replies=5)
    assert ok["id"] == 1 and ok["result"]["pid"]
    assert unknown["id"] == 2 and unknown["error"]["code"] == -32601
    assert unknown["error"]["data"]["code"] == "unknown_operation"
    assert bad["id"] == "x" and bad["error"]["code"] == -32602 and bad["error"]["data"]["param"] == "handle"
    assert notjson["error"]["code"] == -32700 and notjson["id"] is None
    assert notrpc["error"]["code"] == -32600
    assert (await client_call(root, "aegis_ping"))["pid"]


@pytest.mark.trio
async def test_a_request_line_over_the_cap_is_refused(setup, kernel, monkeypatch):
    import aegis_kernel.control as control

    monkeypatch.setattr(control, "MAX_REQUEST_BYTES", 1000)
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    [reply] = await raw_exchange(kernel.state.root, b"x" * 5000)  # no newline ever comes
    assert reply["error"]["code"] == -32600 and "over 1000 bytes" in reply["error"]["message"]
    assert (await client_call(kernel.state.root, "aegis_ping"))["pid"]


@pytest.mark.trio
async def test_a_long_transcript_pages_whole(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    session = await kernel.sessions.spawn(handle="chatty")
    await session.wait_for(lambda s: s.state == "ready")
    session.history.extend(AssistantText(text=f"t{i}", partial=True) for i in range(25_000))

    def read_all():
        events, offset = [], 0
        with connect(kernel.state.root) as client:
            while offset is not None:
                page = client.call("aegis_transcript", {"handle": "chatty", "offset": offset, "limit": 5000})
                events += page["events"]
                offset = page["next_offset"]
        return events

    events = await trio.to_thread.run_sync(read_all)
    assert len(events) == len(session.history), events[-3:]
    assert [e.get("text") for e in events if e["t"] == "AssistantText"][-1] == "t24999"
    assert (await client_call(kernel.state.root, "aegis_ping"))["pid"]


@pytest.mark.trio
async def test_a_subscription_streams_history_then_live_events_until_the_session_closes(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    session = await kernel.sessions.spawn(handle="ada", prompt="first")
    await session.wait_idle()
    items: list[dict] = []
    subscribed = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def follow():
        with connect(kernel.state.root, timeout=None) as client:
            for item in client.stream("aegis_subscribe", {"session": "ada", "history": True, "until_closed": True}):
                items.append(item)
                if len(items) == 1:
                    token.run_sync_soon(subscribed.set)
            return client.last_result

    async with trio.open_nursery() as nursery:
        result: list = []
        nursery.start_soon(lambda: trio.to_thread.run_sync(lambda: result.append(follow())))
        await subscribed.wait()
        kernel.deliver("ada", Envelope.new("user", "second"))
        await session.wait_for(lambda s: s.metrics.turns >= 2 and s.state == "ready")
        await session.close("done")
    history = [i for i in items if i.get("history")]
    live = [i for i in items if not i.get("history")]
    assert history and all(i["topic"] == "session.event" for i in history)
    assert any(i["topic"] == "session.event" and i["data"].get("text") == "second" for i in live)
    assert live[-1]["topic"] == "session.closed"
    assert result[0]["end"] is True and result[0]["items"] == len(items)


@pytest.mark.trio
async def test_a_stream_about_an_unknown_session_is_a_refusal_and_the_serve_lives_on(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)

    def follow():
        with connect(kernel.state.root) as client:
            return list(client.stream("aegis_subscribe", {"session": "ghost", "history": True}))

    with pytest.raises(RpcError) as info:
        await trio.to_thread.run_sync(follow)
    assert info.value.code == "refused" and "ghost" in info.value.message
    assert (await client_call(kernel.state.root, "aegis_ping"))["pid"]


@pytest.mark.trio
async def test_the_socket_calls_as_the_user(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    stops = []
    kernel.stop_handler = lambda: stops.append(1)
    assert (await client_call(kernel.state.root, "aegis_stop")) == {"stopping": True}
    assert stops == [1]


@pytest.mark.trio
async def test_no_running_aegis_is_a_typed_error_with_the_way_out(tmp_path):
    with pytest.raises(NotRunning, match="aegis serve"):
        call(tmp_path / ".aegis" / "state", "aegis_ping")


@pytest.mark.trio
async def test_a_second_aegis_on_the_same_project_is_refused(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    with pytest.raises(ControlError, match="another Aegis is already running"), trio.fail_after(10):
        await ControlServer(kernel, trio.Event()).run()
    assert (await client_call(kernel.state.root, "aegis_ping"))["pid"]


def test_rpc_errors_carry_the_operation_code():
    err = RpcError("nope", code=-32000, data={"code": "forbidden", "principal": "agent:x"})
    assert err.code == "forbidden"
    assert RpcError("gone").code == "unavailable"


@pytest.mark.trio
async def test_binding_the_socket_never_changes_the_umask_other_tasks_create_files_with(setup, kernel):
    def umask() -> int:
        mask = os.umask(0)
        os.umask(mask)
        return mask

    before, seen = umask(), set()
    server_ready = trio.Event()

    async def watch() -> None:  # runs at every checkpoint of the server's start-up, as any kernel task may
        while not server_ready.is_set():
            seen.add(umask())
            await trio.lowlevel.checkpoint()

    kernel.nursery.start_soon(watch)
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    server_ready.set()
    assert seen == {before}  # a folder another task made meanwhile keeps its x bits
    mode = os.stat(connect_path(socket_path(kernel.state.root))).st_mode & 0o777
    assert mode == 0o600
