"""Services start in dependency order (not name order), stop in reverse, are found by type, and a
missing or circular dependency is a clear error naming the plugins."""

from __future__ import annotations

import pytest
import trio

from aegis_kernel import hookimpl
from aegis_kernel.kernel import build_kernel
from aegis_kernel.services import ServiceError


class Store:
    """What the "store" service publishes."""


class Cache:
    """What the "cache" service publishes."""


class Recording:
    """A service that logs its start and stop to ``log`` and publishes ``provides()``."""

    provides: type | None = None

    def __init__(self, name: str, log: list[str], **deps) -> None:
        self.name, self.log = name, log
        for key, value in deps.items():
            setattr(self, key, value)

    async def run(self, kernel, *, task_status=trio.TASK_STATUS_IGNORED):
        self.log.append(f"start {self.name}")
        try:
            task_status.started(self.provides() if self.provides else None)
            await trio.sleep_forever()
        finally:
            self.log.append(f"stop {self.name}")


class StoreService(Recording):
    provides = Store


class CacheService(Recording):
    provides = Cache
    requires = (Store,)


@pytest.fixture(autouse=True)
def empty_project(write_config):
    write_config("plugins:\n  disabled: []\n")  # no agents: only the plugins each test names are loaded


class Plugin:
    """A plugin registering one service (``register(name, service, **options)``)."""

    def __init__(self, name: str, service, **options) -> None:
        self.name, self.service, self.options = name, service, options

    @hookimpl
    def aegis_register_services(self, register):
        register(self.name, self.service, **self.options)


@pytest.mark.trio
async def test_services_start_in_dependency_order_and_stop_in_reverse(make_kernel):
    log: list[str] = []
    plugins = [  # registration (and name) order is the opposite of what they need
        ("a-web", Plugin("aaa-web", Recording("web", log), requires=(Cache,))),
        ("b-cache", Plugin("bbb-cache", CacheService("cache", log))),
        ("c-store", Plugin("ccc-store", StoreService("store", log))),
        ("d-free", Plugin("ddd-free", Recording("free", log))),
    ]
    async with make_kernel(entry_points=False, extra_plugins=plugins) as kernel:
        assert log == ["start store", "start cache", "start web", "start free"]
        assert isinstance(kernel.service(Cache), Cache)
        assert kernel.service(Recording).name in {"web", "free"}
        assert kernel.find_service(int) is None
        with pytest.raises(ServiceError, match="no running service provides builtins:int"):
            kernel.service(int)
    assert log[4:] == ["stop free", "stop web", "stop cache", "stop store"]
    assert kernel.find_service(Cache) is None


class OneShot:
    """A service that does its work at start and ends: it is not running afterwards."""

    async def run(self, kernel, *, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()


@pytest.mark.trio
async def test_a_service_that_ended_is_not_listed_as_running(make_kernel):
    log: list[str] = []
    plugins = [("once", Plugin("once", OneShot())), ("store", Plugin("store", StoreService("store", log)))]
    async with make_kernel(entry_points=False, extra_plugins=plugins) as kernel:
        assert "store" in kernel.services and "once" not in kernel.services
        assert kernel.find_service(OneShot) is None


@pytest.mark.trio
async def test_after_orders_when_present_and_is_ignored_when_absent(make_kernel):
    log: list[str] = []
    optional = Plugin("aaa", Recording("user", log), after=(f"{__name__}:Store",))
    async with make_kernel(entry_points=False, extra_plugins=[("user", optional)]):
        assert log == ["start user"]
    log.clear()
    store = Plugin("zzz", StoreService("store", log))
    async with make_kernel(entry_points=False, extra_plugins=[("user", optional), ("store", store)]):
        assert log == ["start store", "start user"]


@pytest.mark.trio
async def test_a_missing_dependency_is_an_error_at_start_naming_the_plugin(make_kernel):
    log: list[str] = []
    plugins = [("cachey", Plugin("cache", CacheService("cache", log)))]
    with pytest.raises(ServiceError) as err:
        async with make_kernel(entry_points=False, extra_plugins=plugins):
            pass
    message = str(err.value)
    assert "service 'cache' (plugin 'cachey') requires" in message
    assert f"{__name__}:Store" in message and "no enabled plugin provides" in message
    assert log == []  # nothing started


@pytest.mark.trio
async def test_a_dependency_cycle_is_an_error_naming_both_plugins(make_kernel):
    log: list[str] = []
    plugins = [
        ("store-plugin", Plugin("store", StoreService("store", log, requires=(Cache,)))),
        ("cache-plugin", Plugin("cache", CacheService("cache", log))),
    ]
    with pytest.raises(ServiceError) as err:
        async with make_kernel(entry_points=False, extra_plugins=plugins):
            pass
    message = str(err.value)
    assert "cycle" in message
    assert "'store' (plugin 'store-plugin')" in message and "'cache' (plugin 'cache-plugin')" in message
    assert log == []


def test_the_queue_starts_after_the_budget_it_declares(aegis_project):
    kernel = build_kernel(aegis_project)
    order = [p.name for p in kernel._running.planned()]
    assert order.index("budget") < order.index("queue")
