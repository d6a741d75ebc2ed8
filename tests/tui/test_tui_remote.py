"""The attached TUI's mirror (:mod:`aegis_tui.remote`) against a real kernel serving its control socket: the
mirror equals the kernel — history, state, metrics — whatever starts, streams or closes while it follows,
and a mirror that fell behind is rebuilt from a new snapshot. No Textual here: trio only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio.testing
from tui_testkit import make_kernel, make_project

from aegis_kernel.control import ControlServer, connect_path, socket_path
from aegis_kernel.events import AssistantText, event_to_dict
from aegis_kernel.kernel import open_kernel
from aegis_kernel.rpc import AsyncRpcClient, RpcError
from aegis_tui.remote import RESYNCED, Remote


def _same(kernel: Any, remote: Remote) -> bool:
    """Every live session of ``kernel`` mirrored exactly (history, state, shown metrics, pending approval)."""
    live = {s.handle: s for s in kernel.sessions}
    if set(live) != set(remote.sessions):
        return False
    for handle, session in live.items():
        mirror = remote.sessions[handle]
        if [event_to_dict(e) for e in mirror.history] != [event_to_dict(e) for e in session.history]:
            return False
        ours, theirs = mirror.metrics.to_dict(), session.metrics.to_dict()
        for clock in ("turn_s", "session_s"):
            ours.pop(clock), theirs.pop(clock)
        if (mirror.state, ours, mirror.pending_permission) != (session.state, theirs, session.pending_permission):
            return False
    return True


async def _until(predicate: Any, what: str) -> None:
    with trio.fail_after(10):  # only fails: the condition is polled, never timed
        while not predicate():
            await trio.sleep(0.01)
    assert predicate(), what


def _serve(tmp_path: Path) -> Any:
    return make_kernel(make_project(tmp_path))


def test_the_mirror_follows_the_kernel_exactly(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_kernel(kernel=_serve(tmp_path), restore=False) as kernel:
            await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
            early = await kernel.sessions.spawn("beta")
            await early.wait_for(lambda s: s.state == "ready")
            kernel.deliver(early.handle, _envelope("tool"))
            await early.wait_idle()
            remote = Remote(connect_path(socket_path(kernel.state.root)))
            async with trio.open_nursery() as nursery:
                await nursery.start(remote.run)
                assert _same(kernel, remote)  # the snapshot
                late = await kernel.sessions.spawn("alpha")  # starts while the mirror follows
                kernel.deliver(late.handle, _envelope("slow 30"))
                kernel.deliver(early.handle, _envelope("ask"))
                await early.wait_for(lambda s: s.state == "input-required")
                await _until(lambda: _same(kernel, remote), "an approval pending, a turn streaming")
                await remote.call("aegis_approve", {"handle": early.handle})
                await late.wait_idle()
                await early.wait_idle()
                await _until(lambda: _same(kernel, remote), "both turns over")
                await late.close("done")
                await _until(lambda: late.handle not in remote.sessions, "the closed session gone")
                assert _same(kernel, remote) and remote.resyncs == 0
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_mirror_that_falls_behind_is_rebuilt_from_a_new_snapshot(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_kernel(kernel=_serve(tmp_path), restore=False) as kernel:
            await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
            session = await kernel.sessions.spawn("alpha")
            await session.wait_for(lambda s: s.state == "ready")
            remote = Remote(connect_path(socket_path(kernel.state.root)), buffer=4)
            async with trio.open_nursery() as nursery:
                await nursery.start(remote.run)
                mirror = remote.sessions[session.handle]
                seen: list[Any] = []
                mirror.subscribe(lambda s, event: seen.append(event))
                for i in range(50):  # a burst far over the buffer, with no checkpoint: items are dropped
                    kernel.bus.publish("session.event", AssistantText(text=f"t{i}", partial=True), session.handle)
                kernel.deliver(session.handle, _envelope("hello"))
                await session.wait_idle()
                await _until(lambda: remote.resyncs >= 1 and _same(kernel, remote), "rebuilt and equal again")
                assert remote.sessions[session.handle] is mirror  # the tab keeps its object
                assert RESYNCED in seen
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_the_async_client_runs_calls_side_by_side_and_reports_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_kernel(kernel=_serve(tmp_path), restore=False) as kernel:
            await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
            path = connect_path(socket_path(kernel.state.root))
            async with AsyncRpcClient.open(path) as client:
                results: dict[int, Any] = {}

                async def ping(i: int) -> None:
                    results[i] = await client.call("aegis_ping")

                async with trio.open_nursery() as nursery:
                    for i in range(20):
                        nursery.start_soon(ping, i)
                assert len(results) == 20 and {r["project"] for r in results.values()} == {str(kernel.project_dir)}
                try:
                    await client.call("aegis_interrupt", {"handle": "nobody"})
                except RpcError as exc:
                    assert exc.code == "refused" and "nobody" in exc.message
                else:
                    raise AssertionError("an unknown handle is refused")
                assert (await client.call("aegis_sessions")) == []  # the connection still serves

    trio.run(main)


def _envelope(text: str) -> Any:
    from aegis_kernel.delivery import Envelope

    return Envelope.new("user", text)


def test_attaching_waits_for_an_owner_still_opening_its_control_socket(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_kernel(kernel=_serve(tmp_path), restore=False) as kernel:
            remote = Remote(socket_path(kernel.state.root))  # the public path: nothing listens there yet
            async with trio.open_nursery() as nursery:
                nursery.start_soon(remote.run)
                await trio.testing.wait_all_tasks_blocked()  # its first try failed: it waits and retries
                assert remote.owner == {}
                await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
                await _until(lambda: remote.owner.get("project") == str(kernel.project_dir), "attached")
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_session_whose_agent_never_starts_is_mirrored_with_its_error(tmp_path: Path) -> None:
    async def main() -> None:
        project = make_project(tmp_path, "default_agent: alpha\nplugins:\n  disabled: [mcp]\nagents:\n"
                                         "  alpha: {provider: tfake}\n  broken:\n    provider: scripted\n"
                                         "    command: [/nonexistent/agent-binary]\n")
        async with open_kernel(kernel=make_kernel(project), restore=False) as kernel:
            await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
            remote = Remote(connect_path(socket_path(kernel.state.root)))
            async with trio.open_nursery() as nursery:
                await nursery.start(remote.run)
                handle = (await remote.call("aegis_spawn", {"agent": "broken"}))["handle"]
                await _until(lambda: handle in remote.sessions and remote.sessions[handle].state == "error",
                             "the failed session mirrored")
                assert remote.sessions[handle].error == kernel.sessions.get(handle).error
                await _until(lambda: _same(kernel, remote), "the failed session equal")
                await kernel.sessions.get(handle).close("gone")
                await _until(lambda: handle not in remote.sessions, "closed")
                again = (await remote.call("aegis_spawn", {"agent": "alpha", "handle": handle}))["handle"]
                assert again == handle  # the handle reused: a new mirror, not the old one
                await _until(lambda: handle in remote.sessions and remote.sessions[handle].state == "ready",
                             "the new session under the old handle")
                await _until(lambda: _same(kernel, remote), "the new session equal (its events still arrive)")
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_client_leaving_in_the_middle_of_a_stream_never_takes_the_owner_down(tmp_path: Path) -> None:
    """The owner sends into a connection its client just closed (an attached TUI re-attaching, a
    ``--follow`` interrupted): that stream ends; the control socket and the kernel go on."""
    async def main() -> None:
        async with open_kernel(kernel=_serve(tmp_path), restore=False) as kernel:
            await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
            path = connect_path(socket_path(kernel.state.root))
            for _ in range(20):  # the owner's send and its reading the end of file race: both orders happen
                peer = await trio.open_unix_socket(str(path))
                await peer.send_all(b'{"jsonrpc": "2.0", "id": 1, "method": "aegis_attach"}\n')
                assert b"snapshot" in await peer.receive_some(1 << 20)  # the owner streams to us
                peer.socket.close()  # gone, with no checkpoint before the owner has more to send
                for n in range(50):
                    kernel.bus.publish("test.item", {"n": n, "pad": "x" * 4096})
                await trio.testing.wait_all_tasks_blocked()
            async with AsyncRpcClient.open(path) as client:
                assert (await client.call("aegis_ping"))["project"] == str(kernel.project_dir)

    trio.run(main)
