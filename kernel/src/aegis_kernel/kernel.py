"""The kernel: builds everything from config + plugins and runs it in one trio nursery.

    async with open_kernel(project_dir) as kernel:
        session = await kernel.sessions.spawn("reviewer", prompt="hello")

Building is synchronous (plugins, registrations, config); running starts every registered service in
registration order with ``nursery.start`` and yields once all of them are ready. Leaving the block
cancels the nursery: every service stops and every agent process is reaped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from . import reaper
from .approvals import ApprovalBroker
from .bus import EventBus
from .clock import Clock
from .config import Config, ConfigError, load_config, raw_plugin_dirs, raw_plugins_disabled
from .config_sections import schema_of
from .config_watch import ConfigWatcher, apply_config
from .project import resolve_project_dir
from .delivery import Delivery, Envelope, Receipt
from .drivers import Driver
from .events import collect_event_types
from .operations import OperationRegistry, load_ref
from .plugins import PluginHost, load_plugins
from .serviceruntime import ServiceRunner
from .services import ServiceError
from .sessions import SessionError, SessionManager
from .state import StateDir, secure_tree

log = logging.getLogger("aegis.kernel")
T = TypeVar("T")


class Hooks:
    """Typed façade over the observer hooks. Each call is one ``pm.hook`` call in which every
    implementation runs; one that raises is logged with its plugin's name, never fatal
    (:func:`aegis_kernel.hookcall.notify`)."""

    def __init__(self, host: PluginHost) -> None:
        self._host = host

    def aegis_session_started(self, **kw: Any) -> None:
        self._host.notify("aegis_session_started", **kw)

    def aegis_session_state_changed(self, **kw: Any) -> None:
        self._host.notify("aegis_session_state_changed", **kw)

    def aegis_turn_finished(self, **kw: Any) -> None:
        self._host.notify("aegis_turn_finished", **kw)

    def aegis_envelope_delivered(self, **kw: Any) -> None:
        self._host.notify("aegis_envelope_delivered", **kw)

    def aegis_session_closed(self, **kw: Any) -> None:
        self._host.notify("aegis_session_closed", **kw)

    def aegis_config_changed(self, **kw: Any) -> None:
        self._host.notify("aegis_config_changed", **kw)


class Kernel:
    def __init__(self, project_dir: Path, plugins: PluginHost, config: Config) -> None:
        self.project_dir = project_dir
        self.plugins = plugins
        self.config = config
        self.clock = Clock()  # wall + trio time; tests replace it or drive it with trio's MockClock
        self.hooks = Hooks(plugins)
        self.event_type_problems = collect_event_types(plugins.pm.hook)  # plugins' events replay typed
        self.state = StateDir(project_dir / ".aegis" / "state")
        self.bus = EventBus()  # what happens here, for every interface that watches (aegis_subscribe)
        self.operations = OperationRegistry()
        for op in plugins.registry.objects("operations").values():
            self.operations.add(op)
        self.approvals = ApprovalBroker(driver_for=self.driver_for)
        self.delivery = Delivery(self.state.path("inboxes"), writer=self.state.writer)
        self.sessions = SessionManager(self)
        self.mcp_base_url: str | None = None  # informational (status, banner), set by the MCP plugin
        self.services: dict[str, Any] = {}  # running services by registered name (informational)
        self._running = ServiceRunner(self)
        self.headless = True
        self.stop_handler: Callable[[], object] | None = None  # set by the owner: serve, TUI
        self.config_error: ConfigError | None = None  # a config edit refused by the live reload
        self._nursery: trio.Nursery | None = None

    def reload_config(self) -> Config:
        """Re-read the configuration (after an edit through ``aegis_kernel.config``'s edit API).

        Raises ``ConfigError`` and keeps the current config when the files on disk are invalid; a
        new config fires ``aegis_config_changed`` (see :mod:`aegis_kernel.config_watch`).
        """
        schema = schema_of(self.plugins, self.project_dir)
        apply_config(self, load_config(self.config.path or self.project_dir, **schema))
        return self.config

    def request_stop(self) -> bool:
        """Ask whoever owns this kernel (``aegis serve``, the TUI) to stop it, as ``aegis_stop`` does.

        The owner installs ``stop_handler`` (a plain callable); False when none is installed."""
        handler = self.stop_handler
        if handler is None:
            return False
        handler()
        return True

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the kernel is not running (use `async with open_kernel(...)`)")
        return self._nursery

    def driver_for(self, provider: str) -> Driver | None:
        """The registered driver of ``provider`` (an agent profile's ``provider`` key), None if none is."""
        driver: Driver | None = self.plugins.registry.objects("drivers").get(provider)
        return driver

    def deliver(self, handle: str, envelope: Envelope) -> Receipt:
        """Persist ``envelope`` for ``handle`` and hand it over (wake or buffer)."""
        session = self.sessions.require(handle)
        return self.delivery.deliver(session, envelope)

    async def run_services(self, nursery: trio.Nursery) -> None:
        """Start every registered service in dependency order (:mod:`aegis_kernel.services`); returns
        once all are ready. Raises ``ServiceError`` before starting any when a dependency is missing
        or circular."""
        self._nursery = nursery
        await self._running.start_all(nursery)

    async def stop_services(self) -> None:
        """Stop the running services one by one, in the reverse of the order they started."""
        await self._running.stop_all()

    def service(self, kind: type[T]) -> T:
        """The running service (or the object it published with ``task_status.started(obj)``) of type
        ``kind``. Raises ``ServiceError`` naming the type when none is running."""
        found = self.find_service(kind)
        if found is None:
            raise ServiceError(f"no running service provides {kind.__module__}:{kind.__qualname__} "
                               "(is its plugin installed and enabled, and is the kernel running?)")
        return found

    def find_service(self, kind: type[T]) -> T | None:
        """Like :meth:`service`, None when no running service provides ``kind``."""
        return self._running.find(kind)

    def provide(self, obj: Any) -> Callable[[], None]:
        """Publish ``obj`` for :meth:`find_service` while something that is not a service runs (the
        TUI's ``FileViewer``). Returns the function that withdraws it."""
        return self._running.provide(obj)


def build_kernel(project_dir: Path | str | None = None, *, extra_plugins: Iterable[tuple[str, Any]] = (),
                 entry_points: bool = True, disabled: Iterable[str] = ()) -> Kernel:
    """Load plugins and config for ``project_dir`` (default: the folder of the nearest .aegis.yaml,
    else the cwd). Raises ``ConfigError`` for a bad config."""
    project = resolve_project_dir(project_dir)
    blocked = set(disabled) | set(raw_plugins_disabled(project))
    host = load_plugins(disabled=blocked, entry_points=entry_points, extra=extra_plugins,
                        dirs=raw_plugin_dirs(project))
    config = load_config(project, **schema_of(host, project))
    return Kernel(project, host, config)


def unwrap_group(group: BaseExceptionGroup) -> BaseException:
    """The single leaf of a nested group of one, else the group itself (callers see plain errors)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def setup_logging(kernel: Kernel) -> None:
    """Send logs to .aegis/state/aegis.log (never stderr: the TUI draws there), owner-only (0600),
    every line redacted (:class:`aegis_kernel.redact.RedactingFormatter`: no token or secret URL
    reaches the file)."""
    from .redact import RedactingFormatter

    root = logging.getLogger()
    path = kernel.state.path("aegis.log")
    if any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600))
    handler = logging.FileHandler(path)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if root.level == logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


@asynccontextmanager
async def open_kernel(project_dir: Path | str | None = None, *, kernel: Kernel | None = None,
                      restore: bool | None = None, **build: Any) -> AsyncIterator[Kernel]:
    """Build (unless ``kernel`` is given) and run a kernel; yields once every service is ready.

    ``restore=True`` brings back the previous run's live sessions before yielding, ``False`` starts
    clean (forgets them), None does neither (the snapshot stays for a later run). Either way
    ``kernel.sessions.restored`` is set before this yields: services wait on it before they start
    agents of their own, so a worker never takes a handle a restored session needs.
    """
    kernel = kernel or build_kernel(project_dir, **build)
    # the state is the owner's only (0700 folders, 0600 files); the walk runs off the loop (the TUI's too)
    await trio.to_thread.run_sync(secure_tree, kernel.state.root)
    setup_logging(kernel)
    pgroups = await reaper.start(kernel.state.root)  # reaps groups a killed kernel left; records ours
    try:
        async with trio.open_nursery() as nursery:
            await kernel.run_services(nursery)
            await nursery.start(ConfigWatcher().run, kernel)  # valid config edits apply live
            if restore is True:
                await kernel.sessions.restore()
            elif restore is False:
                kernel.sessions.clear_saved()
            kernel.sessions.restored.set()
            try:
                yield kernel
            finally:
                with trio.CancelScope(shield=True):
                    await kernel.stop_services()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
    finally:
        kernel.delivery.close()
        kernel.sessions.close_transcripts()
        kernel.state.writer.close()  # what is queued reaches the disk before the kernel is gone
        reaper.stop(pgroups)
        kernel._nursery = None


__all__ = ["Kernel", "open_kernel", "build_kernel", "SessionError"]
