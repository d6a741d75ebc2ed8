"""Plugin discovery and registration.

Plugins are modules named by entry points in the ``aegis`` group (plus the kernel's own
:data:`DEFAULT_PLUGINS`). Loading never fails as a whole: a plugin that cannot be imported, that
implements an unknown hook, or whose registration hook raises is recorded as ``failed`` with its
error and skipped; a disabled plugin (``AEGIS_DISABLE_PLUGINS=a,b`` or config ``plugins.disabled``)
is blocked before it is imported.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

import pluggy
from attrs import define, field, frozen

from . import hookspecs

DEFAULT_PLUGINS = ("aegis_kernel.builtin",)
REGISTRATION_HOOKS = {
    "aegis_register_config_sections": "config_sections",
    "aegis_register_drivers": "drivers",
    "aegis_register_operations": "operations",
    "aegis_register_services": "services",
    "aegis_register_cli": "cli",
    "aegis_register_reducers": "reducers",
    "aegis_register_panels": "panels",
    "aegis_register_transports": "transports",
    "aegis_register_triggers": "triggers",
    "aegis_register_workflows": "workflows",
}
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "module": self.module, "dist": self.dist, "version": self.version,
            "status": self.status, "error": self.error, "hooks": list(self.hooks),
            "registered": {k: list(v) for k, v in self.registered.items()},
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
        return self.kinds[kind]

    def objects(self, kind: str) -> dict[str, Any]:
        return {name: reg.obj for name, reg in self.kinds[kind].items()}


def _validate_name(kind: str, name: Any) -> None:
    pattern = _OPERATION_RE if kind == "operations" else _NAME_RE
    if not isinstance(name, str) or not pattern.match(name):
        rule = "aegis_ followed by lowercase letters, digits, _" if kind == "operations" else \
            "lowercase letters, digits, '-' or '_', starting with a letter"
        raise RegistrationError(f"invalid {kind[:-1]} name {name!r}: must be {rule}")


def _driver(driver: Any) -> tuple[str, Any]:
    return getattr(driver, "name", None), driver


def _operation(name: str, handler: Any, description: str = "", params: Any = None) -> tuple[str, Any]:
    from .operations import Operation, params as empty_params

    return name, Operation(name=name, handler=handler, description=description, params=params or empty_params())


def _cli(name: str, help: str, setup: Any, run: Any) -> tuple[str, Any]:
    return name, {"help": help, "setup": setup, "run": run}


def _panel(name: str, factory: Any, kind: str = "tab", key: str | None = None, title: str = "") -> tuple[str, Any]:
    return name, {"factory": factory, "kind": kind, "key": key, "title": title or name}


def _named(name: str, obj: Any) -> tuple[str, Any]:
    return name, obj


_BUILDERS: dict[str, Callable[..., tuple[str, Any]]] = {
    "drivers": _driver, "operations": _operation, "cli": _cli, "panels": _panel,
}


def _make_register(kind: str, owner: str, staged: list[tuple[str, Registered]]) -> Callable[..., None]:
    """The ``register`` callback handed to one plugin's registration hook (signatures: hookspecs.py)."""
    build = _BUILDERS.get(kind, _named)

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
    """The pluggy manager plus what was found: plugin infos and the registry."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("aegis")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.registry = Registry()
        if os.environ.get("AEGIS_TRACE_PLUGINS"):
            self._trace()

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def _trace(self) -> None:
        def before(hook_name: str, impls: Any, kwargs: Any) -> None:
            print(f"aegis hook {hook_name}({', '.join(kwargs)}) → {[i.plugin_name for i in impls]}", file=sys.stderr)

        def after(outcome: Any, hook_name: str, impls: Any, kwargs: Any) -> None:
            pass

        self.pm.add_hookcall_monitoring(before, after)

    # --- loading ---------------------------------------------------------------------------------

    def load(self, *, disabled: Iterable[str] = (), entry_points: bool = True,
             extra: Iterable[tuple[str, Any]] = ()) -> None:
        """Register the default plugins, entry-point plugins and ``extra`` (name, object) pairs."""
        blocked = set(disabled) | _env_disabled()
        for module_name in DEFAULT_PLUGINS:
            name = module_name.rsplit(".", 1)[-1]
            self._add(name, module_name, lambda m=module_name: importlib.import_module(m),
                      dist="aegis-kernel", blocked=blocked)
        if entry_points:
            for ep in _aegis_entry_points():
                dist = ep.dist.name if ep.dist is not None else ""
                version = ep.dist.version if ep.dist is not None else ""
                self._add(ep.name, ep.value, ep.load, dist=dist, version=version, blocked=blocked)
        for name, obj in extra:
            self._add(name, getattr(obj, "__name__", type(obj).__name__), lambda o=obj: o, dist="(test)",
                      blocked=blocked)
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
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        callers = self._impls_of(name)
        unknown = sorted(c.name for c in callers if c.spec is None)
        if unknown:
            self.pm.unregister(name=name)
            self.pm.set_blocked(name)
            info.status = "failed"
            info.error = f"implements unknown hook(s) {', '.join(unknown)} (see docs/hooks.md for the hook names)"
            return
        info.hooks = sorted(c.name for c in callers)

    def _impls_of(self, name: str) -> list[Any]:
        plugin = self.pm.get_plugin(name)
        return [caller for caller in self.pm.get_hookcallers(plugin) or []] if plugin is not None else []

    def collect(self) -> None:
        """Call every registration hook, plugin by plugin, and fill :attr:`registry`.

        A plugin whose hook raises (including a refused registration) is unregistered, marked failed,
        and none of its registrations are kept.
        """
        for name, info in list(self.infos.items()):
            if info.status != "enabled":
                continue
            plugin = self.pm.get_plugin(name)
            staged: list[tuple[str, Registered]] = []
            try:
                for hook_name, kind in REGISTRATION_HOOKS.items():
                    fn = getattr(plugin, hook_name, None)
                    if fn is None or not hasattr(fn, "aegis_impl"):
                        continue
                    fn(register=_make_register(kind, name, staged))
                for kind, reg in staged:
                    owner = self.registry[kind].get(reg.name)
                    if owner is not None:
                        other = self.infos[owner.owner]
                        raise RegistrationError(
                            f"{kind[:-1]} {reg.name!r} is already registered by plugin {owner.owner!r}"
                            f" ({other.dist or other.module}); refused for plugin {name!r} ({info.dist or info.module})")
            except Exception as exc:  # noqa: BLE001
                info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
                self.pm.unregister(name=name)
                self.pm.set_blocked(name)
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


def load_plugins(*, disabled: Iterable[str] = (), entry_points: bool = True,
                 extra: Iterable[tuple[str, Any]] = ()) -> PluginHost:
    host = PluginHost()
    host.load(disabled=disabled, entry_points=entry_points, extra=extra)
    return host
