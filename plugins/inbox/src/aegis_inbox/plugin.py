"""Inbox plugin: registers the core operations (see :mod:`aegis_inbox.operations`)."""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from . import operations

    for name, handler, description, schema in operations.OPERATIONS:
        register(name, handler, description, schema)
