"""Live configuration: the kernel watches ``.aegis.yaml`` and the overlays and applies valid edits.

- A valid edit replaces ``kernel.config`` (new agents are spawnable at once, plugins see new values)
  and fires ``aegis_config_changed(config, old)``; work in flight keeps what it started with
  (a running session keeps its profile, a queued task its queue's spec until the queue re-reads it).
- An invalid edit changes nothing: the last good config stays, the ``file:line: message @ key.path``
  problems go to ``aegis.log`` and to ``kernel.config_error`` (the TUI and ``aegis doctor`` — through
  the control socket's ``ping`` — show it) until a later edit is valid again.
- ``plugins.disabled`` is read when plugins load: changing it takes effect at the next start (logged).
- Plugin folders (``plugins.dirs``) are watched too: a module that changes, appears or goes is loaded
  again (:func:`sync_folder_plugins`: its hooks and operations; a service of it starts at the next
  start), and so is a folder added to or removed from ``plugins.dirs``. The import itself runs on the
  event loop, like every plugin import (a plugin module is expected to be import-light).

The watcher is :class:`ConfigWatcher`, run by the kernel in its nursery. It uses watchfiles' Rust
notifier directly (``RustNotify``, the engine under ``watchfiles.awatch``) so that it is *armed* before
it reports ready — an edit made once ``open_kernel`` has yielded is never missed — and so that waiting
is a plain trio worker thread, abandoned on cancellation (stopping the kernel never waits for it) and
stopped through a ``threading.Event`` the notifier polls every step.
It watches, without recursion, the project folder (for ``.aegis.yaml``), ``.aegis/`` (new overlay
folders) and each ``.aegis/<section>/`` overlay folder; ``.aegis/state`` and ``.aegis/worktrees`` are
never watched. Loading a candidate config runs in a worker thread: nothing blocks the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .config import (CONFIG_NAME, NOT_OVERLAYS, OVERLAY_DIR, OVERLAY_SUFFIXES, Config, ConfigError, config_validator,
                     load_config)
from .config_sections import remember_sections, schema_of

if TYPE_CHECKING:
    from .kernel import Kernel

log = logging.getLogger("aegis.config")

__all__ = ["ConfigWatcher", "apply_config", "plugin_dirs", "reload_config", "sync_folder_plugins", "validator_for"]

STEP_MS = 50  # a burst of writes is one change once the files are quiet for this long
DEBOUNCE_MS = 1_600  # …or at the latest after this long
TIMEOUT_MS = 5_000  # the notifier thread returns this often even when nothing happens


def apply_config(kernel: Kernel, new: Config) -> None:
    """Make ``new`` the kernel's config, clear ``kernel.config_error`` and tell the plugins
    (``aegis_config_changed``; an observer that raises is logged with its plugin's name)."""
    from .hookcall import notify

    old = kernel.config
    kernel.config = new
    kernel.config_error = None
    if _disabled(old) != _disabled(new):
        log.warning("plugins.disabled changed: plugins are enabled or disabled at the next start")
    if plugin_dirs(old) != plugin_dirs(new):
        sync_folder_plugins(kernel)
    notify(kernel.plugins.pm, "aegis_config_changed", config=new, old=old, kernel=kernel)


def plugin_dirs(config: Config) -> tuple[Path, ...]:
    """``plugins.dirs`` of ``config``, resolved against its project folder."""
    plugins = config.get("plugins")
    return tuple((config.project_dir / Path(d).expanduser()).resolve() for d in getattr(plugins, "dirs", ()))


def sync_folder_plugins(kernel: Kernel) -> list[str]:
    """Load again the plugin folders' modules that changed, appeared or went, and make the kernel's
    operations match the plugins' registrations. Returns the names of the plugins reloaded."""
    from .plugins import FOLDER_DIST

    host = kernel.plugins
    owned = {name for info in host.infos.values() if info.dist == FOLDER_DIST
             for name in info.registered.get("operations", [])}
    changed = host.reload_folders(plugin_dirs(kernel.config))
    if changed:
        registered = host.registry.objects("operations")
        for name in owned - set(registered):  # a reloaded module no longer registers it
            kernel.operations.remove(name)
        for op in registered.values():
            kernel.operations.add(op)
        for name in changed:
            info = host.infos.get(name)
            if info is None:
                log.info("plugin %s: its file is gone, unloaded", name)
            elif info.status == "failed":
                log.error("plugin %s failed to load: %s", name, info.error)
            else:
                log.info("plugin %s (re)loaded from %s", name, info.file)
    return changed


def _disabled(config: Config) -> object:
    plugins = config.raw.get("plugins")
    return plugins.get("disabled") if isinstance(plugins, dict) else None


def validator_for(kernel: Kernel, path: Path | str) -> Callable[[Path], Config]:
    """A ``validate`` for ``set_key``/``edit_config`` of ``path`` that judges a candidate exactly as
    ``kernel`` loads its config: every section, its check, the registered drivers, dormant sections."""
    return config_validator(path, **schema_of(kernel.plugins, kernel.project_dir))


def _load(kernel: Kernel) -> Config:
    return load_config(kernel.config.path or kernel.project_dir, **schema_of(kernel.plugins, kernel.project_dir))


async def reload_config(kernel: Kernel) -> bool:
    """Re-read the files; apply them when valid and different. Returns whether the config changed.

    An invalid config is kept out: ``kernel.config_error`` is set and the problems are logged once.
    """
    try:
        new = await trio.to_thread.run_sync(_load, kernel)
    except ConfigError as exc:
        if str(exc) != str(kernel.config_error or ""):
            log.error("config edit refused, keeping the last good config:\n%s", exc)
        kernel.config_error = exc
        return False
    if new.raw == kernel.config.raw and new.overlays == kernel.config.overlays:
        if kernel.config_error is not None:
            log.info("config is valid again (unchanged from the one in use)")
        kernel.config_error = None
        return False
    apply_config(kernel, new)
    for warning in new.warnings:
        log.warning("config: %s", warning)
    log.info("config reloaded from %s", new.path or kernel.project_dir)
    return True


def _watch_paths(project: Path, plugin_folders: tuple[Path, ...] = ()) -> list[Path]:
    """The folders to watch (no recursion): project, ``.aegis/`` and its overlay folders, if present,
    and the plugin folders that exist."""
    paths = [project, *(p for p in plugin_folders if p.is_dir() and p != project)]
    root = project / OVERLAY_DIR
    if root.is_dir():
        paths.append(root)
        paths += sorted(p for p in root.iterdir()
                        if p.is_dir() and p.name not in NOT_OVERLAYS and not p.name.startswith("."))
    return paths


def _relevant(project: Path, changes: set[tuple[int, str]]) -> tuple[bool, bool]:
    """``(config touched, watch set must change)`` for a batch of ``(change, path)`` notifications."""
    root = project / OVERLAY_DIR
    touched = rewatch = False
    for _, raw in changes:
        path = Path(raw)
        if path == project / CONFIG_NAME:
            touched = True
        elif path == root or (path.parent == root and path.name not in NOT_OVERLAYS and not path.name.startswith(".")
                              and (path.is_dir() or (not path.exists() and not path.suffix))):
            touched = rewatch = True  # .aegis/ or a section folder appeared, went or was replaced
            # (a plain file in .aegis/, such as prices.json, is no overlay)
        elif path.parent.parent == root and path.parent.name not in NOT_OVERLAYS \
                and path.suffix in OVERLAY_SUFFIXES and not path.name.startswith("."):
            touched = True
    return touched, rewatch


class ConfigWatcher:
    """Kernel service: applies config edits live (see the module docstring). Ready once armed."""

    async def run(self, kernel: Kernel, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        for warning in kernel.config.warnings:
            log.warning("config: %s", warning)
        try:  # so that uninstalling a plugin later keeps its section (a warning), not an unknown one
            await trio.to_thread.run_sync(remember_sections, kernel.project_dir, kernel.plugins)
        except OSError as exc:
            log.warning("cannot record the config sections' owners: %s", exc)
        stop = threading.Event()
        try:
            await self._watch(kernel, stop, task_status)
        finally:  # an abandoned notifier thread sees this within a step, returns and drops its notifier
            stop.set()
        await trio.sleep_forever()  # watching is off (no notifier): stay a quiet service until cancelled

    async def _watch(self, kernel: Kernel, stop: threading.Event, task_status: Any) -> None:
        from watchfiles._rust_notify import RustNotify

        project = kernel.project_dir
        ready = False
        while True:
            folders = plugin_dirs(kernel.config)
            paths = _watch_paths(project, folders)
            try:
                notifier = await trio.to_thread.run_sync(
                    lambda: RustNotify([str(p) for p in paths], False, False, 300, False, True))
            except Exception as exc:  # noqa: BLE001 - no inotify (limits, odd fs): run without live reload
                log.warning("config edits will need a restart: cannot watch %s (%s)", project, exc)
                if not ready:
                    task_status.started()
                return
            if not ready:
                ready = True
                task_status.started()
            else:  # the watch set changed: files may have changed while it was being rebuilt
                await reload_config(kernel)
                sync_folder_plugins(kernel)
            while True:
                # Cancelling abandons the thread (the kernel never waits for it); ``run`` sets ``stop``.
                changes = await trio.to_thread.run_sync(notifier.watch, DEBOUNCE_MS, STEP_MS, TIMEOUT_MS, stop,
                                                        abandon_on_cancel=True)
                if changes == "stop":
                    return
                if not isinstance(changes, set):  # "timeout" (or "signal")
                    continue
                touched, rewatch = _relevant(project, changes)
                if any(Path(p).suffix == ".py" and Path(p).parent in folders for _, p in changes):
                    sync_folder_plugins(kernel)
                if touched:
                    await reload_config(kernel)
                    rewatch = rewatch or plugin_dirs(kernel.config) != folders
                if rewatch:
                    notifier.close()  # not watching now: closing cannot race the thread
                    break
