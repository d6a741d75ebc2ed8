"""Operations: named, schema'd actions that plugins contribute and agents/CLI/TUI call.

The MCP plane exposes every operation as a tool; the control socket and the CLI call the same
operations. A handler is ``async def handler(ctx: CallContext, **arguments) -> JSON-able``; it
raises :class:`OperationError` for a refusal the caller should read. Arguments are validated against
``params`` (a JSON-schema object) before the handler runs, so handlers see well-typed values.

Authorization is enforced here, once, for every transport. Every call carries a principal
(:class:`Caller`): ``user`` (the owner-only control socket, the TUI), ``agent:<handle>`` (an MCP
token), ``peer:<name>`` (the remote plane) or ``telegram:<chat>``. Each operation declares which
kinds may call it (``callers``, default user and agents) and, optionally, a relational ``check`` — e.g.
"an agent may close only the sessions it spawned" — run before the handler. A refused call is an
:class:`OperationError` with code ``forbidden`` naming the operation and the principal.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from attrs import Factory, field, frozen

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


PRINCIPAL_KINDS = ("user", "agent", "peer", "telegram")
DEFAULT_CALLERS = frozenset({"user", "agent"})


def _default_kind(caller: Caller) -> str:
    return "agent" if caller.handle else "user"


@frozen
class Caller:
    """The principal of a call: an agent session (``handle``), the user, a peer or a Telegram chat.

    ``Caller()`` is the user, ``Caller("brisk-curie", via="mcp")`` an agent; the remote plane and the
    Telegram bot build theirs with :meth:`peer` and :meth:`telegram`. ``via`` names the transport
    (mcp | socket | tui | user | remote | telegram) and never grants anything by itself.
    """

    handle: str | None = None
    via: str = "user"
    kind: str = field(default=Factory(_default_kind, takes_self=True))
    name: str | None = None  # the peer's name or the chat id, for peer/telegram principals

    def __attrs_post_init__(self) -> None:
        if self.kind not in PRINCIPAL_KINDS:
            raise ValueError(f"unknown principal kind {self.kind!r} (one of {', '.join(PRINCIPAL_KINDS)})")
        if (self.kind == "agent") != bool(self.handle):
            raise ValueError("an agent principal has a handle, and only an agent principal has one")

    @classmethod
    def peer(cls, name: str, via: str = "remote") -> Caller:
        return cls(None, via=via, kind="peer", name=name)

    @classmethod
    def telegram(cls, chat: str | int, via: str = "telegram") -> Caller:
        return cls(None, via=via, kind="telegram", name=str(chat))

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def tag(self) -> str:
        if self.kind == "agent":
            return f"agent:{self.handle}"
        if self.kind in ("peer", "telegram"):
            return f"{self.kind}:{self.name}"
        return "user"


Principal = Caller  # the name the docs use


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


Check = Callable[["CallContext", Mapping[str, Any]], "str | None"]


def _callers(value: Any) -> frozenset[str]:
    kinds = frozenset([value] if isinstance(value, str) else value)
    unknown = kinds - set(PRINCIPAL_KINDS)
    if unknown or not kinds:
        raise ValueError(f"callers must be a non-empty subset of {PRINCIPAL_KINDS}, got {sorted(value)!r}")
    return kinds


@frozen
class Operation:
    """One operation.

    ``handler`` is an async callable or a lazy ``"module:function"`` reference, imported on first call.
    ``callers``: the principal kinds that may call it (``user``, ``agent``, ``peer``, ``telegram``).
    ``check``: an optional relational rule ``check(ctx, arguments) -> refusal reason | None`` (or a lazy
    reference to one), run after validation and before the handler, for every caller.
    ``approval``: an optional rule ``approval(ctx, arguments) -> question | None`` (or a lazy reference):
    a question means an agent's call waits until a person answers it (the agent's session is
    ``input-required``; ``aegis approve``/``deny`` or the TUI answer); a refusal is ``forbidden``. The
    rule may raise :class:`OperationError` to refuse outright (a ``deny`` policy). The user's own calls
    (``user``, ``telegram``) need no approval; a peer's call that would need one is refused.
    ``stream``: the handler is an async generator yielding batches (lists) of JSON-able items; the
    registry's :meth:`OperationRegistry.call` returns the generator and transports that can stream
    (the control socket) forward each item as it comes. The MCP plane never lists streaming operations.
    """

    name: str
    handler: Handler | str
    description: str
    params: Mapping[str, Any] = field(factory=lambda: {"type": "object", "properties": {}})
    callers: frozenset[str] = field(default=DEFAULT_CALLERS, converter=_callers)
    check: Check | str | None = None
    stream: bool = False
    approval: Check | str | None = None

    def allows(self, caller: Caller) -> bool:
        return caller.kind in self.callers

    def resolve_check(self) -> Check | None:
        if isinstance(self.check, str):
            object.__setattr__(self, "check", load_ref(self.check))
        return self.check  # type: ignore[return-value]

    def resolve_approval(self) -> Check | None:
        if isinstance(self.approval, str):
            object.__setattr__(self, "approval", load_ref(self.approval))
        return self.approval  # type: ignore[return-value]

    @property
    def properties(self) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = self.params.get("properties", {})
        return properties

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

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plugin folder's module was reloaded without it); absent names are ignored."""
        self._ops.pop(name, None)

    def __iter__(self) -> Iterator[Operation]:
        return iter(sorted(self._ops.values(), key=lambda op: op.name))

    def __len__(self) -> int:
        return len(self._ops)

    async def call(self, kernel: Kernel, name: str, arguments: Mapping[str, Any] | None, caller: Caller) -> Any:
        """Validate and run one operation. Raises OperationError for unknown names or bad arguments.

        Optional parameters without a default are left out of the call: handlers give them Python
        defaults.

        If the schema has a ``from_handle`` property and the caller is an agent, it must equal the
        caller's handle (an agent cannot act as another); a peer may not name one at all (a remote
        principal never acts as a local agent). The person's own principals (``user``, ``telegram``)
        may name an agent.
        """
        op = self._ops.get(name)
        if op is None:
            raise OperationError(f"unknown operation '{name}' (see aegis_meta)", code="unknown_operation")
        if not op.allows(caller):
            raise forbidden(op.name, caller, f"it is for {' and '.join(sorted(op.callers))} callers")
        arguments = dict(arguments or {})
        if "from_handle" in op.properties and caller.handle is not None:
            claimed = arguments.get("from_handle")
            if claimed not in (None, "", caller.handle):
                raise OperationError(f"from_handle '{claimed}' is not you: you are '{caller.handle}'",
                                     code="forbidden", param="from_handle")
            arguments["from_handle"] = caller.handle  # identity comes from the token, never the argument
        elif "from_handle" in op.properties and caller.kind == "peer" and arguments.get("from_handle"):
            raise forbidden(op.name, caller, "a peer cannot act as an agent (from_handle)", param="from_handle")
        args = validate_arguments(op.params, arguments)
        ctx = CallContext(kernel, caller)
        check = op.resolve_check()
        if check is not None:
            reason = check(ctx, args)
            if reason:
                raise forbidden(op.name, caller, reason)
        await _approve(op, ctx, args)
        from .delivery import DeliveryError
        from .sessions import SessionError

        if op.stream:  # an async generator: the transport drives it
            return _refusing(op.resolve()(ctx, **args))
        try:
            return await op.resolve()(ctx, **args)
        except (SessionError, DeliveryError) as exc:  # the kernel's own refusals, structured for every transport
            raise OperationError(str(exc), code="refused") from None

    def visible_to(self, caller: Caller) -> list[Operation]:
        """The operations ``caller`` may call (what the MCP plane lists as tools for an agent)."""
        return [op for op in self if op.allows(caller)]


async def _refusing(items: Any) -> AsyncIterator[Any]:
    """A streaming handler's batches, the kernel's own refusals raised while it runs (its body only
    runs once iterated: an unknown session) turned into :class:`OperationError` as for any handler."""
    from .delivery import DeliveryError
    from .sessions import SessionError

    try:
        async for batch in items:
            yield batch
    except (SessionError, DeliveryError) as exc:
        raise OperationError(str(exc), code="refused") from None
    finally:
        await items.aclose()


async def _approve(op: Operation, ctx: CallContext, args: Mapping[str, Any]) -> None:
    """Enforce ``op.approval`` for ``ctx.caller`` (see :class:`Operation`); returns when the call may run."""
    rule = op.resolve_approval()
    if rule is None or ctx.caller.kind in ("user", "telegram"):
        return
    question = rule(ctx, args)
    if not question:
        return
    if ctx.caller.kind != "agent":
        raise forbidden(op.name, ctx.caller, f"it needs the user's approval ({question}), which only agents can ask")
    session = ctx.kernel.sessions.get(ctx.caller.handle) if ctx.caller.handle is not None else None
    if session is None:
        raise forbidden(op.name, ctx.caller, "it needs the user's approval and the calling session is gone")
    if not await session.ask_user(op.name, question, dict(args)):
        raise forbidden(op.name, ctx.caller, f"the user denied it ({question})")


def forbidden(operation: str, caller: Caller, reason: str, *, param: str | None = None) -> OperationError:
    """The one structured refusal: code ``forbidden``, naming the operation and the principal."""
    return OperationError(f"{operation} is not allowed for {caller.tag}: {reason}", code="forbidden",
                          param=param, operation=operation, principal=caller.tag)
