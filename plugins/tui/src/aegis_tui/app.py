"""The Aegis TUI: Textual is the host, the kernel runs as a trio *guest* on Textual's asyncio loop.

Lifetime (ARCHITECTURE.md §3): after the first frame, :meth:`AegisApp.start_kernel` installs SIGTERM /
SIGHUP / SIGINT handlers on the asyncio loop and calls ``trio.lowlevel.start_guest_run`` with
``host_uses_signal_set_wakeup_fd=True``. The guest (:meth:`AegisApp._trio_main`) opens the kernel,
restores the saved sessions and waits inside a cancel scope. Quitting (Ctrl+Q, a signal, closing the
last tab) cancels that scope through the ``TrioToken`` and *awaits* the guest's end — every agent process
reaped — before the app exits.

Threads of control: kernel code (session listeners, the ``file_viewer`` extension, the demo tour) runs in
trio tasks on this same thread and touches widgets directly or posts messages; Textual code enters the
kernel only through :meth:`AegisApp.in_kernel` (``TrioToken.run_sync_soon``).

Two modes, one TUI. **Owning** (nobody else owns the project): the guest opens the kernel, takes the owner
lock and serves the control socket. **Attached** (``attach=`` the socket of a running ``aegis serve`` or
TUI): the guest runs a :class:`~aegis_tui.remote.Remote` that mirrors the owner's sessions from the
``aegis_attach`` stream; ``self.kernel`` is then built but never opened (config, plugins, panels only).
In both modes every command (spawn, send, interrupt, approve/deny, close) is an operation called as the
user (:meth:`AegisApp.run_op`) and tabs read session-like objects (:meth:`AegisApp.live_sessions`).
Quitting an attached TUI only disconnects: the owner and its agents keep running.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Static

from .blocks import TranscriptModel
from .fileindex import scan
from .prompt import PromptInput
from .remote import RESYNCED
from .statusbar import StatusBar, WorkingLine
from .tabs import Tab, TabBar
from .transcript import Transcript
from .workspace import WorkspaceError, load_workspace, save_workspace, set_aside, workspace_path

if TYPE_CHECKING:
    import trio

    from aegis_kernel import Kernel

log = logging.getLogger("aegis.tui")

TourFn = Callable[["AegisApp"], Awaitable[None]]


class AgentView(Vertical):
    """One agent tab: the transcript and the working indicator."""

    DEFAULT_CSS = """
    AgentView { height: 1fr; }
    """

    def __init__(self, session: Any, model: TranscriptModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.transcript = Transcript(model)
        self.working = WorkingLine(session)

    def compose(self) -> Any:
        yield self.transcript
        yield self.working

    def focus_content(self) -> None:
        self.transcript.focus()


class PanelModal(ModalScreen[None]):
    """Wraps a plugin's modal widget (when its factory returns a widget rather than a screen)."""

    BINDINGS = [Binding("escape", "dismiss_panel", "close")]
    DEFAULT_CSS = """
    PanelModal { align: center middle; }
    PanelModal > Vertical { width: 90%; height: 80%; border: round $accent; background: $surface; }
    """

    def __init__(self, widget: Widget, name: str) -> None:
        super().__init__()
        self.widget = widget
        self.panel_name = name

    def compose(self) -> Any:
        with Vertical():
            yield self.widget

    def action_dismiss_panel(self) -> None:
        self.dismiss(None)


class AgentFileViewer:
    """The TUI as a :class:`aegis_kernel.services.FileViewer`: published with ``kernel.provide`` while
    the app runs, so ``aegis_view_file`` opens the file in a tab (headless Aegis has none)."""

    def __init__(self, app: AegisApp) -> None:
        self._app = app

    async def view_file(self, path: str) -> dict[str, Any]:
        return await self._app._view_file_for_agent(path)


class AegisApp(App[int]):
    """Many agents in one calm terminal."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "aegis"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", priority=True),
        Binding("ctrl+c", "quit_hint", show=False, priority=True),
        Binding("ctrl+t", "new_tab", "new tab", priority=True),
        Binding("ctrl+n", "pick_agent", "pick agent", priority=True),
        Binding("ctrl+w", "close_tab", "close tab", priority=True),
        Binding("ctrl+tab,ctrl+right", "next_tab", "next tab", show=False, priority=True),
        Binding("ctrl+shift+tab,ctrl+left", "prev_tab", "previous tab", show=False, priority=True),
        # Alt+Shift: terminals (and tmux, macOS) that take or never send Ctrl+Shift+arrows
        Binding("ctrl+shift+right,alt+shift+right", "move_tab(1)", "move tab right", show=False, priority=True),
        Binding("ctrl+shift+left,alt+shift+left", "move_tab(-1)", "move tab left", show=False, priority=True),
        *[Binding(f"ctrl+{i},alt+{i}", f"switch_tab({i})", f"tab {i}", show=False, priority=True)
          for i in range(1, 10)],
        Binding("ctrl+o", "open_file", "files", priority=True),
        Binding("f2", "config", "config", priority=True),
        Binding("escape", "interrupt", "interrupt", show=False),
    ]
    MODAL_SAFE = {"quit", "quit_hint"}

    class _Flush(Message):
        """Apply pending transcript changes (posted once per burst of kernel events)."""

    def __init__(self, kernel: Kernel | None = None, *, kernel_factory: Callable[[], Kernel] | None = None,
                 project_dir: Path | None = None, clean: bool = False, tour: TourFn | None = None,
                 title: str | None = None, attach: Path | None = None) -> None:
        """``kernel`` (built, not running), or ``kernel_factory`` + ``project_dir`` to build it only after
        the first frame is on screen (imports and config loading then do not delay it). ``attach``: the
        control socket of the Aegis that owns the project — this TUI then attaches to it instead of
        running the kernel (the kernel object is used for config and plugins only)."""
        super().__init__()
        if kernel is None and kernel_factory is None:
            raise ValueError("AegisApp needs a kernel or a kernel_factory")
        self.kernel: Kernel = kernel  # type: ignore[assignment]  # set by the factory before first use
        self.kernel_factory = kernel_factory
        self.project_dir = (kernel.project_dir if kernel is not None else Path(project_dir or Path.cwd())).resolve()
        self.clean = clean
        self.tour = tour
        self.title_text = title
        self.tabs: list[Tab] = []
        self.active = -1
        self.workspace: dict[str, Any] = {"tabs": [], "active": 0}
        self.files: list[str] = []
        self.indexing = False
        self._indexed_at = 0.0
        self.kernel_ready = False
        self.exit_error: str | None = None
        self._stopping = False
        self._guest_done: asyncio.Future[None] | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._signals: list[int] = []
        self._dirty: set[AgentView] = set()
        self._flush_posted = False
        self._seq = itertools.count(1)
        self._known: set[int] = set()
        self._bar_sig: Any = None
        self._save_pending = False
        self._panel_screens: dict[str, Screen] = {}
        self.first_frame_at: float | None = None
        self.attach = attach
        self.remote: Any = None  # the Remote while attached
        self.detached_note: str | None = None  # printed after exit by the CLI when attached
        self._focus_next: set[str] = set()  # handles this TUI spawned: their tabs open in front

    def get_driver_class(self) -> Any:
        driver_class = super().get_driver_class()
        if driver_class.__name__ == "LinuxDriver":
            from .textual_driver import resilient

            return resilient(driver_class)
        return driver_class

    # --- layout -------------------------------------------------------------------------------

    def compose(self) -> Any:
        yield Static("", id="title")
        yield TabBar(id="tabs")
        with ContentSwitcher(id="content"):
            yield Static(Text("starting…", style="dim"), id="welcome")
        yield Vertical(id="strips")
        yield StatusBar(id="status")
        yield PromptInput(id="input")

    @property
    def tab_bar(self) -> TabBar:
        return self.query_one(TabBar)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def active_tab(self) -> Tab | None:
        return self.tabs[self.active] if 0 <= self.active < len(self.tabs) else None

    @property
    def active_session(self) -> Any:
        tab = self.active_tab
        return tab.session if tab is not None and tab.kind == "agent" else None

    def on_mount(self) -> None:
        self.prompt.awaiting_answer = self._awaiting_answer
        self.set_interval(0.1, self._tick)
        self._update_title()
        self.index_files()
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        self.first_frame_at = time.monotonic()
        if self.kernel is None:
            from aegis_kernel import ConfigError

            try:
                assert self.kernel_factory is not None
                self.kernel = self.kernel_factory()
            except ConfigError as exc:
                self.exit(2, return_code=2, message=f"aegis: invalid configuration\n{exc}")
                return
        from aegis_kernel import setup_logging

        setup_logging(self.kernel)  # before the kernel's services import anything that logs
        self._install_panels()
        if not self.clean:
            try:
                self.workspace = load_workspace(workspace_path(self.kernel.state.root))
            except WorkspaceError as exc:
                self._ask_about_workspace(str(exc))
                return
        self.start_kernel()

    def _ask_about_workspace(self, problem: str) -> None:
        from .dialogs import Confirm

        def answer(choice: str | None) -> None:
            if choice == "fresh":
                moved = set_aside(workspace_path(self.kernel.state.root))
                self.notify(f"the unreadable workspace was kept as {moved.name}")
                self.workspace = {"tabs": [], "active": 0}
                self.start_kernel()
            else:
                self.exit(2, return_code=2, message=f"aegis: the saved workspace is unreadable: {problem}\n"
                                     "run `aegis tui --clean` to start fresh")

        self.push_screen(Confirm(
            f"{problem}\n\nThe agents' own sessions are still restored; only the tab layout is lost. "
            "Start without it (the file is kept aside), or quit (then `aegis tui --clean` starts fresh).",
            [("fresh", "Start fresh"), ("quit", "Quit")], title="the saved workspace is unreadable"), answer)

    # --- the trio guest -----------------------------------------------------------------------

    def start_kernel(self) -> None:
        """Start the kernel as a trio guest on this loop (once)."""
        if self._guest_done is not None:
            return
        import trio

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._signals.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self._guest_done = loop.create_future()
        trio.lowlevel.start_guest_run(
            self._trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=self._guest_finished,
            host_uses_signal_set_wakeup_fd=True,
        )

    async def _trio_main(self) -> None:
        import trio

        from aegis_kernel import acquire_owner

        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            if self._stopping:
                scope.cancel()
            if self.attach is not None:
                await self._attached()
                return
            # the project is ours (one kernel per project, shared with aegis serve) before any session
            # is restored; then the kernel restores the last run's sessions (unless --clean) before
            # services like the queue may start workers; a session that cannot come back is reported
            # (in a worker thread: a racing probe makes it wait a moment, never on Textual's loop)
            lock = await trio.to_thread.run_sync(acquire_owner, self.kernel.state.root, "tui", self.kernel.project_dir)
            with lock:
                await self._own_kernel()

    async def _own_kernel(self) -> None:
        import trio

        from aegis_kernel import ControlServer, open_kernel

        async with open_kernel(kernel=self.kernel, restore=not self.clean) as kernel:
            kernel.headless = False
            # the TUI serves the project's control socket: aegis send/sessions/stop reach it
            kernel.stop_handler = lambda: self.call_later(self.action_quit)
            await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
            withdraw_viewer = kernel.provide(AgentFileViewer(self))
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    restored = [] if self.clean else [s for s in kernel.sessions if s.restorable]
                    for problem in kernel.sessions.restore_problems:
                        self.notify(f"could not restore session {problem}", severity="error")
                    self.call_later(self._kernel_ready, restored)
                    if self.tour is not None:
                        nursery.start_soon(self._run_tour)
                    await trio.sleep_forever()
            finally:
                self._nursery = None
                withdraw_viewer()

    async def _attached(self) -> None:
        """Attached mode: mirror the owner's sessions until quitting (or until the owner goes away)."""
        import trio

        from .remote import Remote

        assert self.attach is not None
        async with trio.open_nursery() as nursery:
            viewer = Remote(self.attach, on_view_file=lambda rel: self.in_kernel(self.show_path, rel))
            remote = await nursery.start(viewer.run)
            self.remote = remote
            self._nursery = nursery
            try:
                self.call_later(self._kernel_ready, [])
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _run_tour(self) -> None:
        assert self.tour is not None
        try:
            await self.tour(self)
        except Exception as exc:  # noqa: BLE001 - the tour is a show; never take the app down
            log.exception("demo tour failed")
            self.notify(f"the demo tour stopped: {exc}", severity="error")

    def _guest_finished(self, outcome: Any) -> None:
        import trio

        try:
            outcome.unwrap()
        except BaseException as caught:  # noqa: BLE001
            from aegis_kernel import unwrap_group

            from .remote import RemoteGone

            exc = unwrap_group(caught) if isinstance(caught, BaseExceptionGroup) else caught
            if isinstance(exc, RemoteGone):
                log.warning("detached: %s", exc)
                self.exit_error = str(exc)
            elif not isinstance(exc, (trio.Cancelled, KeyboardInterrupt)):
                log.exception("the kernel stopped with an error", exc_info=exc)
                self.exit_error = f"{type(exc).__name__}: {exc}"
        self._token = None
        if self._guest_done is not None and not self._guest_done.done():
            self._guest_done.set_result(None)
        if not self._stopping:
            self._stopping = True
            what = "the Aegis this TUI was attached to went away" if self.attach is not None else "the kernel stopped"
            self.exit(1, return_code=1, message=f"aegis: {what}: {self.exit_error or 'unexpectedly'}")

    def _on_signal(self, sig: int) -> None:
        log.info("signal %s: quitting", sig)
        self.action_quit()

    def in_kernel(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Run ``fn(*args, **kwargs)`` in the kernel: a coroutine function as a task of the TUI's nursery,
        a plain function as a trio callback. Errors are shown as notifications. False when the kernel
        is not running."""
        import trio

        token, nursery = self._token, self._nursery
        if token is None or nursery is None or self._stopping:
            self.notify("the kernel is not running yet", severity="warning")
            return False
        call = functools.partial(fn, *args, **kwargs)

        async def task() -> None:
            try:
                await call()
            except Exception as exc:  # noqa: BLE001
                log.warning("kernel call failed: %s", exc)
                self.notify(str(exc), severity="error")

        def callback() -> None:
            if self._nursery is None:
                return
            if asyncio.iscoroutinefunction(fn) or asyncio.iscoroutinefunction(getattr(fn, "func", None)):
                self._nursery.start_soon(task)
                return
            try:
                call()
            except Exception as exc:  # noqa: BLE001
                log.warning("kernel call failed: %s", exc)
                self.notify(str(exc), severity="error")

        try:
            token.run_sync_soon(callback)
        except trio.RunFinishedError:
            return False
        return True

    def live_sessions(self) -> list[Any]:
        """The sessions tabs show: the kernel's own (owning) or the mirrored ones (attached)."""
        if self.remote is not None:
            return list(self.remote)
        if self.attach is not None or self.kernel is None:
            return []
        return list(self.kernel.sessions)

    def session_named(self, handle: str) -> Any:
        sessions = self.remote if self.remote is not None else (self.kernel.sessions if self.attach is None else None)
        return sessions.get(handle) if sessions is not None else None

    async def call_op(self, operation: str, **args: Any) -> Any:
        """Call ``operation`` as the user — on the attached owner, or in this kernel through its registry
        (the same authorization and validation as every transport). Raises with a message for people."""
        if self.remote is not None:
            return await self.remote.call(operation, args)
        from aegis_kernel import Caller, unwrap_group

        try:
            return await self.kernel.operations.call(self.kernel, operation, args, Caller(None, via="tui"))
        except BaseExceptionGroup as group:
            raise unwrap_group(group) from None

    def run_op(self, operation: str, then: Callable[[Any], Any] | None = None, **args: Any) -> bool:
        """:meth:`call_op` from Textual code: runs in the kernel's guest; ``then(result)`` runs there too
        (on this thread) when it succeeds; a failure is shown as a notification."""
        async def go() -> None:
            result = await self.call_op(operation, **args)
            if then is not None:
                then(result)

        return self.in_kernel(go)

    async def stop_kernel(self) -> None:
        """Cancel the guest and wait until it has finished (every agent process reaped)."""
        self._stopping = True
        if self._guest_done is None:
            return
        import trio

        token, scope = self._token, self._scope
        if token is not None and scope is not None:
            try:
                token.run_sync_soon(scope.cancel)
            except trio.RunFinishedError:
                pass
        await asyncio.shield(self._guest_done)

    def _remove_signal_handlers(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for sig in self._signals:
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self._signals.clear()

    async def on_unmount(self) -> None:
        if self._guest_done is not None and not self._guest_done.done():
            await self.stop_kernel()
        self._remove_signal_handlers()

    # --- quitting -----------------------------------------------------------------------------

    def action_quit(self) -> None:  # type: ignore[override]
        if getattr(self, "_quit_started", False):
            return
        self._quit_started = True
        self._quit()

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit(self) -> None:
        if self.kernel_ready:
            self.save_workspace()
        live = [s for s in self.live_sessions() if s.state != "closed"]
        if self.remote is not None:
            owner = self.remote.owner
            self.detached_note = (f"aegis: detached; aegis {owner.get('owner') or 'serve'} "
                                  f"(pid {owner.get('pid', '?')}) "
                                  f"keeps running {len(live)} session(s)")
            self.status.source = "detaching (the agents keep running)…"
        else:
            self.status.source = f"closing {len(live)} agent(s)…" if live else "bye"
        self.status.refresh()
        await self.stop_kernel()
        self._remove_signal_handlers()
        if self.exit_error:
            self.exit(1, return_code=1, message=f"aegis: the kernel stopped with an error: {self.exit_error}")
        else:
            self.exit(0)

    def action_quit_hint(self) -> None:
        self.notify("press Ctrl+Q to quit", timeout=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MODAL_SAFE:
            return True
        if not self.kernel_ready:
            return False
        if action.startswith("panel") or action == "dashboard":
            return True
        if isinstance(self.screen, ModalScreen):
            return False
        return True

    # --- kernel ready: build tabs -------------------------------------------------------------

    async def _kernel_ready(self, restored: list[Any]) -> None:
        self.kernel_ready = True
        welcome = self.query_one("#welcome", Static)
        welcome.update(Text("no tabs open · Ctrl+T new agent · Ctrl+N pick an agent · Ctrl+O open a file · "
                            "F2 config · Ctrl+Q quit", style="dim"))
        by_handle = {s.handle: s for s in self.live_sessions()}
        skipped = 0
        for rec in self.workspace.get("tabs", []):
            kind = rec.get("kind")
            if kind == "agent":
                session = by_handle.pop(rec["handle"], None)
                if session is None:
                    skipped += 1
                    continue
                await self.add_agent_tab(session, activate=False)
            elif kind == "file":
                path = self.kernel.project_dir / rec["path"]
                if path.is_file():
                    await self.open_file_tab(path, activate=False)
            elif kind == "panel":
                await self.open_panel_tab(rec["name"], arg=rec.get("arg"), activate=False)
            elif kind == "config":
                await self.open_config_tab(activate=False)
        for session in by_handle.values():
            await self.add_agent_tab(session, activate=False)
        if self.tabs:
            await self.switch_to(max(0, min(self.workspace.get("active", 0), len(self.tabs) - 1)))
        if restored or skipped:
            self.notify(f"↻ resumed {len(restored)} session(s)" + (f" · skipped {skipped}" if skipped else ""))
        if not (self.kernel.config.get("agents") or {}):
            await self.open_config_tab(activate=True)
        elif not self.tabs:
            self._show_welcome()
        self.save_workspace()

    def _show_welcome(self) -> None:
        self.query_one(ContentSwitcher).current = "welcome"
        self.prompt.display = False
        self.status.source = None
        self.status.refresh()

    # --- tabs ---------------------------------------------------------------------------------

    def tab_of(self, session: Any) -> Tab | None:
        return next((t for t in self.tabs if t.session is session), None)

    async def _add_tab(self, tab: Tab, *, activate: bool) -> Tab:
        tab.widget.display = False  # ContentSwitcher shows only the current child
        self.tabs.append(tab)
        await self.query_one(ContentSwitcher).mount(tab.widget)
        if activate or self.active < 0:
            await self.switch_to(len(self.tabs) - 1)
        self._tabs_changed()
        return tab

    async def focus_session(self, session: Any) -> None:
        tab = self.tab_of(session)
        if tab is not None:
            await self.switch_to(self.tabs.index(tab))

    async def add_agent_tab(self, session: Any, *, activate: bool = True, auto: bool = False) -> Tab:
        """A tab for ``session`` (its history first, then live events). ``auto``: opened because someone
        else spawned it (a queue worker, a peer's aegis_spawn); such a tab goes away when its session
        closes unless the user has looked at it."""
        existing = self.tab_of(session)
        if existing is not None:
            if activate:
                await self.switch_to(self.tabs.index(existing))
            return existing
        self._known.add(id(session))
        model = TranscriptModel()
        for event in session.history:
            model.apply(event)
        view = AgentView(session, model, id=f"tab-{next(self._seq)}")
        tab = Tab(key=view.id or "", kind="agent", title=session.handle, widget=view, session=session)
        tab.extra["auto"] = auto
        tab.unsubscribe = session.subscribe(functools.partial(self._on_session_event, tab))
        return await self._add_tab(tab, activate=activate)

    def _on_session_event(self, tab: Tab, session: Any, event: Any) -> None:
        """A session listener (runs in the kernel, on this thread): fold the event, coalesce the repaint."""
        if self._stopping:
            return
        view = tab.widget
        if event is RESYNCED:  # an attached mirror was rebuilt after a lag: redraw it from its history
            model = TranscriptModel()
            for past in session.history:
                model.apply(past)
            view.transcript.replace_model(model)
            return
        block = view.transcript.model.apply(event)
        view.transcript.note_change(block)
        self._dirty.add(view)
        if type(event).__name__ == "StateChanged":
            self._on_state(tab, event)
        if not self._flush_posted:
            self._flush_posted = True
            self.post_message(self._Flush())

    def _on_state(self, tab: Tab, event: Any) -> None:
        is_active = tab is self.active_tab
        finished = event.old in ("working", "input-required") and event.new in ("ready", "error")
        needs_me = event.new in ("input-required", "error")
        if not is_active and (finished or needs_me):
            tab.star = True
            if not tab.extra.get("auto") or needs_me:
                self.bell()
        if event.new == "closed" and not is_active and tab.extra.get("auto"):
            self.call_later(self._drop_tab, tab)

    @on(_Flush)
    def _apply_changes(self) -> None:
        self._flush_posted = False
        dirty, self._dirty = self._dirty, set()
        for view in dirty:
            if view.is_mounted:
                view.transcript.flush()

    async def _drop_tab(self, tab: Tab) -> None:
        if tab in self.tabs and tab is not self.active_tab:
            await self.remove_tab(tab)

    async def remove_tab(self, tab: Tab) -> None:
        if tab not in self.tabs:
            return
        index = self.tabs.index(tab)
        was_active = index == self.active
        if tab.unsubscribe is not None:
            tab.unsubscribe()
        self.tabs.remove(tab)
        self._dirty.discard(tab.widget)
        if index < self.active or (was_active and self.active >= len(self.tabs)):
            self.active -= 1
        if tab.widget is not None:
            await tab.widget.remove()
        if self.tabs:
            await self.switch_to(max(0, self.active), force=True)
        else:
            self.active = -1
            self._show_welcome()
        self._tabs_changed()

    async def switch_to(self, index: int, *, force: bool = False) -> None:
        if not (0 <= index < len(self.tabs)):
            return
        previous = self.active_tab
        if previous is not None and previous.kind == "agent" and previous is not self.tabs[index]:
            previous.draft = self.prompt.text
        self.active = index
        tab = self.tabs[index]
        tab.star = False
        tab.extra["auto"] = False
        switcher = self.query_one(ContentSwitcher)
        switcher.current = tab.widget.id
        is_agent = tab.kind == "agent"
        self.prompt.display = is_agent
        if is_agent:
            if previous is not tab or force:
                self.prompt.load_text(tab.draft)
            self.prompt.focus()
            self.status.source = tab.session
            tab.widget.working.tick()
            self.call_after_refresh(tab.widget.transcript.flush)
        else:
            self.status.source = self._status_for(tab)
            focus = getattr(tab.widget, "focus_content", None)
            if focus is not None:
                focus()
            else:
                tab.widget.focus()
        self.status.refresh()
        self._tabs_changed()

    def _status_for(self, tab: Tab) -> str:
        if tab.kind == "file":
            return f"{tab.title} · e edit · Ctrl+S save · Esc stop editing · Ctrl+W close"
        if tab.kind == "config":
            return "config · a add agent · r reload · Ctrl+W close"
        return f"{tab.title} · Ctrl+W close"

    def _tabs_changed(self) -> None:
        self.tab_bar.set_tabs(self.tabs, self.active)
        self._update_title()
        if self.kernel_ready and not self._save_pending:
            self._save_pending = True
            self.set_timer(0.3, self._debounced_save)

    def _debounced_save(self) -> None:
        self._save_pending = False
        if not self._stopping:
            self.save_workspace()

    def save_workspace(self) -> None:
        records = [r for r in (t.record(self.kernel.project_dir) for t in self.tabs) if r is not None]
        try:
            save_workspace(workspace_path(self.kernel.state.root), records, max(0, self.active))
        except OSError as exc:
            log.warning("cannot save the workspace: %s", exc)

    def _update_title(self) -> None:
        agents = sum(1 for t in self.tabs if t.kind == "agent")
        where = str(self.project_dir)
        home = str(Path.home())
        if where.startswith(home):
            where = "~" + where[len(home):]
        label = self.title_text or "aegis"
        self.query_one("#title", Static).update(
            Text.assemble((label, "bold"), f" · {agents} agent{'s' if agents != 1 else ''} · ", (where, "dim")))

    def _tick(self) -> None:
        tab = self.active_tab
        if tab is not None and tab.kind == "agent":
            tab.widget.working.tick()
            self.status.refresh()
        if self.kernel_ready and not self._stopping:
            for session in self.live_sessions():
                if id(session) not in self._known and session.state != "closed":
                    self._known.add(id(session))
                    mine = session.handle in self._focus_next  # spawned here: in front, never auto-closed
                    self._focus_next.discard(session.handle)
                    self.call_later(self.add_agent_tab, session, activate=mine, auto=not mine)
        sig = tuple((t.label(), t.state, t.star, t.extra.get("dirty")) for t in self.tabs)
        if sig != self._bar_sig:
            self._bar_sig = sig
            self.tab_bar.refresh()
            self._update_title()
        self._show_config_error()

    def _show_config_error(self) -> None:
        """A config edit the running kernel refused (live reload) is shown once, with its file:line problems."""
        error = getattr(self.kernel, "config_error", None) if self.kernel_ready else None
        if error is not getattr(self, "_config_error_shown", None):
            self._config_error_shown = error
            if error is not None:
                self.notify(f"config edit refused, the last good config stays:\n{error}", severity="error",
                            timeout=15)

    # --- actions: tabs ------------------------------------------------------------------------

    def spawn_agent(self, agent: str | None = None, *, prompt: str | None = None) -> None:
        """``aegis_spawn``; the new session's tab opens in front as soon as this TUI sees the session."""
        def spawned(result: Any) -> None:
            handle = result["handle"]
            session = self.session_named(handle)
            if session is not None:  # (a tab the tick opened meanwhile is brought to the front)
                self._known.add(id(session))
                self.call_later(self.add_agent_tab, session, activate=True)
            elif session is None:
                self._focus_next.add(handle)  # attached: its mirror arrives with the stream

        self.run_op("aegis_spawn", spawned, agent=agent, prompt=prompt)

    def action_new_tab(self) -> None:
        if not (self.kernel.config.get("agents") or {}):
            self.notify("no agents configured yet: add one in the config panel (F2, then a)", severity="warning")
            self.run_worker(self.open_config_tab(activate=True))
            return
        self.spawn_agent(None)

    def action_pick_agent(self) -> None:
        agents = self.kernel.config.get("agents") or {}
        if not agents:
            self.action_new_tab()
            return
        default = self.kernel.config.get("default_agent")
        choices = [(name, f"{p.provider}{' · ' + p.model if p.model else ''}{' · default' if name == default else ''}")
                   for name, p in agents.items()]

        def chosen(name: str | None) -> None:
            if name:
                self.spawn_agent(name)

        from .dialogs import AgentPicker

        self.push_screen(AgentPicker(choices), chosen)

    async def action_close_tab(self) -> None:
        tab = self.active_tab
        if tab is None:
            return
        if tab.kind == "file" and tab.widget.dirty:
            from .dialogs import Confirm

            def answer(choice: str | None) -> None:
                if choice == "save":
                    tab.widget.action_save()
                if choice in ("save", "discard"):
                    self.run_worker(self._close(tab))

            self.push_screen(Confirm(f"{tab.widget.rel} has unsaved edits.",
                                     [("save", "Save"), ("discard", "Discard"), ("cancel", "Cancel")]), answer)
            return
        await self._close(tab)

    async def _close(self, tab: Tab) -> None:
        if tab.kind == "agent" and tab.session is not None and tab.session.state != "closed":
            self.run_op("aegis_close", handle=tab.session.handle)
        await self.remove_tab(tab)
        if not self.tabs:
            self.action_quit()  # closing the last tab quits

    async def action_next_tab(self) -> None:
        if self.tabs:
            await self.switch_to((self.active + 1) % len(self.tabs))

    async def action_prev_tab(self) -> None:
        if self.tabs:
            await self.switch_to((self.active - 1) % len(self.tabs))

    async def action_switch_tab(self, number: int) -> None:
        if 1 <= number <= len(self.tabs):
            await self.switch_to(number - 1)

    def action_move_tab(self, delta: int) -> None:
        """Move the active tab ``delta`` places (the first tab left / the last right: nothing). The bar's
        indexes and Ctrl/Alt+1..9 follow the new order; workspace.json keeps it (debounced save)."""
        i = self.active
        j = i + delta
        if not (0 <= i < len(self.tabs)) or not (0 <= j < len(self.tabs)):
            return
        self.tabs[i], self.tabs[j] = self.tabs[j], self.tabs[i]
        self.active = j
        self._tabs_changed()

    @on(TabBar.Selected)
    async def _tab_clicked(self, event: TabBar.Selected) -> None:
        await self.switch_to(event.index)

    # --- input --------------------------------------------------------------------------------

    def _awaiting_answer(self) -> bool:
        session = self.active_session
        return session is not None and session.state == "input-required" and session.pending_permission is not None

    @on(PromptInput.Submitted)
    def _submitted(self, event: PromptInput.Submitted) -> None:
        session = self.active_session
        if session is None:
            self.notify("no agent in this tab (Ctrl+T starts one)", severity="warning")
            return
        def sent(receipt: Any) -> None:
            position = receipt.get("position") if isinstance(receipt, dict) else None
            if position:
                if self.remote is not None:
                    session.pending_count = max(session.pending_count, position)  # no bus item says so
                self.notify(f"queued behind the running turn (#{position})", timeout=2)

        self.run_op("aegis_send", sent, handle=session.handle, text=event.text)

    @on(PromptInput.Answered)
    def _answered(self, event: PromptInput.Answered) -> None:
        session = self.active_session
        if session is not None:
            if event.allow:
                self.run_op("aegis_approve", handle=session.handle, always=event.always)
            else:
                self.run_op("aegis_deny", handle=session.handle)

    def action_interrupt(self) -> None:
        session = self.active_session
        if session is not None and session.busy:
            self.run_op("aegis_interrupt", handle=session.handle)
            self.notify("interrupting…", timeout=1.5)

    @on(Transcript.Copied)
    def _copied(self, event: Transcript.Copied) -> None:
        self.notify(f"copied {len(event.text):,} characters", timeout=1.5)

    # --- files --------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def index_files(self) -> None:
        self.indexing = True
        try:
            self.files = scan(self.project_dir)
            self._indexed_at = time.monotonic()
        finally:
            self.indexing = False

    def action_open_file(self) -> None:
        if time.monotonic() - self._indexed_at > 5 and not self.indexing:
            self.index_files()

        def chosen(rel: str | None) -> None:
            if rel:
                self.run_worker(self.open_file_tab(self.kernel.project_dir / rel, activate=True))

        from .dialogs import FilePicker

        self.push_screen(FilePicker(lambda: self.files, lambda: self.indexing), chosen)

    async def open_file_tab(self, path: Path, *, activate: bool = True) -> Tab:
        path = path.resolve()
        for i, t in enumerate(self.tabs):
            if t.kind == "file" and t.path == path:
                if activate:
                    await self.switch_to(i)
                return t
        from .fileview import FileView

        view = FileView(path, self.kernel.project_dir, id=f"tab-{next(self._seq)}")
        tab = Tab(key=view.id or "", kind="file", title=path.name, widget=view, path=path)
        return await self._add_tab(tab, activate=activate)

    def on_file_view_dirty_changed(self, event: Any) -> None:
        for t in self.tabs:
            if t.widget is event.view:
                t.extra["dirty"] = event.view.dirty

    async def _view_file_for_agent(self, path: str) -> dict[str, Any]:
        """What :class:`AgentFileViewer` does for ``aegis_view_file`` (inbox plugin) while the TUI runs."""
        root = self.kernel.project_dir.resolve()
        target = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
        if not target.is_relative_to(root):
            return {"status": "refused", "message": f"{path} is outside the project ({root})"}
        if not target.is_file():
            return {"status": "not_found", "message": f"no such file: {path}"}
        rel = target.relative_to(root).as_posix()
        await self.show_path(rel)
        return {"status": "opened", "path": rel}

    async def claimant(self, rel: str) -> str | None:
        """The first ``kind="tab"`` panel whose ``claims`` says it shows project file ``rel`` (runs in the
        kernel's trio context: a claim may ask the owner through :meth:`call_op`); None when none does."""
        for name, spec in self.panels.items():
            claims = spec.get("claims")
            if claims is None or spec.get("kind") != "tab":
                continue
            try:
                claimed = claims(self, self.kernel, rel)
                if inspect.isawaitable(claimed):
                    claimed = await claimed
            except Exception:  # noqa: BLE001 - a broken claim never stops the file from showing
                log.exception("panel %s failed to claim %s", name, rel)
                continue
            if claimed:
                return name
        return None

    async def show_path(self, rel: str) -> None:
        """``aegis_view_file``'s target (owning or attached): the tab that claims ``rel`` (told
        ``show_path(rel)`` when its widget has it), else a file tab. Runs in the kernel's trio context."""
        name = await self.claimant(rel)
        if name is None:
            self.call_later(self.open_file_tab, self.project_dir / rel, activate=True)
            return

        async def open_claimed() -> None:
            tab = await self.open_panel_tab(name, activate=True)
            widget = tab.widget.children[0] if tab is not None and tab.widget.children else None
            show = getattr(widget, "show_path", None)
            if callable(show):
                show(rel)

        self.call_later(open_claimed)

    # --- config and panels --------------------------------------------------------------------

    async def action_config(self) -> None:
        await self.open_config_tab(activate=True)

    async def open_config_tab(self, *, activate: bool = True) -> Tab:
        for i, t in enumerate(self.tabs):
            if t.kind == "config":
                if activate:
                    t.widget.refresh_summary()
                    await self.switch_to(i)
                return t
        from .config_panel import ConfigPanel

        view = ConfigPanel(self.kernel, id=f"tab-{next(self._seq)}")
        tab = Tab(key=view.id or "", kind="config", title="config", widget=view)
        return await self._add_tab(tab, activate=activate)

    def on_config_panel_agent_added(self, event: Any) -> None:
        self.notify(f"agent '{event.name}' added · Ctrl+N starts it", timeout=4)

    @property
    def panels(self) -> dict[str, dict[str, Any]]:
        return self.kernel.plugins.registry.objects("panels")

    def _install_panels(self) -> None:
        strips = self.query_one("#strips", Vertical)
        for name, spec in self.panels.items():
            if spec.get("kind") == "strip":
                try:
                    widget = spec["factory"](self, self.kernel)
                except Exception as exc:  # noqa: BLE001 - a broken plugin panel never breaks the TUI
                    log.exception("panel %s failed", name)
                    self.notify(f"panel '{name}' failed: {exc}", severity="error")
                    continue
                strips.mount(widget)
            key = spec.get("key")
            if key and spec.get("kind") != "band":
                binding = Binding(key, f"panel('{name}')", spec.get("title") or name, priority=True)
                self._bindings._add_binding(binding)  # Textual has no public API for a priority binding
        if any(spec.get("kind") == "band" for spec in self.panels.values()):
            self._bindings._add_binding(Binding("ctrl+d", "dashboard", "dashboard", priority=True))

    async def action_dashboard(self) -> None:
        """Ctrl+D: open the dashboard of every ``kind="band"`` panel, or close it when it is in front."""
        from .dashboard import Dashboard, bands

        current = self.screen
        if isinstance(current, Dashboard):
            current.dismiss(None)
            return
        if isinstance(current, ModalScreen):
            return
        await self.push_screen(Dashboard(self, self.kernel, bands(self.panels)))

    async def action_panel(self, name: str) -> None:
        spec = self.panels.get(name)
        if spec is None:
            return
        kind = spec.get("kind")
        if kind == "modal":
            current = self.screen
            if getattr(current, "_aegis_panel", None) == name or getattr(current, "panel_name", None) == name:
                current.dismiss(None)
                return
            if isinstance(current, ModalScreen):
                return
            try:
                made = spec["factory"](self, self.kernel)
            except Exception as exc:  # noqa: BLE001
                log.exception("panel %s failed", name)
                self.notify(f"panel '{name}' failed: {exc}", severity="error")
                return
            screen = made if isinstance(made, Screen) else PanelModal(made, name)
            screen._aegis_panel = name  # type: ignore[attr-defined]
            await self.push_screen(screen)
        elif kind == "tab":
            if isinstance(self.screen, ModalScreen):
                return
            await self.open_panel_tab(name, activate=True)

    async def open_panel_tab(self, name: str, *, arg: str | None = None, activate: bool = True) -> Tab | None:
        """Open (or bring forward) the ``kind="tab"`` panel ``name``; with ``arg``, the one tab of that panel
        for that argument: ``factory(app, kernel, arg)``, titled from the registration's ``arg_title``,
        saved in the workspace with its ``arg`` and opened again with it on restore. None when the panel
        is unknown or its factory failed (the user is told)."""
        spec = self.panels.get(name)
        if spec is None or spec.get("kind") != "tab":
            return None
        for i, t in enumerate(self.tabs):
            if t.kind == "panel" and t.panel == name and t.arg == arg:
                if activate:
                    await self.switch_to(i)
                return t
        try:
            widget = spec["factory"](self, self.kernel) if arg is None else spec["factory"](self, self.kernel, arg)
        except Exception as exc:  # noqa: BLE001
            log.exception("panel %s failed", name)
            self.notify(f"panel '{name}' failed: {exc}", severity="error")
            return None
        title = spec.get("title") or name
        if arg is not None:
            title = (spec.get("arg_title") or title + ":{arg}").replace("{arg}", arg)
        holder = Vertical(widget, id=f"tab-{next(self._seq)}", classes="panel-tab")
        tab = Tab(key=holder.id or "", kind="panel", title=title, widget=holder, panel=name, arg=arg)
        return await self._add_tab(tab, activate=activate)

    async def close_panel_tab(self, widget: Any) -> None:
        """Close the panel tab that holds ``widget`` (nothing when no tab holds it); closing the last tab
        quits, as Ctrl+W does."""
        for tab in list(self.tabs):
            holder = tab.widget
            if tab.kind == "panel" and holder is not None and (holder is widget or widget in holder.children):
                await self._close(tab)
                return
