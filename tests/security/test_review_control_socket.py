"""Review of issue 12 (the new control socket): a client that asks for a stream and never reads it
costs the owner bounded memory — once the socket's buffers are full the owner stops reading the bus
for it, the subscription keeps at most its buffer and the client learns what it missed from a
``lagged`` marker; the owner meanwhile answers everyone else. And a client asking for a huge buffer
gets the server's bound, not an unbounded one."""

from __future__ import annotations

import json
import socket

import pytest
import trio
import trio.testing

from aegis_kernel.control import ControlServer, connect_path, socket_path
from aegis_kernel.testing import DriverPlugin, FakeDriver


@pytest.fixture
def setup(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver()))


def subscribe_line(**params) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "aegis_subscribe",
                       "params": {"topics": ["review"], **params}}).encode() + b"\n"


@pytest.mark.trio
async def test_a_stream_nobody_reads_holds_bounded_memory_and_reports_what_was_dropped(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(str(connect_path(socket_path(kernel.state.root))))
    try:
        sock.sendall(subscribe_line())

        def subscribed() -> bool:
            return any(sub.topics == frozenset({"review"}) for sub in kernel.bus._subscribers)

        with trio.fail_after(60):
            while not subscribed():
                await trio.sleep(0.01)
        published = 40_000
        payload = {"text": "x" * 200}
        for start in range(0, published, 1000):  # the owner gets to send between bursts, the client never reads
            for _ in range(1000):
                kernel.bus.publish("review", payload)
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)
        [sub] = [s for s in kernel.bus._subscribers if s.topics == frozenset({"review"})]
        assert len(sub._items) <= sub.buffer  # what the owner holds for this client is bounded

        # the owner answers others meanwhile
        def ping() -> dict:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
                other.settimeout(30)
                other.connect(str(connect_path(socket_path(kernel.state.root))))
                other.sendall(b'{"jsonrpc":"2.0","id":9,"method":"aegis_ping"}\n')
                return json.loads(other.makefile("rb").readline())

        assert (await trio.to_thread.run_sync(ping))["id"] == 9

        # the slow client finally reads: fewer items than published, and a marker saying how many it missed
        def read_until_last() -> tuple[int, int]:
            reader = sock.makefile("rb")
            got = missed = 0
            while got + missed < published:
                msg = json.loads(reader.readline())
                for item in msg["params"]["items"]:
                    if "lagged" in item:
                        missed += item["lagged"]
                    else:
                        got += 1
            return got, missed

        got, missed = await trio.to_thread.run_sync(read_until_last)
        assert missed > 0 and got + missed == published
    finally:
        sock.close()


@pytest.mark.trio
async def test_a_client_cannot_ask_for_an_unbounded_buffer(setup, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)

    def ask() -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(connect_path(socket_path(kernel.state.root))))
            sock.sendall(subscribe_line(buffer=10**12))
            return json.loads(sock.makefile("rb").readline())

    reply = await trio.to_thread.run_sync(ask)
    assert reply["error"]["data"]["param"] == "buffer"
