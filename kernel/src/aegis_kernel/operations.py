"""Operations: named, schema'd actions that plugins contribute and agents/CLI/TUI call.

The MCP plane exposes every operation as a tool; the control socket and the CLI call the same
operations. A handler is ``async def handler(ctx: CallContext, **arguments) -> JSON-able``; it
raises :class:`OperationError` for a refusal the caller should read. Arguments are validated against
``params`` (a JSON-schema object) before the handler runs, so handlers see well-typed values.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

if TYPE_CHECKING:
    from .kernel import Kernel

NAME_RE = re.compile(r"^aegis_[a-z][a-z0-9_]*$")


class OperationError(Exception):
    """A refusal or a bad argument, reported to the caller as a structured error."""

    def __init__(self, message: str, *, code: str = "refused", param: str | None = None, **data: Any):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.data)  # extra data never overwrites the three core keys
        out.update(error=self.message, code=self.code)
        if self.param:
            out["param"] = self.param
        return out


@frozen
class Caller:
    """Who is calling: an agent session (``handle``) or the user (``handle=None``)."""

    handle: str | None = None
    via: str = "user"  # mcp | socket | tui | user | remote

    @property
    def tag(self) -> str:
        return f"agent:{self.handle}" if self.handle else "user"


@frozen
class CallContext:
    kernel: Kernel
    caller: Caller


Handler = Callable[..., Awaitable[Any]]


def load_ref(ref: str) -> Any:
    """Import ``"package.module:attribute"`` (lazy references keep plugin registration cheap)."""
    import importlib

    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"a lazy reference looks like 'package.module:attribute', got {ref!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@frozen
class Operation:
    """``handler`` is an async callable or a lazy ``"module:function"`` reference, imported on first call."""

    name: str
    handler: Handler | str
    description: str
    params: Mapping[str, Any] = field(factory=lambda: {"type": "object", "properties": {}})

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.params.get("properties", {})

    def resolve(self) -> Handler:
        if isinstance(self.handler, str):
            object.__setattr__(self, "handler", load_ref(self.handler))
        return self.handler  # type: ignore[return-value]


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}


def _type_ok(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else list(expected)
    for name in names:
        types = _TYPES.get(name, (object,))
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, types):
            return True
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True  # JSON has one number type: 3.0 is the integer 3 (2.5 is not)
    return False


def _describe(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
            list: "array", type(None): "null"}.get(type(value), type(value).__name__)


def validate_value(schema: Mapping[str, Any], value: Any, path: str) -> None:
    """Check ``value`` against a small strict JSON-schema subset; raise OperationError naming ``path``."""
    expected = schema.get("type")
    if expected is not None and not _type_ok(value, expected):
        want = expected if isinstance(expected, str) else " or ".join(expected)
        raise OperationError(
            f"argument '{path}' must be {want}, got {_describe(value)} {value!r:.60}",
            code="bad_argument", param=path,
        )
    if "enum" in schema and value not in schema["enum"]:
        raise OperationError(
            f"argument '{path}' must be one of {list(schema['enum'])}, got {value!r:.60}",
            code="bad_argument", param=path,
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise OperationError(f"argument '{path}' must be ≥ {schema['minimum']}, got {value}",
                                 code="bad_argument", param=path)
        if "maximum" in schema and value > schema["maximum"]:
            raise OperationError(f"argument '{path}' must be ≤ {schema['maximum']}, got {value}",
                                 code="bad_argument", param=path)
    if isinstance(value, str) and "minLength" in schema and len(value) < schema["minLength"]:
        raise OperationError(f"argument '{path}' must not be empty", code="bad_argument", param=path)
    if isinstance(value, (list, tuple)) and "items" in schema:
        for i, item in enumerate(value):
            validate_value(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict) and "properties" in schema:
        validate_arguments(schema, value, prefix=f"{path}.")


def validate_arguments(schema: Mapping[str, Any], arguments: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Validate a call's arguments; fill defaults; refuse unknown and missing ones."""
    if not isinstance(arguments, Mapping):
        raise OperationError("arguments must be an object", code="bad_argument")
    props: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in arguments:
            raise OperationError(f"missing required argument '{prefix}{name}'", code="bad_argument",
                                 param=f"{prefix}{name}")
    if schema.get("additionalProperties", False) is False:
        for name in arguments:
            if name not in props:
                known = ", ".join(props) or "none"
                raise OperationError(f"unknown argument '{prefix}{name}' (known: {known})",
                                     code="bad_argument", param=f"{prefix}{name}")
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if name in arguments:
            value = arguments[name]
            validate_value(sub, value, f"{prefix}{name}")
            if sub.get("type") == "integer" and isinstance(value, float):
                value = int(value)
            out[name] = value
        elif "default" in sub:
            out[name] = sub["default"]
    return out


def params(required: tuple[str, ...] = (), **properties: Mapping[str, Any]) -> dict[str, Any]:
    """Shorthand for an operation's parameter schema."""
    return {"type": "object", "properties": dict(properties), "required": list(required),
            "additionalProperties": False}


class OperationRegistry:
    """All operations by name. Filled at kernel build through ``aegis_register_operations``."""

    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}

    def add(self, op: Operation) -> None:
        self._ops[op.name] = op

    def get(self, name: str) -> Operation | None:
        return self._ops.get(name)

    def __iter__(self):
        return iter(sorted(self._ops.values(), key=lambda op: op.name))

    def __len__(self) -> int:
        return len(self._ops)

    async def call(self, kernel: Kernel, name: str, arguments: Mapping[str, Any] | None, caller: Caller) -> Any:
        """Validate and run one operation. Raises OperationError for unknown names or bad arguments.

        Optional parameters without a default are left out of the call: handlers give them Python
        defaults.

        If the schema has a ``from_handle`` property and the caller is an agent, it must equal the
        caller's handle (an agent cannot act as another).
        """
        op = self._ops.get(name)
        if op is None:
            raise OperationError(f"unknown operation '{name}' (see aegis_meta)", code="unknown_operation")
        arguments = dict(arguments or {})
        if "from_handle" in op.properties and caller.handle is not None:
            claimed = arguments.get("from_handle")
            if claimed not in (None, "", caller.handle):
                raise OperationError(f"from_handle '{claimed}' is not you: you are '{caller.handle}'",
                                     code="forbidden", param="from_handle")
            arguments["from_handle"] = caller.handle  # identity comes from the token, never the argument
        args = validate_arguments(op.params, arguments)
        return await op.resolve()(CallContext(kernel, caller), **args)
