"""Running the kernel's services: start in dependency order, publish by type, stop in reverse.

Each service runs in its own task (and cancel scope) in the kernel's nursery. The object a service
passes to ``task_status.started(obj)`` (or the service itself) is published *synchronously* at that
call — before any task the service started can run — and withdrawn when the service's ``run``
returns, so ``kernel.find_service(T)`` is None exactly while the service is not running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio
from attrs import define, field

from .operations import load_ref
from .services import PlannedService, ServiceSpec, find, plan, start_order

if TYPE_CHECKING:
    from .kernel import Kernel

T = TypeVar("T")


@define
class _Running:
    planned: PlannedService
    scope: trio.CancelScope = field(factory=trio.CancelScope)
    stopped: trio.Event = field(factory=trio.Event)
    published: Any = None
    live: bool = False


class _Publishing:
    """The ``task_status`` handed to a service: publishes what it starts with, then reports ready."""

    def __init__(self, inner: Any, publish: Callable[[Any], None]) -> None:
        self._inner, self._publish = inner, publish

    def started(self, value: Any = None) -> None:
        self._publish(value)
        self._inner.started(value)


class ServiceRunner:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._running: list[_Running] = []  # in start order
        self._provided: list[Any] = []

    def planned(self) -> list[PlannedService]:
        """Every registered service, lazy references resolved, in start order (raises ``ServiceError``)."""
        out = []
        for name, reg in self._kernel.plugins.registry["services"].items():
            spec = reg.obj if isinstance(reg.obj, ServiceSpec) else ServiceSpec(service=reg.obj)
            service = load_ref(spec.service)() if isinstance(spec.service, str) else spec.service
            out.append(plan(name, reg.owner, spec, service))
        return start_order(out)

    async def start_all(self, nursery: trio.Nursery) -> None:
        for planned in self.planned():
            running = _Running(planned)
            self._running.append(running)
            await nursery.start(self._run, running)

    async def _run(self, running: _Running, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        service = running.planned.service

        def publish(value: Any) -> None:  # synchronous: a service that then ends at once withdraws it
            running.published = service if value is None else value
            running.live = True
            self._kernel.services[running.planned.name] = service

        try:
            with running.scope:
                await service.run(self._kernel, task_status=_Publishing(task_status, publish))
        finally:
            running.live = False
            self._kernel.services.pop(running.planned.name, None)
            running.stopped.set()

    async def stop_all(self) -> None:
        """Cancel each started service and wait for it to finish, last started first."""
        for running in reversed(self._running):
            running.scope.cancel()
            await running.stopped.wait()
        self._running.clear()

    def provide(self, obj: Any) -> Callable[[], None]:
        self._provided.append(obj)

        def withdraw() -> None:
            if obj in self._provided:
                self._provided.remove(obj)

        return withdraw

    def find(self, kind: type[T]) -> T | None:
        live = [(r.published, r.planned.service) for r in self._running if r.live]
        live += [(obj, None) for obj in self._provided]
        found: T | None = find(live, kind)
        return found


class _Startable(Protocol):
    async def start(self) -> object: ...


R = TypeVar("R", bound=_Startable)


async def run_service_runtime(
    kernel: Any,
    make: Callable[[Any, trio.Nursery], R],
    *,
    task_status: Any = None,
    then: Callable[[R], Awaitable[object]] | None = None,
    close: Callable[[R], object] | None = None,
) -> None:
    """The usual body of a service's ``run``: one runtime object per kernel, owning a nursery.

    Opens a nursery, builds ``rt = make(kernel, nursery)``, awaits ``rt.start()`` (replay its state),
    publishes it with ``task_status.started(rt)`` (from then on ``kernel.find_service`` finds it),
    starts ``then(rt)`` in the nursery (work that needs it published, e.g. resuming what was in
    flight), and runs until cancelled. ``close(rt)`` runs synchronously on the way out, whether
    ``start`` failed, the service was stopped or a task of its nursery raised. ``task_status`` of
    ``None`` means nobody waits for the start (``trio.TASK_STATUS_IGNORED``)."""
    task_status = task_status or trio.TASK_STATUS_IGNORED
    async with trio.open_nursery() as nursery:
        rt = make(kernel, nursery)
        try:
            await rt.start()
            task_status.started(rt)
            if then is not None:
                nursery.start_soon(then, rt)
            await trio.sleep_forever()
        finally:
            if close is not None:
                close(rt)
