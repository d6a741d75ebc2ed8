"""``@workflow("name")``: mark an async function as a workflow (stdlib only, import-cheap).

The decorator does not register anything by itself: a distribution registers its workflows through
``aegis_register_workflows(register)`` (see :mod:`aegis_workflow.hookspecs`) and a project's
``.aegis/workflows/*.py`` files are scanned for decorated functions (see :mod:`aegis_workflow.catalog`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from attrs import frozen

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")  # the kernel registry's rule for names
ATTR = "__aegis_workflow__"


@frozen
class WorkflowDef:
    """A workflow: ``fn(engine, **kwargs)`` under ``name``; ``source`` says where it came from
    (a plugin's name or a project file), filled in when it is registered."""

    name: str
    fn: Callable[..., Any]
    description: str = ""
    source: str = ""

    def info(self) -> dict[str, Any]:
        params = [p for p in inspect.signature(self.fn).parameters.values()][1:]
        return {"name": self.name, "description": self.description, "source": self.source,
                "params": [{"name": p.name, "required": p.default is inspect.Parameter.empty
                            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} for p in params
                           if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]}


def workflow(name: str, *, description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark ``async def fn(engine, **kwargs)`` as the workflow ``name``; returns ``fn`` unchanged
    (with a :class:`WorkflowDef` in its ``__aegis_workflow__`` attribute). ``description`` defaults to
    the first line of the docstring."""
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"bad workflow name {name!r}: lowercase letters, digits, '_' or '-', starting with a letter")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"workflow {name!r}: {getattr(fn, '__qualname__', fn)!r} must be an async function")
        doc = description if description is not None else (inspect.getdoc(fn) or "").split("\n", 1)[0]
        setattr(fn, ATTR, WorkflowDef(name=name, fn=fn, description=doc))
        return fn

    return mark


def definition_of(obj: Any) -> WorkflowDef | None:
    """The :class:`WorkflowDef` of a decorated function, else None."""
    found = getattr(obj, ATTR, None)
    return found if isinstance(found, WorkflowDef) else None
