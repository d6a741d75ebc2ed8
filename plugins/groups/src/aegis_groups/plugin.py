"""aegis-groups plugin entry point. Import-light: the runtime (trio) is imported when the service starts.

Declares ``aegis_register_reducers`` (:mod:`aegis_groups.hookspecs`) and registers the built-in
reducers through it, the ``groups`` config section, the group operations, the groups service
(publishing ``kernel.service(GroupRuntime)``), ``aegis group …`` and the group tab (where aegis-tui
is installed). Members' replies come through the kernel's turn primitive, not through observer hooks;
the one observer here removes a member whose session is closed for good.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


class GroupService:
    """Runs one :class:`~aegis_groups.runtime.GroupRuntime` per kernel."""

    provides = "aegis_groups.runtime:GroupRuntime"

    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        from aegis_kernel import run_service_runtime

        from .runtime import GroupRuntime

        def close_journals(rt: GroupRuntime) -> None:
            for group in rt.groups.values():
                group.journal.close()

        await run_service_runtime(kernel, GroupRuntime, task_status=task_status, then=GroupRuntime.settle,
                                  close=close_journals)


@hookimpl
def aegis_add_hookspecs(pm: Any) -> None:
    from . import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def aegis_register_reducers(register: Any) -> None:
    from .reducers import BUILTINS

    for name, reducer in BUILTINS.items():
        register(name, reducer)


@hookimpl
def aegis_register_config_sections(register: Any) -> None:
    from .config import check_groups

    register("groups", dict[str, Any], check=check_groups)


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from .operations import OPERATIONS

    for name, handler, description, schema, extra in OPERATIONS:
        register(name, "aegis_groups.operations:" + handler, description, schema, **extra)


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("groups", GroupService())


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("group", "groups: list, show, spawn, broadcast, wait, dissolve", setup, run)


@hookimpl(optionalhook=True)  # declared by aegis-tui; without it there are no panels to contribute
def aegis_register_panels(register: Any) -> None:
    from .panels import group_tab

    register("groups", group_tab, kind="tab", key="f6", title="groups")


@hookimpl
def aegis_session_closed(session: Any, reason: str) -> None:
    from .runtime import GroupRuntime

    rt = session.kernel.find_service(GroupRuntime)
    if rt is not None:
        rt.on_session_closed(session, reason)
