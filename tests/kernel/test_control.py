"""The control socket keeps serving whatever one request does."""

from __future__ import annotations

import pytest
import trio

from aegis_kernel import hookimpl
from aegis_kernel.control import ControlClient, ControlError, ControlServer
from aegis_kernel.events import AssistantText
from aegis_kernel.testing import DriverPlugin, FakeDriver


class Broken:
    @hookimpl
    def aegis_register_operations(self, register):
        async def explode(ctx):
            raise RuntimeError("plugin bug")

        register("aegis_explode", explode, "always fails")


@pytest.fixture
def setup(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver()))
    register_plugin(Broken())


async def client_call(state_dir, op, **fields):
    def call():
        client = ControlClient(state_dir)
        try:
            if op == "transcript":
                return list(client.stream(op, **fields))
            return client.request(op, **fields)
        finally:
            client.close()

    return await trio.to_thread.run_sync(call)


@pytest.mark.trio
async def test_a_failing_request_is_an_error_reply_not_a_dead_serve(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    with pytest.raises(ControlError, match="internal error: plugin bug"):
        await client_call(kernel.state.root, "call", name="aegis_explode")
    assert (await client_call(kernel.state.root, "ping"))["pid"]


@pytest.mark.trio
async def test_a_long_transcript_streams_whole(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    session = await kernel.sessions.spawn(handle="chatty")
    await session.wait_for(lambda s: s.state == "ready")
    session.history.extend(AssistantText(text=f"t{i}", partial=True) for i in range(25_000))
    events = await client_call(kernel.state.root, "transcript", handle="chatty")
    assert len(events) >= 25_000
    assert (await client_call(kernel.state.root, "ping"))["pid"]


@pytest.mark.trio
async def test_a_second_aegis_on_the_same_project_is_refused(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    with pytest.raises(ControlError, match="another Aegis is already running"), trio.fail_after(10):
        await ControlServer(kernel, trio.Event()).run()
    assert (await client_call(kernel.state.root, "ping"))["pid"]
