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
