"""``run_service_runtime``: the usual body of a service's ``run`` — the runtime is published only once
its ``start`` is done, its follow-up work runs once it is published, and ``close`` runs however the
service ends (stopped, or its ``start`` failed)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from aegis_kernel import hookimpl, run_service_runtime


class Runtime:
    def __init__(self, kernel, nursery, log: list[str], fail: bool = False) -> None:
        self.kernel, self.nursery, self.log, self.fail = kernel, nursery, log, fail

    async def start(self) -> None:
        self.log.append(f"start (published: {self.kernel.find_service(Runtime) is not None})")
        if self.fail:
            raise ValueError("the ledger is corrupt")

    async def resume(self) -> None:
        self.log.append(f"resume (published: {self.kernel.find_service(Runtime) is self})")

    def close(self) -> None:
        self.log.append("close")


class Service:
    provides = Runtime

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def run(self, kernel, *, task_status=None):
        await run_service_runtime(kernel, lambda k, n: Runtime(k, n, self.log), task_status=task_status,
                                  then=Runtime.resume, close=Runtime.close)


class Plugin:
    def __init__(self, service) -> None:
        self.service = service

    @hookimpl
    def aegis_register_services(self, register):
        register("rt", self.service)


@pytest.fixture(autouse=True)
def empty_project(write_config):
    write_config("plugins:\n  disabled: []\n")


@pytest.mark.trio
async def test_the_runtime_is_published_after_its_start_and_closed_when_the_kernel_stops(make_kernel):
    log: list[str] = []
    async with make_kernel(entry_points=False, extra_plugins=[("rt", Plugin(Service(log)))]) as kernel:
        rt = kernel.service(Runtime)
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["start (published: False)", "resume (published: True)"]
        assert rt.kernel is kernel
    assert log[-1] == "close" and kernel.find_service(Runtime) is None


@pytest.mark.trio
async def test_a_failed_start_publishes_nothing_and_still_closes():
    log: list[str] = []

    class NoKernel:
        def find_service(self, kind):
            return None

    published: list[object] = []

    class Status:
        def started(self, value=None):
            published.append(value)

    with pytest.raises(BaseException) as info:
        await run_service_runtime(NoKernel(), lambda k, n: Runtime(k, n, log, fail=True), task_status=Status(),
                                  then=Runtime.resume, close=Runtime.close)
    assert info.group_contains(ValueError, match="corrupt") if isinstance(info.value, BaseExceptionGroup) \
        else isinstance(info.value, ValueError)
    assert published == [] and log == ["start (published: False)", "close"]
