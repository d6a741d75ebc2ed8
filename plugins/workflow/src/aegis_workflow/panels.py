"""What the TUI shows of workflows (contributed through aegis-tui's ``aegis_register_panels``).

- the **workflows** tab (F7): one line per run — run id, workflow, status, elapsed, current step — and
  ``? awaiting: <question> [options]`` under a run waiting for a person; the same lines are the
  **WORKFLOWS band** of the TUI's Ctrl+D dashboard (``kind="band"``).
- the **ask strip** (always on, one line, empty unless a run waits): ``⚑ run#… asks: <question>
  [options] · F8 answers``; the terminal bell rings when a new question appears.
- the **answer** modal (F8): the oldest open question with its options; Enter sends the answer
  (``aegis_workflow_answer``; with options, the text or its number).

They redraw once a second: from the runtime in this process, or from the owner's
``aegis_workflow_list`` when the TUI is attached to an ``aegis serve``. Textual is imported inside the
factories only.
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
        def __init__(self) -> None:
            super().__init__("", id="workflows-tab")
            self._follow = _follow(app, kernel, self._show)

        def on_mount(self) -> None:
            self.set_interval(1.0, self._follow.tick)
            self._follow.tick()

        def _show(self, runs: list[dict[str, Any]] | None, problem: str | None) -> None:
            if not self.is_mounted:
                return
            if runs is not None:
                self.update(runs_text(runs))
            else:
                self.update("the workflow service is not running" if problem == "not running"
                            else f"workflows unavailable: {problem}")

    return WorkflowsTab()


def waiting(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs waiting for a person, oldest first."""
    return sorted((r for r in runs if r.get("awaiting_human")), key=lambda r: float(r.get("started_at") or 0))


def ask_text(runs: list[dict[str, Any]]) -> str:
    """The ask strip: the oldest open question (and how many more); empty when none is open."""
    asks = waiting(runs)
    if not asks:
        return ""
    first = asks[0]
    ask = first["awaiting_human"]
    opts = f" [{' / '.join(ask['options'])}]" if ask.get("options") else ""
    more = f" (+{len(asks) - 1} more)" if len(asks) > 1 else ""
    return f"⚑ run#{first['run_id']} ({first['name']}) asks: {ask['question']}{opts}{more} · F8 answers"


def _follow(app: Any, kernel: Any, show: Any) -> Any:
    """The runs once a second for a widget (:class:`aegis_tui.follow.Follow`): in process from the runtime,
    attached through ``aegis_workflow_list``."""
    from aegis_tui.follow import Follow

    return Follow(app, local=lambda: local_runs(kernel), operation="aegis_workflow_list", key="runs", show=show)


def band(app: Any, kernel: Any) -> Any:
    """The WORKFLOWS band of the TUI's Ctrl+D dashboard (kind="band"): run, status, elapsed, current
    step and what a run waiting for a person asks; redrawn once a second (``refresh_now()`` at once)."""
    from textual.containers import Vertical
    from textual.widgets import Static

    class WorkflowsBand(Vertical):
        DEFAULT_CSS = """
        WorkflowsBand { height: auto; }
        WorkflowsBand .band { color: $accent; text-style: bold; margin-top: 1; }
        """

        def __init__(self) -> None:
            super().__init__()
            self._follow = _follow(app, kernel, lambda runs, _: self._show(runs or []))

        def compose(self) -> Any:
            yield Static("WORKFLOWS", classes="band")
            yield Static("", id="band-workflows")

        def on_mount(self) -> None:
            self.set_interval(1.0, self._follow.tick)
            self._follow.tick()

        def refresh_now(self) -> None:
            self._follow.tick()

        def _show(self, runs: list[dict[str, Any]]) -> None:
            if self.is_mounted:
                self.query_one("#band-workflows", Static).update(runs_text(runs).removeprefix("WORKFLOWS\n"))

    return WorkflowsBand()


def ask_strip(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    class AskStrip(Static):
        DEFAULT_CSS = "AskStrip { height: auto; max-height: 1; padding: 0 1; color: $warning; }"

        def __init__(self) -> None:
            super().__init__("", classes="workflow-ask-strip")
            self.display = False  # until a run waits for a person
            self._asked: set[tuple[str, str]] = set()
            self._follow = _follow(app, kernel, lambda runs, _: self._show(runs or []))

        def on_mount(self) -> None:
            self.set_interval(1.0, self._follow.tick)
            self._follow.tick()

        def _show(self, runs: list[dict[str, Any]]) -> None:
            if not self.is_mounted:
                return
            now = {(r["run_id"], r["awaiting_human"]["question"]) for r in waiting(runs)}
            if now - self._asked:
                app.bell()
            self._asked = now
            text = ask_text(runs)
            self.display = bool(text)
            self.update(text)

    return AskStrip()


def answer_panel(app: Any, kernel: Any) -> Any:
    from textual.containers import Vertical
    from textual.widgets import Input, Static

    class AnswerPanel(Vertical):
        DEFAULT_CSS = "AnswerPanel { height: auto; padding: 1 2; } AnswerPanel > Static { margin-bottom: 1; }"

        def __init__(self) -> None:
            super().__init__(id="workflow-answer")
            self.run_id: str | None = None
            self._follow = _follow(app, kernel, lambda runs, _: self._show(runs or []))

        def compose(self) -> Any:
            yield Static("no workflow is waiting for an answer", id="workflow-question")
            yield Input(placeholder="your answer (Enter sends, Escape closes)", id="workflow-answer-input")

        def on_mount(self) -> None:
            self._follow.tick()

        def _show(self, runs: list[dict[str, Any]]) -> None:
            asks = waiting(runs)
            if not self.is_mounted or (self.run_id is not None and any(r["run_id"] == self.run_id for r in asks)):
                return
            question = self.query_one("#workflow-question", Static)
            if not asks:
                self.run_id = None
                question.update("no workflow is waiting for an answer")
                return
            first = asks[0]
            self.run_id = first["run_id"]
            ask = first["awaiting_human"]
            opts = "\n".join(f"  {i}. {o}" for i, o in enumerate(ask.get("options") or [], 1))
            question.update(f"run#{first['run_id']} ({first['name']}) asks:\n\n{ask['question']}"
                            + (f"\n\n{opts}" if opts else ""))

        def on_input_submitted(self, event: Any) -> None:
            text = event.value.strip()
            if not text or self.run_id is None:
                return
            run_id = self.run_id

            async def send() -> None:
                try:
                    await app.call_op("aegis_workflow_answer", run_id=run_id, text=text)
                except Exception as exc:  # noqa: BLE001 - shown to the person, the question stays open
                    app.notify(f"run#{run_id}: {exc}", severity="error")
                    return
                app.notify(f"run#{run_id}: answered {text!r}")

            app.in_kernel(send)
            self.screen.dismiss(None)

    return AnswerPanel()
