"""Helpers for the TUI pilot tests: a project, a kernel on an in-memory driver, and waiting helpers.

The ``tfake`` driver obeys the last line of each turn: ``slow N`` streams N partial tokens then the whole
text; ``ask`` raises a permission request (kind execute) and answers with the decision; ``hang``
never answers (an interrupt cancels); ``tool`` makes a tool call with a result; anything else →
``fake reply to: <line>``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import trio

from aegis_kernel.events import (AssistantText, PermissionRequest, Thinking, TokenUsage, ToolResult, ToolUse,
                                 TurnResult, UsageUpdate)
from aegis_kernel.kernel import build_kernel
from aegis_kernel.testing import DriverPlugin, FakeDriver, FakeProcess

CONFIG = """\
default_agent: alpha
plugins:
  disabled: [mcp]
agents:
  alpha:
    provider: tfake
  beta:
    provider: tfake
    model: big-model
"""


class TProcess(FakeProcess):
    def __init__(self, driver: TDriver, session_id: str) -> None:
        super().__init__(driver.reply, session_id)
        self._answer: trio.Event | None = None
        self._allowed = False

    async def _run_turn(self, text: str) -> None:
        line = text.strip().splitlines()[-1].strip() if text.strip() else ""
        word, _, rest = line.partition(" ")
        with trio.CancelScope() as scope:
            self._turn = scope
            if word == "slow":
                n = int(rest or 20)
                for i in range(n):
                    await self._send.send(AssistantText(text=f"tok{i} ", message_id="m1", partial=True))
                    await self._send.send(UsageUpdate(usage=TokenUsage(input=100 + i, output=i)))
                    await trio.sleep(0.01)
                await self._send.send(AssistantText(text="".join(f"tok{i} " for i in range(n)), message_id="m1"))
            elif word == "ask":
                self._answer = trio.Event()
                await self._send.send(PermissionRequest(request_id="r1", tool_name="Bash", kind="execute",
                                                        summary="rm -rf build"))
                await self._answer.wait()
                await self._send.send(AssistantText(text="allowed" if self._allowed else "denied"))
            elif word == "hang":
                await trio.sleep_forever()
            elif word == "tool":
                await self._send.send(Thinking(text="let me look at the file"))
                await self._send.send(ToolUse(tool_call_id="t1", name="Read", summary="worker.py"))
                await self._send.send(ToolResult(tool_call_id="t1", text="ok\nline 2"))
                await self._send.send(AssistantText(text="The **retry** path is in `_run_turn`."))
            else:
                await self._send.send(AssistantText(text=f"fake reply to: {line}"))
            await self._send.send(TurnResult(usage=TokenUsage(input=1000, output=50, cache_read=9000)))
            return
        await self._send.send(TurnResult(stop_reason="cancelled"))

    async def answer_permission(self, request_id: str, allow: bool, *, always: bool = False) -> None:
        self._allowed = allow
        if self._answer is not None:
            self._answer.set()


class TDriver(FakeDriver):
    def __init__(self) -> None:
        super().__init__(name="tfake")

    async def start(self, spec: Any, launch: Any, nursery: trio.Nursery) -> Any:
        from aegis_kernel.events import SystemInit

        proc = TProcess(self, spec.resume_id or f"tfake-{spec.handle}")
        proc._nursery = nursery
        self.processes.append(proc)
        await proc._send.send(SystemInit(session_id=proc.session_id))
        return proc


def make_project(root: Path, config: str | None = CONFIG) -> Path:
    project = root / "proj"
    project.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (project / ".aegis.yaml").write_text(config)
    (project / "src").mkdir(exist_ok=True)
    (project / "src" / "worker.py").write_text("def _run_turn():\n    return 42\n")
    (project / "README.md").write_text("# proj\n")
    return project


def make_kernel(project: Path, driver: TDriver | None = None) -> Any:
    return build_kernel(project, extra_plugins=[("tfake", DriverPlugin(driver or TDriver()))], disabled=["mcp"])


def make_app(project: Path, driver: TDriver | None = None, **options: Any) -> Any:
    from aegis_tui.app import AegisApp

    return AegisApp(make_kernel(project, driver), **options)


async def wait_until(pilot: Any, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)


async def ready(pilot: Any) -> None:
    await wait_until(pilot, lambda: pilot.app.kernel_ready, what="kernel ready")


async def new_agent_tab(pilot: Any, key: str = "ctrl+t") -> Any:
    app = pilot.app
    before = len(app.tabs)
    await pilot.press(key)
    await wait_until(pilot, lambda: len(app.tabs) > before, what="a new tab")
    tab = app.tabs[-1]
    await wait_until(pilot, lambda: tab.session.state == "ready", what="the agent ready")
    return tab


async def send(pilot: Any, text: str) -> None:
    app = pilot.app
    app.prompt.load_text(text)
    await pilot.press("enter")


def blocks(tab: Any) -> list[str]:
    return [f"{b.kind}:{b.title + ' ' if b.title else ''}{b.text}" for b in tab.widget.transcript.model.blocks]


def screen_text(app: Any) -> str:
    """The visible screen as plain text (for asserting on what a person would see)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def run(coro: Any) -> Any:
    return asyncio.run(coro)
