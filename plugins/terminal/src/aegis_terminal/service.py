"""The terminal service: owns the nursery every shell's reader runs in, and closes every shell on the way out."""

from __future__ import annotations

from typing import Any

import trio

from .runtime import TerminalRuntime


class TerminalService:
    """Runs one :class:`~aegis_terminal.runtime.TerminalRuntime` per kernel: replays the ledgers, then
    hosts the shells; when the kernel stops, every shell is closed (SIGHUP → SIGTERM → SIGKILL, bounded)."""

    provides = "aegis_terminal.runtime:TerminalRuntime"

    async def run(self, kernel: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            rt = TerminalRuntime(kernel, nursery)
            try:
                await rt.start()
                task_status.started(rt)
                await trio.sleep_forever()
            finally:
                await rt.aclose()
                nursery.cancel_scope.cancel()
