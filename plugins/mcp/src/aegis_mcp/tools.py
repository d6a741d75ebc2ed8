"""Operations as MCP tools, shared by the fast path and the SDK server (imports no ``mcp``).

:class:`ToolBridge` turns the kernel's operation registry into tool listings and turns a tool call
into an ``OperationRegistry.call`` plus one comms-ledger record. Results are plain JSON dicts in the
``CallToolResult`` wire shape, so the fast path can serialize them directly and the SDK server can
validate them into its model — both paths answer the same bytes-for-meaning.

Result shape:

* success: ``content`` = one text block (a ``str`` result verbatim, anything else ``json.dumps``),
  ``structuredContent`` = the result when it is an object, else ``{"result": <value>}``;
* ``OperationError`` (unknown tool, bad argument — naming ``param`` —, ``from_handle`` not the caller,
  refusal): ``isError: true``, text = ``json.dumps(err.to_dict())``, ``structuredContent`` = that dict;
* any other exception: ``isError: true``, text ``internal error in <tool>: <exc>``; logged with its
  traceback, which never reaches the agent.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aegis_kernel import Caller, OperationError, redact_secrets as redact, unwrap_group

from .ledger import CommsLedger, call_target

if TYPE_CHECKING:
    from aegis_kernel import OperationRegistry

log = logging.getLogger("aegis_mcp")

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def result_text(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


def ok_result(value: Any) -> dict[str, Any]:
    return {
        "content": [{"type": "text", "text": result_text(value)}],
        "structuredContent": value if isinstance(value, dict) else {"result": value},
        "isError": False,
    }


def error_result(err: OperationError) -> dict[str, Any]:
    data = err.to_dict()
    return {"content": [{"type": "text", "text": _dumps(data)}], "structuredContent": data, "isError": True}


def internal_error_result(tool: str, exc: BaseException) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": redact(f"internal error in {tool}: {exc}")}], "isError": True}


class ToolBridge:
    """The kernel's operations, seen as MCP tools. Looked up on every call: late operations appear."""

    def __init__(self, kernel: Any, ledger: CommsLedger | None, identities: Any = None):
        self.kernel = kernel
        self.ledger = ledger
        #: ``resolve(token) -> handle | None``: the plane's identities (default: ``kernel.identities``)
        self.identities = identities

    @property
    def operations(self) -> OperationRegistry:
        return self.kernel.operations

    def resolve(self, token: str) -> str | None:
        """The session handle a URL token belongs to, or None (the request is then refused)."""
        if not token:
            return None
        try:
            identities = self.identities if self.identities is not None else self.kernel.identities
            return identities.resolve(token)
        except Exception:  # a broken identity table refuses rather than serves
            log.exception("identity lookup failed")
            return None

    def list_tools(self) -> list[dict[str, Any]]:
        """Every operation agents may call, as an MCP ``Tool`` (wire shape), sorted by name."""
        return [{"name": op.name, "description": op.description, "inputSchema": dict(op.params)}
                for op in self.operations if "agent" in op.callers and not op.stream]

    def has_tool(self, name: str) -> bool:
        return self.operations.get(name) is not None

    async def call(self, handle: str | None, name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Run one tool call as ``handle``; returns the ``CallToolResult`` dict. Never raises
        (except for cancellation); records one comms-ledger line."""
        started_wall = time.time()
        t0 = time.perf_counter()
        code: str | None = None
        try:
            caller = Caller(handle=handle, via="mcp", kind="agent")  # never the user, whatever the handle
            value = await self.operations.call(self.kernel, name, arguments, caller)
            result, outcome = ok_result(value), "ok"
        except OperationError as err:
            result, outcome, code = error_result(err), "refused", err.code
        except ExceptionGroup as group:  # a handler's nursery wrapped a refusal
            inner = unwrap_group(group)
            if isinstance(inner, OperationError):
                result, outcome, code = error_result(inner), "refused", inner.code
            else:
                log.exception("tool %s failed (caller %s)", name, handle)
                result, outcome, code = internal_error_result(name, inner), "error", "internal"
        except Exception as exc:
            log.exception("tool %s failed (caller %s)", name, handle)
            result, outcome, code = internal_error_result(name, exc), "error", "internal"
        if self.ledger is not None:
            self.ledger.record(
                call_id=os.urandom(8).hex(), handle=handle, tool=name, target=call_target(arguments),
                outcome=outcome, duration_ms=(time.perf_counter() - t0) * 1000, code=code,
                started=started_wall,
            )
        return result


