"""Follow a plugin's rows for a panel, owning or attached — the one loop panels share.

A tab or band that shows a primitive's state (workflow runs, schedules, …) reads it from the owning
kernel's runtime when this TUI owns the project, and through the primitive's listing operation when it
is attached to a serve (over the control socket, never blocking the loop)::

    follow = Follow(app, local=lambda: local_runs(kernel), operation="aegis_workflow_list", key="runs",
                    show=lambda rows, problem: widget.update(render(rows, problem)))
    widget.set_interval(1.0, follow.tick)

``local()`` returns the rows, or None when the runtime is not running here; ``show(rows, problem)``
gets the rows, or None and why there are none ("not running", or the operation's error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rows = list[dict[str, Any]]


class Follow:
    def __init__(self, app: Any, *, local: Callable[[], Rows | None], operation: str, key: str,
                 show: Callable[[Rows | None, str | None], None]) -> None:
        self.app, self.local, self.operation, self.key, self.show = app, local, operation, key, show

    def tick(self) -> None:
        """Fetch once: at once in process, or as a kernel task when attached (``show`` runs when it comes)."""
        if getattr(self.app, "remote", None) is not None:
            self.app.in_kernel(self._poll)
            return
        rows = self.local()
        self.show(rows, None if rows is not None else "not running")

    async def _poll(self) -> None:
        try:
            rows, problem = (await self.app.call_op(self.operation))[self.key], None
        except Exception as exc:  # noqa: BLE001 - the primitive is not there (not installed, stopped): say so
            rows, problem = None, str(exc)
        self.show(rows, problem)
