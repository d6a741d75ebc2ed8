"""``aegis demo``: a throwaway project with scripted agents and a short guided tour.

The tour runs in the kernel (a trio task of the TUI's nursery) and drives real scripted-agent
subprocesses over ACP; their ``@call`` directives reach the real MCP plane. It shows: a turn with
thinking, text, a tool call and honest metrics; a handoff between two agents (``✉ from agent:…``);
and, when the queue plugin is installed, a queue whose workers report back with callbacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Awaitable, Callable


def _queue_runtime(kernel: Any) -> Any:
    """The running queue runtime when aegis-queue is installed and enabled, else None."""
    try:
        from aegis_queue.runtime import QueueRuntime
    except ImportError:
        return None
    return kernel.find_service(QueueRuntime)


DEMO_CONFIG = """\
# aegis demo — scripted agents: real ACP subprocesses that follow @directives, no account, no network.
default_agent: lead
agents:
  lead:
    provider: scripted
    description: the agent you talk to
  reviewer:
    provider: scripted
    description: reviews what lead hands off
  worker:
    provider: scripted
    description: a queue worker
"""

WORKER_PY = '''\
"""A tiny worker with a retry path (demo file)."""

import time


def _run_turn(task, attempts=3, backoff=0.5):
    """Run one task; on a transient error back off 0.5s x 2^n and retry, at most 3 times."""
    for n in range(attempts):
        try:
            return task()
        except TimeoutError:
            time.sleep(backoff * 2 ** n)
    raise RuntimeError("gave up after %d attempts" % attempts)
'''

README = """\
# demo project

A throwaway project made by `aegis demo`. Press Ctrl+O to open a file, F2 for the config panel.
"""


def write_demo_project(project: Path) -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / ".aegis.yaml").write_text(DEMO_CONFIG)
    (project / "README.md").write_text(README)
    (project / "src").mkdir(exist_ok=True)
    (project / "src" / "worker.py").write_text(WORKER_PY)
    (project / "tests").mkdir(exist_ok=True)
    (project / "tests" / "test_worker.py").write_text(
        "from src.worker import _run_turn\n\n\ndef test_first_try():\n    assert _run_turn(lambda: 42) == 42\n")


def make_demo_kernel(project: Path) -> Any:
    """Write the demo project and build its kernel; adds a ``tests`` queue (through the validated
    config edit path) when the queue plugin is installed."""
    from aegis_kernel import build_kernel, config_validator, set_key

    from .config_panel import reload_config

    if not (project / ".aegis.yaml").exists():
        write_demo_project(project)
    kernel = build_kernel(project)
    sections = kernel.plugins.registry.objects("config_sections")
    if "queues" in sections:
        path = project / ".aegis.yaml"
        set_key(path, ["queues", "tests"], {"agent": "worker", "max_parallel": 2},
                validate=config_validator(path, sections))
        reload_config(kernel)
    return kernel


def _call(tool: str, args: dict[str, Any]) -> str:
    return f"@call {tool} {json.dumps(args)}"


def make_tour(speed: float = 1.0) -> Callable[[Any], Awaitable[None]]:
    """The tour coroutine function for :class:`~aegis_tui.app.AegisApp` (``speed`` 0 = no pauses)."""

    def secs(s: float) -> float:
        return round(s / speed, 2) if speed > 0 else 0.0

    async def tour(app: Any) -> None:
        import trio

        from aegis_kernel import Envelope

        kernel = app.kernel

        async def pause(s: float) -> None:
            await trio.sleep(secs(s))

        def say(text: str) -> None:
            app.notify(text, title="tour", timeout=max(3.0, secs(6)))

        say("Welcome to aegis: two scripted agents (real subprocesses, no account). Watch the tabs.")
        reviewer = await kernel.sessions.spawn("reviewer")
        lead = await kernel.sessions.spawn("lead")
        app._known.update({id(reviewer), id(lead)})
        app.call_later(app.add_agent_tab, reviewer, activate=False)
        app.call_later(app.add_agent_tab, lead, activate=True)
        await lead.wait_for(lambda s: s.state != "starting", timeout=30)
        await pause(1.5)

        sleep = secs(1.2)
        handoff = "\n".join([
            "Please review the retry path in src/worker.py (_run_turn): backoff 0.5s x 2^n, 3 tries.",
            *([f"@sleep {sleep}"] if sleep else []),
            "@reply Reviewed: the retry loop looks right. One nit: cap the backoff at 8s.",
            "@usage in=900 out=120 cache_read=6000",
        ])
        prompt = "\n".join([
            f"explain the retry path in worker.py, then hand it to {reviewer.handle}",
            "@think Looking for the retry loop in src/worker.py",
            *([f"@sleep {sleep}"] if sleep else []),
            "@reply The retry path lives in `_run_turn` (src/worker.py): on a `TimeoutError` it backs off "
            "0.5s × 2ⁿ and tries again, at most 3 times.",
            "@usage in=1800 out=240 cache_read=14000 cache_write=600",
            "@context used=16400 size=200000 cost=0.03",
            _call("aegis_handoff", {"target_handle": reviewer.handle, "context": handoff}),
            f"@reply Handed off to {reviewer.handle}.",
        ])
        say("1/3 · a turn: thinking, text, a tool call; the status bar shows honest metrics.")
        kernel.deliver(lead.handle, Envelope.new("user", prompt))
        await lead.wait_idle(timeout=60)
        await reviewer.wait_for(lambda s: s.metrics.turns >= 1 and s.state == "ready", timeout=60)
        await pause(1.0)
        say(f"2/3 · the handoff: {reviewer.handle} got '✉ from agent:{lead.handle}' and answered.")
        app.call_later(app.focus_session, reviewer)
        await pause(4.0)
        app.call_later(app.focus_session, lead)

        runtime = _queue_runtime(kernel)
        if runtime is not None:
            say("3/3 · a queue: 3 tasks, 2 workers at a time; each result comes back to lead's inbox.")
            shard_sleep = secs(2.0)
            calls = [_call("aegis_enqueue", {
                "queue": "tests", "callback": True,
                "payload": "\n".join([f"run shard {i} of the test suite",
                                      *([f"@sleep {shard_sleep}"] if shard_sleep else []),
                                      f"@usage in={600 + 100 * i} out={80 + 10 * i}",
                                      f"@reply shard {i}: {12 + i} passed"])})
                for i in (1, 2, 3)]
            kernel.deliver(lead.handle, Envelope.new("user", "\n".join([
                "run the test suite on the queue, three shards", *calls,
                "@reply Enqueued 3 shards on queue 'tests'; their results will arrive in my inbox."])))
            with trio.move_on_after(90):
                while True:
                    await trio.sleep(0.2)
                    q = runtime.queues.get("tests") if runtime is not None else None
                    if q is None or (not q.pending and not q.inflight and q.counts.get("completed", 0)
                                     + q.counts.get("failed", 0) >= 3):
                        break
            await lead.wait_idle(timeout=60)
        else:
            say("3/3 · (install aegis-queue to see queue workers and callbacks here)")
        await pause(1.0)
        say("That's the tour. Ctrl+T new agent · Ctrl+N pick one · Ctrl+O files · F2 config · "
            "Ctrl+D dashboard · Ctrl+Q quit")

    return tour
