"""The WORKFLOWS tab (contributed through aegis-tui's ``aegis_register_panels``): one line per run —
run id, workflow, status, current step, elapsed, and ``? awaiting: <question>`` with its options when a
run waits for a person (answer with ``aegis workflow answer RUN TEXT``).

The panel hook cannot add a band to another plugin's Ctrl+D dashboard (aegis-queue's modal), so the
band is a tab of its own. It redraws once a second: from the runtime in this process, or from the
owner's ``aegis_workflow_list`` when the TUI is attached to an ``aegis serve``. Textual is imported
inside the factory only.
"""

from __future__ import annotations

from typing import Any

EMPTY = "no workflow runs — start one with aegis_run_workflow or `aegis workflow run NAME`"
MARKS = {"running": "◐", "ok": "✓", "error": "✗", "cancelled": "·"}


def runs_text(runs: list[dict[str, Any]]) -> str:
    """The WORKFLOWS band from run infos (``aegis_workflow_list()["runs"]``): waiting runs first."""
    if not runs:
        return EMPTY
    order = sorted(runs, key=lambda r: (r.get("awaiting_human") is None, r["status"] != "running",
                                        -float(r.get("started_at") or 0)))
    lines = ["WORKFLOWS"]
    for r in order[:30]:
        line = (f"  {MARKS.get(r['status'], '?')} run#{r['run_id']} {r['name']:<18} {r['status']:<9} "
                f"{_elapsed(r.get('elapsed_s') or 0):>7}  {r.get('step') or ''}"[:160])
        lines.append(line)
        ask = r.get("awaiting_human")
        if ask:
            opts = f"  [{' / '.join(ask['options'])}]" if ask.get("options") else ""
            lines.append(f"      ? awaiting: {ask['question']}{opts}")
    return "\n".join(lines)


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def local_runs(kernel: Any) -> list[dict[str, Any]] | None:
    from .runtime import WorkflowRuntime

    rt = kernel.find_service(WorkflowRuntime) if kernel is not None else None
    return None if rt is None else [rt.info(r) for r in rt.runs.values()]


def workflows_tab(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    class WorkflowsTab(Static):
        def on_mount(self) -> None:
            self.set_interval(1.0, self._tick)
            self._tick()

        def _tick(self) -> None:
            if getattr(app, "remote", None) is not None:
                app.in_kernel(self._poll)
                return
            runs = local_runs(kernel)
            self.update("the workflow service is not running" if runs is None else runs_text(runs))

        async def _poll(self) -> None:
            try:
                text = runs_text((await app.call_op("aegis_workflow_list"))["runs"])
            except Exception as exc:  # noqa: BLE001 - no workflow service there: say so
                text = f"workflows unavailable: {exc}"
            if self.is_mounted:
                self.update(text)

    return WorkflowsTab("", id="workflows-tab")
