"""Plugin discovery and registration.

Plugins are modules named by entry points in the ``aegis`` group (plus the kernel's own
:data:`DEFAULT_PLUGINS`). Loading never fails as a whole: a plugin that cannot be imported, whose
``aegis_add_hookspecs`` raises, that implements a hook nobody declared, or whose registration hook
raises is recorded as ``failed`` with its error and skipped; a disabled plugin
(``AEGIS_DISABLE_PLUGINS=a,b`` or config ``plugins.disabled``) is blocked before it is imported.

Plugin folders (config ``plugins.dirs``): each ``*.py`` file in them (not ``_*``, not hidden) is a
plugin named after its stem, imported from its file (``PluginInfo.file``); one that fails to import
is ``failed`` with ``file:line: error``. :meth:`PluginHost.reload_folders` loads again the folder
plugins whose files changed, appeared or went (the kernel calls it on a live change).

Loading goes: register every plugin → ``aegis_add_hookspecs`` (plugins declare their own hooks) →
refuse plugins implementing undeclared hooks (so load order never matters) → call the registration
hooks plugin by plugin, through ``pm.hook`` (:func:`aegis_kernel.hookcall.call_plugin`).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy
from attrs import define, field, frozen

from . import hookspecs
from .hookcall import call_plugin, notify, trace_to_log

DEFAULT_PLUGINS = ("aegis_kernel.builtin",)
# the kernel's registration hooks and the registry kind each fills (plugins add theirs: registration_hook)
REGISTRATION_HOOKS = {
    "aegis_register_config_sections": "config_sections",
    "aegis_register_drivers": "drivers",
    "aegis_register_operations": "operations",
    "aegis_register_services": "services",
    "aegis_register_cli": "cli",
}
KERNEL_OWNER = "aegis-kernel"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_OPERATION_RE = re.compile(r"^aegis_[a-z][a-z0-9_]*$")


class RegistrationError(Exception):
    """Raised to a plugin by ``register(...)``: bad name, or a name another plugin already owns."""


@define
class PluginInfo:
    """What ``aegis plugins list`` shows about one plugin."""

    name: str
    module: str
    dist: str = ""
    version: str = ""
    status: str = "enabled"  # enabled | disabled | failed
    error: str = ""
    hooks: list[str] = field(factory=list)
    registered: dict[str, list[str]] = field(factory=dict)
    file: str = ""  # a plugin folder's module: its file
    stamp: tuple[int, int] | None = None  # (mtime_ns, size) of ``file`` when loaded

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "module": self.module, "dist": self.dist, "version": self.version,
            "status": self.status, "error": self.error, "hooks": list(self.hooks),
            "registered": {k: list(v) for k, v in self.registered.items()}, "file": self.file,
        }


@frozen
class Registered:
    name: str
    obj: Any
    owner: str


class Registry:
    """Everything plugins registered, by kind then name, with the owning plugin."""

    def __init__(self) -> None:
        self.kinds: dict[str, dict[str, Registered]] = {k: {} for k in REGISTRATION_HOOKS.values()}

    def __getitem__(self, kind: str) -> dict[str, Registered]:
        return self.kinds.setdefault(kind, {})

    def objects(self, kind: str) -> dict[str, Any]:
        """``{name: object}`` of ``kind`` (empty when no installed plugin declares or fills it)."""
        return {name: reg.obj for name, reg in self.kinds.get(kind, {}).items()}


def _validate_name(kind: str, name: Any) -> None:
    pattern = _OPERATION_RE if kind == "operations" else _NAME_RE
    if not isinstance(name, str) or not pattern.match(name):
        rule = "aegis_ followed by lowercase letters, digits, _" if kind == "operations" else \
            "lowercase letters, digits, '-' or '_', starting with a letter"
        raise RegistrationError(f"invalid {kind[:-1]} name {name!r}: must be {rule}")


def _itself(obj: Any) -> Any:
    """A loader for an already imported plugin object (``extra`` plugins)."""
    return obj


def _driver(driver: Any) -> tuple[str, Any]:
    return getattr(driver, "name", ""), driver  # a missing name is refused by _validate_name


def _operation(name: str, handler: Any, description: str = "", params: Any = None, *,
               callers: Any = None, check: Any = None, stream: bool = False,
               approval: Any = None) -> tuple[str, Any]:
    from .operations import DEFAULT_CALLERS, Operation, params as empty_params

    return name, Operation(name=name, handler=handler, description=description, params=params or empty_params(),
                           callers=callers or DEFAULT_CALLERS, check=check, stream=stream, approval=approval)


def _cli(name: str, help: str, setup: Any, run: Any) -> tuple[str, Any]:
    return name, {"help": help, "setup": setup, "run": run}


def _named(name: str, obj: Any) -> tuple[str, Any]:
    return name, obj


def _service(name: str, service: Any, *, requires: Iterable[Any] | None = None,
             after: Iterable[Any] | None = None) -> tuple[str, Any]:
    from .services import ServiceSpec

    return name, ServiceSpec(service=service, requires=None if requires is None else tuple(requires),
                             after=None if after is None else tuple(after))


def _section(name: str, type: Any, check: Any = None) -> tuple[str, Any]:
    from .config_sections import Section

    return name, Section(type=type, check=check)


_BUILDERS: dict[str, Callable[..., tuple[str, Any]]] = {
    "drivers": _driver, "operations": _operation, "cli": _cli, "services": _service, "config_sections": _section,
}


def registration_hook(kind: str, build: Callable[..., tuple[str, Any]] | None = None) -> Callable[[Any], Any]:
    """Mark a plugin's hookspec ``aegis_register_<x>(register)`` as collected into ``registry[kind]``.

    ``build(*args, **kwargs) -> (name, obj)`` turns one ``register(...)`` call into the entry (default:
    ``register(name, obj)``); names are validated and duplicates refused like the kernel's kinds::

        @registration_hook("panels", build=panel_entry)
        @hookspec
        def aegis_register_panels(register: RegisterPanel) -> None: ...
    """

    def mark(spec: Any) -> Any:
        spec.aegis_registration = (kind, build or _named)
        return spec

    return mark


def _make_register(kind: str, owner: str, staged: list[tuple[str, Registered]],
                   build: Callable[..., tuple[str, Any]] | None = None) -> Callable[..., None]:
    """The ``register`` callback handed to one plugin's registration hook (signatures: hookspecs.py)."""
    build = build or _BUILDERS.get(kind, _named)

    def register(*args: Any, **kwargs: Any) -> None:
        try:
            name, obj = build(*args, **kwargs)
        except TypeError as exc:
            raise RegistrationError(f"bad register() call for {kind}: {exc}") from None
        _validate_name(kind, name)
        if any(k == kind and reg.name == name for k, reg in staged):
            raise RegistrationError(f"{kind[:-1]} {name!r} registered twice by plugin {owner!r}")
        staged.append((kind, Registered(name=name, obj=obj, owner=owner)))

    return register


class PluginHost:
    """The pluggy manager plus what was found: plugin infos, the registry and who declared each hook."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("aegis")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.registry = Registry()
        self._blocked: set[str] = set()  # disabled names (the environment's and the config's), set by load()
        # hook name → the distribution that declared it (the kernel's, or a plugin's via aegis_add_hookspecs)
        self.spec_owners: dict[str, str] = {n: KERNEL_OWNER for n in self._declared()}
        if os.environ.get("AEGIS_TRACE_HOOKS") or os.environ.get("AEGIS_TRACE_PLUGINS"):
            trace_to_log(self.pm)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def _declared(self) -> set[str]:
        return {name for name, caller in vars(self.pm.hook).items() if getattr(caller, "spec", None) is not None}

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call observer hook ``hook_name`` through ``pm.hook``; a raising observer is logged naming its plugin."""
        notify(self.pm, hook_name, **kwargs)

    # --- loading ---------------------------------------------------------------------------------

    def load(self, *, disabled: Iterable[str] = (), entry_points: bool = True,
             extra: Iterable[tuple[str, Any]] = (), dirs: Iterable[Path] = ()) -> None:
        """Register the default plugins, entry-point plugins, ``extra`` (name, object) pairs and the
        modules of the plugin folders ``dirs``, let them add hookspecs, refuse undeclared hooks, then
        collect every registration hook."""
        blocked = set(disabled) | _env_disabled()
        self._blocked = blocked
        for module_name in DEFAULT_PLUGINS:
            name = module_name.rsplit(".", 1)[-1]
            self._add(name, module_name, functools.partial(importlib.import_module, module_name),
                      dist="aegis-kernel", blocked=blocked)
        if entry_points:
            for ep in _aegis_entry_points():
                dist = ep.dist.name if ep.dist is not None else ""
                version = ep.dist.version if ep.dist is not None else ""
                self._add(ep.name, ep.value, ep.load, dist=dist, version=version, blocked=blocked)
        for name, obj in extra:
            self._add(name, getattr(obj, "__name__", type(obj).__name__), functools.partial(_itself, obj),
                      dist="(test)", blocked=blocked)
        for file in folder_modules(dirs):
            self._add_file(file)
        self.add_hookspecs()
        self.refuse_undeclared()
        self.collect()

    def _add(self, name: str, module: str, loader: Callable[[], Any], *, dist: str, version: str = "",
             blocked: set[str]) -> None:
        if name in self.infos:
            first = self.infos[name]
            self.infos[f"{name}@{dist}"] = PluginInfo(
                name=name, module=module, dist=dist, version=version, status="failed",
                error=f"plugin name {name!r} is already used by {first.dist or first.module}")
            return
        info = PluginInfo(name=name, module=module, dist=dist, version=version)
        self.infos[name] = info
        if name in blocked:
            self.pm.set_blocked(name)
            info.status = "disabled"
            return
        try:
            obj = loader()
            self.pm.register(obj, name=name)
        except BaseException as exc:  # noqa: BLE001 - a broken plugin must never be fatal
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            info.status = "failed"
            info.error = str(exc) if isinstance(exc, FolderPluginError) else f"{type(exc).__name__}: {exc}"
            return

    def _add_file(self, file: Path) -> None:
        self._add(file.stem, str(file), functools.partial(_import_file, file), dist=FOLDER_DIST, blocked=self._blocked)
        for key in (file.stem, f"{file.stem}@{FOLDER_DIST}"):  # the second: its name was taken (failed)
            info = self.infos.get(key)
            if info is not None and info.module == str(file):
                info.file, info.stamp = str(file), _stamp(file)

    def reload_folders(self, dirs: Iterable[Path]) -> list[str]:
        """Load again the folder plugins of ``dirs`` whose file changed, appeared or went; returns
        their names. Their registrations are replaced (hooks and operations; a service starts only
        with the next start)."""
        files = {str(f): f for f in folder_modules(dirs)}
        loaded = {i.file: i for i in self.infos.values() if i.dist == FOLDER_DIST and i.file}
        stale = [i for f, i in loaded.items() if f not in files or _stamp(files[f]) != i.stamp]
        fresh = [f for name, f in files.items() if name not in loaded or loaded[name] in stale]
        for info in stale:
            key = next(k for k, v in self.infos.items() if v is info)
            if self.pm.get_plugin(key) is not None:
                self.pm.unregister(name=key)
            if self.pm.is_blocked(key):
                self.pm.unblock(key)
            for kind, names in info.registered.items():
                for reg_name in names:
                    self.registry[kind].pop(reg_name, None)
            del self.infos[key]
        for file in fresh:
            self._add_file(file)
        if fresh:
            self.add_hookspecs()
            self.refuse_undeclared()
            self.collect(only={f.stem for f in fresh})
        return sorted({i.name for i in stale} | {f.stem for f in fresh})

    def _fail(self, name: str, error: str) -> None:
        info = self.infos[name]
        info.status, info.error, info.hooks = "failed", error, []
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.pm.set_blocked(name)

    def _enabled(self) -> list[tuple[str, Any]]:
        return [(name, self.pm.get_plugin(name)) for name, info in self.infos.items()
                if info.status == "enabled" and self.pm.get_plugin(name) is not None]

    def add_hookspecs(self) -> None:
        """Call each plugin's ``aegis_add_hookspecs(pm)`` (through ``pm.hook``) and record who declared what."""
        for name, plugin in self._enabled():
            before = self._declared()
            try:
                call_plugin(self.pm, "aegis_add_hookspecs", plugin, pm=self.pm)
            except Exception as exc:  # noqa: BLE001 - one plugin's bad hookspecs never stop the others
                self._fail(name, f"aegis_add_hookspecs: {type(exc).__name__}: {exc}")
                continue
            info = self.infos[name]
            owner = info.dist if info.dist and info.dist != "(test)" else name
            for hook_name in self._declared() - before:
                self.spec_owners[hook_name] = owner

    def refuse_undeclared(self) -> None:
        """Fail every plugin implementing a hook no installed plugin declared (``optionalhook`` excepted),
        then check with pluggy that nothing undeclared is left."""
        for name, plugin in self._enabled():
            callers = self.pm.get_hookcallers(plugin) or []
            unknown = sorted(c.name for c in callers if c.spec is None and any(
                i.plugin is plugin and not i.optionalhook for i in c.get_hookimpls()))
            if unknown:
                self._fail(name, f"implements unknown hook(s) {', '.join(unknown)} "
                                 "(see docs/hooks.md for the hook names)")
                continue
            self.infos[name].hooks = sorted(c.name for c in callers)
        self.pm.check_pending()

    def registration_hooks(self) -> dict[str, tuple[str, Callable[..., tuple[str, Any]] | None]]:
        """Hook name → (registry kind, builder) for the kernel's and the plugins' registration hooks."""
        hooks: dict[str, tuple[str, Callable[..., tuple[str, Any]] | None]] = {
            hook_name: (kind, None) for hook_name, kind in REGISTRATION_HOOKS.items()}
        for hook_name, caller in vars(self.pm.hook).items():
            marked = getattr(getattr(caller.spec, "function", None), "aegis_registration", None)
            if marked is not None and hook_name not in hooks:
                hooks[hook_name] = marked
        return hooks

    def collect(self, only: set[str] | None = None) -> None:
        """Call every registration hook, plugin by plugin (through ``pm.hook``), and fill :attr:`registry`
        (``only``: just these plugins, for a reload).

        A plugin whose hook raises (including a refused registration) is unregistered, marked failed,
        and none of its registrations are kept.
        """
        hooks = self.registration_hooks()
        for name, plugin in self._enabled():
            if only is not None and name not in only:
                continue
            info = self.infos[name]
            staged: list[tuple[str, Registered]] = []
            try:
                for hook_name, (kind, build) in hooks.items():
                    if hook_name not in info.hooks:
                        continue
                    call_plugin(self.pm, hook_name, plugin, register=_make_register(kind, name, staged, build))
                for kind, reg in staged:
                    owner = self.registry[kind].get(reg.name)
                    if owner is not None:
                        other = self.infos[owner.owner]
                        raise RegistrationError(
                            f"{kind[:-1]} {reg.name!r} is already registered by plugin {owner.owner!r}"
                            f" ({other.dist or other.module}); refused for plugin {name!r} ({info.dist or info.module})")
            except Exception as exc:  # noqa: BLE001
                self._fail(name, f"{type(exc).__name__}: {exc}")
                continue
            for kind, reg in staged:
                self.registry[kind][reg.name] = reg
                info.registered.setdefault(kind, []).append(reg.name)


def _env_disabled() -> set[str]:
    raw = os.environ.get("AEGIS_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _aegis_entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in metadata.entry_points(group="aegis"):
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            out.append(ep)
    return sorted(out, key=lambda e: e.name)


FOLDER_DIST = "(folder)"


def folder_modules(dirs: Iterable[Path]) -> list[Path]:
    """The plugin modules of the plugin folders ``dirs``: ``*.py``, not ``_*`` or hidden, sorted."""
    out: list[Path] = []
    for folder in dirs:
        try:
            out += sorted(f for f in Path(folder).iterdir()
                          if f.suffix == ".py" and f.is_file() and not f.name.startswith(("_", ".")))
        except OSError:
            continue  # a missing folder holds no plugins (aegis doctor / plugins list show the config)
    return out


def _stamp(file: Path) -> tuple[int, int] | None:
    try:
        st = file.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _import_file(file: Path) -> Any:
    """Import a plugin folder's module from its file (a fresh module each time: reloads see edits).
    An error names ``file:line``."""
    import hashlib
    import importlib.util
    import sys
    import traceback

    name = f"aegis_folder_plugin_{hashlib.sha1(str(file).encode()).hexdigest()[:10]}_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file}: cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise FolderPluginError(f"{exc.filename or file}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
        where = f"{file}:{frames[-1].lineno}" if frames else str(file)
        raise FolderPluginError(f"{where}: {type(exc).__name__}: {exc}") from None
    return module


class FolderPluginError(ImportError):
    """A plugin folder's module failed to import; the message starts with ``file:line:``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def load_plugins(*, disabled: Iterable[str] = (), entry_points: bool = True,
                 extra: Iterable[tuple[str, Any]] = (), dirs: Iterable[Path] = ()) -> PluginHost:
    host = PluginHost()
    host.load(disabled=disabled, entry_points=entry_points, extra=extra, dirs=dirs)
    return host
