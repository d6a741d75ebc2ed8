"""Services: long-running plugin parts, started in dependency order and found by type.

A plugin registers ``register(name, service, requires=…, after=…)`` (``aegis_register_services``).
A service declares what it needs, as class attributes or at registration:

- ``requires``: services that must be present; they start first. Missing → :class:`ServiceError`.
- ``after``: services that start first *when installed* (an optional dependency).
- ``provides``: the type of the object the service publishes with ``task_status.started(obj)``
  (what others name in ``requires``/``after`` and look up with ``kernel.service(T)``).

Each entry of ``requires``/``after`` is a type or a ``"module:QualName"`` string naming one (so a
plugin can name another plugin's type without importing it, or depending on it being installed).
An entry matches a service when the service is an instance of it, or its ``provides`` is (a
subclass of) it, or — for strings — when the qualified name is the service's class (or a base) or
its ``provides``.

:func:`start_order` sorts topologically and stably (registration order where nothing constrains it);
the kernel stops services in the reverse of the order they started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from attrs import frozen


class ServiceError(Exception):
    """A service's dependencies cannot be met (missing, or a cycle), or a lookup found no service."""


@frozen
class ServiceSpec:
    """One registered service: the object (or lazy ``"module:factory"`` reference) and its declared
    dependencies (None: read the service's class attributes of the same name)."""

    service: Any
    requires: tuple[Any, ...] | None = None
    after: tuple[Any, ...] | None = None


@frozen
class PlannedService:
    """A service ready to start: its registered name, owning plugin, object and resolved dependencies."""

    name: str
    owner: str
    service: Any
    requires: tuple[Any, ...]
    after: tuple[Any, ...]


@runtime_checkable
class FileViewer(Protocol):
    """Published by a UI that can show a project file to the user (the TUI, while it runs);
    ``aegis_view_file`` finds it with ``kernel.find_service(FileViewer)``."""

    async def view_file(self, path: str) -> dict[str, Any]: ...


def qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def describe(dep: Any) -> str:
    return dep if isinstance(dep, str) else qualname(dep)


def matches(dep: Any, service: Any) -> bool:
    """Whether requirement ``dep`` (a type or a ``"module:QualName"``) names ``service``."""
    provides = getattr(service, "provides", None)
    if isinstance(dep, str):
        names = {qualname(c) for c in type(service).__mro__}
        if isinstance(provides, type):
            names |= {qualname(c) for c in provides.__mro__}
        elif isinstance(provides, str):
            names.add(provides)
        return dep in names
    if isinstance(service, dep):
        return True
    if isinstance(provides, type):
        return issubclass(provides, dep)
    return isinstance(provides, str) and provides == qualname(dep)


def plan(name: str, owner: str, spec: ServiceSpec, service: Any) -> PlannedService:
    """Resolve ``spec``'s dependencies (declared at registration, else the service's class attributes)."""
    requires = spec.requires if spec.requires is not None else tuple(getattr(service, "requires", ()) or ())
    after = spec.after if spec.after is not None else tuple(getattr(service, "after", ()) or ())
    return PlannedService(name=name, owner=owner, service=service, requires=requires, after=after)


def _label(p: PlannedService) -> str:
    return f"service {p.name!r} (plugin {p.owner!r})"


def start_order(services: Sequence[PlannedService]) -> list[PlannedService]:
    """``services`` sorted so every service starts after what it requires (and what it wants ``after``,
    when present); ties keep registration order. Raises :class:`ServiceError` for a missing
    ``requires`` (naming the service and its plugin) or a cycle (naming every service and plugin in it).
    """
    deps: dict[str, list[str]] = {}
    for p in services:
        found: list[str] = []
        for dep, required in [(d, True) for d in p.requires] + [(d, False) for d in p.after]:
            providers = [q.name for q in services if q is not p and matches(dep, q.service)]
            if not providers and required:
                raise ServiceError(
                    f"{_label(p)} requires {describe(dep)}, which no enabled plugin provides "
                    "(is its plugin installed and enabled?)")
            found += [n for n in providers if n not in found]
        deps[p.name] = found
    by_name = {p.name: p for p in services}
    order: list[PlannedService] = []
    done: set[str] = set()
    while len(order) < len(services):
        ready = next((p for p in services if p.name not in done and all(d in done for d in deps[p.name])), None)
        if ready is None:
            raise ServiceError("services depend on each other in a cycle: " + _cycle(deps, by_name, done))
        order.append(ready)
        done.add(ready.name)
    return order


def _cycle(deps: dict[str, list[str]], by_name: dict[str, PlannedService], done: set[str]) -> str:
    """One cycle among the services not started, as ``a (plugin x) → b (plugin y) → a (plugin x)``."""
    start = next(n for n in by_name if n not in done)
    path: list[str] = []
    node = start
    while node not in path:
        path.append(node)
        node = next(d for d in deps[node] if d not in done)
    loop = path[path.index(node):] + [node]
    return " → ".join(f"{n!r} (plugin {by_name[n].owner!r})" for n in loop)


def find(live: Iterable[tuple[Any, Any]], kind: type) -> Any | None:
    """The first published object (or, failing that, service) that is an instance of ``kind``."""
    entries = list(live)
    for published, _service in entries:
        if isinstance(published, kind):
            return published
    for _published, service in entries:
        if isinstance(service, kind):
            return service
    return None
