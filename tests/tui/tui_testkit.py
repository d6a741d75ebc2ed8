"""Helpers for the TUI pilot tests: a project, a kernel on an in-memory driver, and waiting helpers.

The ``tfake`` driver obeys the last line of each turn: ``slow N`` streams N partial tokens then the whole
text; ``ask`` raises a permission request (kind execute) and answers with the decision; ``hang``
never answers (an interrupt cancels); ``tool`` makes a tool call with a result; anything else →
``fake reply to: <line>``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
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


class ServeThread:
    """A real serve for the attached runs: ``aegis serve``'s own code (owner lock, kernel, control socket)
    on the in-memory driver, in ``trio.run`` on a thread of this process (a driver object cannot cross
    processes). ``kernel`` is the serve's; read it, never call into it from the test's thread."""

    def __init__(self, project: Path, driver: TDriver | None = None, *, kernel: Any = None) -> None:
        """``kernel``: serve this one (built, not running) instead of one on ``driver``."""
        self.driver = driver or TDriver()
        self.kernel = kernel if kernel is not None else make_kernel(project, self.driver)
        self._token: Any = None
        self._stop: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="aegis-serve", daemon=True)

    def _main(self) -> None:
        from aegis_kernel.serve import _serve

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with trio.open_nursery() as nursery:
                await nursery.start(functools.partial(_serve, self.kernel, False, 0, self._stop, time.monotonic(),
                                                      lambda message: None))
                self._ready.set()

        try:
            trio.run(main)
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self._error = exc
        finally:
            self._ready.set()

    @property
    def socket(self) -> Path:
        from aegis_kernel.control import connect_path, socket_path

        return connect_path(socket_path(self.kernel.state.root))

    def start(self) -> ServeThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive() and self._token is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(30)
        assert not self._thread.is_alive(), "the serve did not stop"


#: "owning" or "attached": how make_app builds the app (set by the ``tui_mode`` fixture of conftest.py)
MODE = {"mode": "owning", "serves": []}


def attached() -> bool:
    return MODE["mode"] == "attached"


def make_app(project: Path, driver: TDriver | None = None, **options: Any) -> Any:
    """The app on ``project``: owning its kernel, or (``tui_mode`` attached) attached to the project's
    serve (started here on ``driver`` the first time, reused by later apps of the same test)."""
    from aegis_tui.app import AegisApp

    if not attached():
        return AegisApp(make_kernel(project, driver), **options)
    serve = next((s for s in MODE["serves"] if s.kernel.project_dir == project.resolve()), None)
    if serve is None:  # one serve per project for the whole test: a second app re-attaches to it
        serve = ServeThread(project, driver).start()
        MODE["serves"].append(serve)
    return AegisApp(make_kernel(project), attach=serve.socket, **options)


def owner_kernel(app: Any) -> Any:
    """The kernel that runs the agents: the app's own, or the serve's it is attached to."""
    for serve in MODE["serves"]:
        if serve.kernel.project_dir == app.project_dir:
            return serve.kernel
    return app.kernel


def stop_serves() -> None:
    while MODE["serves"]:
        MODE["serves"].pop().stop()


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
    assert (pilot.app.remote is not None) == attached(), "the app runs in the mode the test asked for"


async def new_agent_tab(pilot: Any, key: str = "ctrl+t") -> Any:
    app = pilot.app
    before = len(app.tabs)
    await pilot.press(key)
    await wait_until(pilot, lambda: len(app.tabs) > before, what="a new tab")
    tab = app.tabs[-1]
    # attached, the mirror's tab may show up (in the background) before the spawn's reply brings it to
    # the front: a person waits for the new tab to be in front before typing into it
    await wait_until(pilot, lambda: app.active_tab is tab, what="the new tab in front")
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
