"""``aegis serve``: the kernel headless, with the control socket; SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio

from .control import ControlServer
from .kernel import Kernel, open_kernel, unwrap_group


async def serve(kernel: Kernel, *, clean: bool = False, announce: Any = print,
                task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run ``kernel`` until ``aegis stop``, SIGINT or SIGTERM; restore live sessions unless ``clean``."""
    started = time.monotonic()
    stop = trio.Event()
    saved = len(kernel.sessions.saved())
    # signals are caught from before the first agent starts until the last one is reaped
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as outer:
            outer.start_soon(_watch_signals, signals, stop)
            await _serve(kernel, clean, saved, stop, started, announce, task_status)
            outer.cancel_scope.cancel()


async def _serve(kernel: Kernel, clean: bool, saved: int, stop: trio.Event, started: float, announce: Any,
                 task_status: Any) -> None:
    from .owner import acquire

    # the project is ours before any session is restored: never two copies of an agent
    # (in a worker thread: a racing probe makes acquire wait a moment, never on the loop)
    with await trio.to_thread.run_sync(acquire, kernel.state.root, "serve", kernel.project_dir):
        await _serve_owned(kernel, clean, saved, stop, started, announce, task_status)


async def _serve_owned(kernel: Kernel, clean: bool, saved: int, stop: trio.Event, started: float, announce: Any,
                       task_status: Any) -> None:
    async with open_kernel(kernel=kernel, restore=not clean) as k:
        k.stop_handler = stop.set
        sock = await k.nursery.start(ControlServer(k, stop).run)
        restored, failed = await _restored(k) if not clean else ([], [])
        ms = (time.monotonic() - started) * 1000
        lost = max(saved - len(restored), len(failed))
        announce(f"aegis serve: {k.project_dir} · MCP {k.mcp_base_url or '(no MCP plugin)'} · control {sock}"
                 f" · {len(restored)} session(s) restored"
                 + (f" ({lost} could not be{': ' + ', '.join(failed) if failed else ''})" if lost else "")
                 + f" · ready in {ms:.0f} ms")
        task_status.started(k)
        await stop.wait()
        announce("aegis serve: stopping (closing agents)…")


RESTORE_SETTLE_S = 5.0  # how long the banner waits for restored agents to get past ``starting``


async def _restored(kernel: Kernel) -> tuple[list[Any], list[str]]:
    """The restored sessions that came back, and the handles of those that failed (``error``).

    Waits (at most :data:`RESTORE_SETTLE_S`) for the restored agents to leave ``starting``, so a
    session whose agent failed to start is not counted as restored; one still starting then counts."""
    sessions = [s for s in kernel.sessions if s.restorable]
    with trio.move_on_after(RESTORE_SETTLE_S):
        for session in sessions:
            await session.wait_for(lambda s: s.state != "starting", timeout=math.inf)
    failed = [s.handle for s in sessions if s.state == "error"]
    return [s for s in sessions if s.state != "error"], failed


async def _watch_signals(signals: Any, stop: trio.Event) -> None:
    async for _ in signals:  # a second signal while stopping changes nothing: shutdown is already bounded
        stop.set()


def run_serve(project_dir: Path | None, clean: bool) -> int:
    from .kernel import build_kernel

    from .control import ControlError
    from .state import StateError

    try:
        kernel = build_kernel(project_dir)
        try:
            trio.run(lambda: serve(kernel, clean=clean, announce=lambda m: print(m, flush=True)))
        except BaseExceptionGroup as group:
            raise unwrap_group(group) from None
    except (ControlError, StateError) as exc:  # a refused socket or state folder: one line, no traceback
        print(f"aegis serve: {exc}", file=sys.stderr)
        return 1
    print("aegis serve: stopped", file=sys.stderr, flush=True)
    return 0
