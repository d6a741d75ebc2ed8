"""The hook aegis-workflow declares (added through ``aegis_add_hookspecs``): any distribution ships workflows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
import pluggy

from aegis_kernel import registration_hook

from .decorator import WorkflowDef, definition_of

hookspec = pluggy.HookspecMarker("aegis")


class RegisterWorkflow(Protocol):
    def __call__(self, fn: Callable[..., Any], name: str | None = None) -> None: ...


def workflow_entry(fn: Callable[..., Any], name: str | None = None) -> tuple[str, WorkflowDef]:
    """One ``register(fn, name=None)`` call as the entry kept in ``kernel.plugins.registry["workflows"]``:
    ``fn`` is decorated with ``@workflow(...)`` (``name`` then renames it) or a plain async function
    (``name`` required)."""
    found = definition_of(fn)
    if found is None:
        if name is None:
            raise TypeError(f"{fn!r} is not decorated with @workflow(name): pass name=")
        from .decorator import workflow

        found = definition_of(workflow(name)(fn))
        assert found is not None
    elif name is not None and name != found.name:
        found = attrs.evolve(found, name=name)
    return found.name, found


@registration_hook("workflows", build=workflow_entry)
@hookspec
def aegis_register_workflows(register: RegisterWorkflow) -> None:
    """Contribute workflows (what ``aegis_run_workflow(name=...)`` and ``aegis workflow run`` name).

    :param register: ``register(fn, name=None)``; ``fn`` is an ``async def fn(engine, **kwargs)``
        decorated with ``@aegis_workflow.workflow("name")`` (or give ``name``).

    When: once per plugin, when the kernel is built (only where aegis-workflow is installed). Results:
    collected into ``kernel.plugins.registry["workflows"]``; a name registered twice is refused naming
    both plugins (a project file ``.aegis/workflows/*.py`` reusing a plugin's name is refused naming
    the file and the plugin). Raises: the plugin is marked ``failed`` and none of its registrations
    are kept.

    .. versionadded:: 0.1
    """
