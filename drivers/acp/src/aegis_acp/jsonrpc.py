"""JSON-RPC 2.0 framing: the project's one codec lives in the kernel (:mod:`aegis_kernel.jsonrpc`);
this module keeps ``aegis_acp.jsonrpc`` importable for the driver and its users."""

from __future__ import annotations

from aegis_kernel.jsonrpc import (  # noqa: F401 - re-exported
    AUTH_REQUIRED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    PERMISSION_DENIED,
    RAW_KEEP,
    REQUEST_CANCELLED,
    RESOURCE_NOT_FOUND,
    ErrorResponse,
    Invalid,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    dumps,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_line,
    parse_obj,
)
