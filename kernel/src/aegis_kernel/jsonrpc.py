"""JSON-RPC 2.0 framing for newline-delimited transports (ACP agents' stdio, the control socket). Sans-I/O, pure.

Building: :func:`encode_request`, :func:`encode_notification`, :func:`encode_result`,
:func:`encode_error` return one line of UTF-8 JSON **without** the trailing newline (the transport
adds it); JSON never contains a raw newline, so a frame is always exactly one line.

Parsing: :func:`parse_line` turns one line into exactly one of :class:`Request`,
:class:`Notification`, :class:`Response`, :class:`ErrorResponse` or :class:`Invalid`. It validates the
envelope at the edge (``jsonrpc == "2.0"``, id types, ``method`` a string, ``params`` structured,
``error.code`` an integer, ``error.message`` a string) and never raises: garbage becomes
:class:`Invalid` with a reason.
"""

from __future__ import annotations

import json
from typing import Any

from attrs import frozen

# Standard and ACP error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
AUTH_REQUIRED = -32000
RESOURCE_NOT_FOUND = -32002
PERMISSION_DENIED = -32001  # Aegis's answer to a client capability (fs/*) its approval policy refused

RAW_KEEP = 4096  # characters of a bad frame kept for diagnostics

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_loads = json.loads

RequestId = int | str


@frozen
class Request:
    """A call expecting a response (``id`` present)."""

    id: RequestId
    method: str
    params: Any = None


@frozen
class Notification:
    """A call without ``id``: no response."""

    method: str
    params: Any = None


@frozen
class Response:
    id: RequestId
    result: Any = None


@frozen
class ErrorResponse:
    """An error reply; ``id`` is None when the peer could not read our request's id."""

    id: RequestId | None
    code: int
    message: str
    data: Any = None


@frozen
class Invalid:
    """A line that is not a JSON-RPC 2.0 message. ``raw`` is cut to :data:`RAW_KEEP` characters."""

    raw: str
    reason: str


Message = Request | Notification | Response | ErrorResponse | Invalid


def _raw(line: bytes | str) -> str:
    text = line.decode("utf-8", errors="replace") if isinstance(line, (bytes, bytearray)) else line
    return text if len(text) <= RAW_KEEP else text[:RAW_KEEP] + f"… ({len(text)} chars)"


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def parse_line(line: bytes | str) -> Message:
    """Parse one frame. Never raises."""
    try:
        obj = _loads(line)
    except (ValueError, UnicodeDecodeError, TypeError):
        return Invalid(_raw(line), "not JSON")
    except RecursionError:  # absurd nesting: json.loads raises this, not a ValueError
        return Invalid(_raw(line), "not JSON: nested too deeply")
    return parse_obj(obj, line)


def parse_obj(obj: Any, line: bytes | str = "") -> Message:
    """Classify an already-decoded JSON value (``line`` only feeds :class:`Invalid`). Never raises."""
    if type(obj) is not dict:
        return Invalid(_raw(line), "not a JSON object")
    if obj.get("jsonrpc") != "2.0":
        return Invalid(_raw(line), "missing jsonrpc: \"2.0\"")
    method = obj.get("method")
    if method is not None:
        if type(method) is not str:
            return Invalid(_raw(line), "method is not a string")
        params = obj.get("params")
        if params is not None and type(params) not in (dict, list):
            return Invalid(_raw(line), "params is neither an object nor an array")
        if "id" in obj:
            rid = obj["id"]
            if not _valid_id(rid):
                return Invalid(_raw(line), "request id is neither an integer nor a string")
            return Request(rid, method, params)
        return Notification(method, params)
    if "id" not in obj:
        return Invalid(_raw(line), "neither a call (method) nor a response (id)")
    rid = obj["id"]
    if "error" in obj:
        err = obj["error"]
        if rid is not None and not _valid_id(rid):
            return Invalid(_raw(line), "response id is neither an integer nor a string")
        if type(err) is not dict:
            return Invalid(_raw(line), "error is not an object")
        code, message = err.get("code"), err.get("message")
        if type(code) is not int or type(message) is not str:
            return Invalid(_raw(line), "error needs an integer code and a string message")
        return ErrorResponse(rid, code, message, err.get("data"))
    if not _valid_id(rid):
        return Invalid(_raw(line), "response id is neither an integer nor a string")
    if "result" not in obj:
        return Invalid(_raw(line), "response without result or error")
    return Response(rid, obj["result"])


# --- building -------------------------------------------------------------------------------------
# Values JSON cannot hold are written as their str(); a lone surrogate becomes "?" (never a raise).


def encode_request(rid: RequestId, method: str, params: Any = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return _dumps(msg).encode("utf-8", "replace")


def encode_notification(method: str, params: Any = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return _dumps(msg).encode("utf-8", "replace")


def encode_result(rid: RequestId, result: Any) -> bytes:
    return _dumps({"jsonrpc": "2.0", "id": rid, "result": result}).encode("utf-8", "replace")


def encode_error(rid: RequestId | None, code: int, message: str, data: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return _dumps({"jsonrpc": "2.0", "id": rid, "error": err}).encode("utf-8", "replace")


def dumps(value: Any) -> str:
    """Compact JSON (used for diagnostics)."""
    try:
        return _dumps(value)
    except (TypeError, ValueError):
        return repr(value)
