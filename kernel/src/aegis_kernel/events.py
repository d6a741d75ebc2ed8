"""Typed events: what drivers report and what the kernel records.

Every driver turns its wire protocol into these frozen attrs records; everything above the driver
(sessions, metrics, transcript, TUI, queue results) sees only these. A turn always ends with exactly
one :class:`TurnResult`. Events are serialised into session logs with :func:`event_to_dict` /
:func:`event_from_dict` (tag ``"t"`` = class name, or the name it was registered under).

The set is open: a plugin registers its own frozen attrs event classes
(``aegis_register_event_types(register)`` → ``register(cls, name=None)``, or
:func:`register_event_type`), and its events then round-trip through transcripts like the kernel's.
A record whose type nobody registered (its plugin was uninstalled or disabled) is never dropped: it
is read as :class:`UnknownEvent` holding the record verbatim, and written back unchanged.
"""

from __future__ import annotations

import logging
import re
import types
import typing
from typing import Any

import attrs
from attrs import field, frozen


@frozen
class TokenUsage:
    """Token counts of one model request or one turn.

    ``input`` is *uncached* input only (as the APIs report it); :attr:`true_input` adds the cache.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0

    @property
    def true_input(self) -> int:
        return self.input + self.cache_read + self.cache_creation

    @property
    def cached_pct(self) -> int:
        total = self.true_input
        return round(100 * self.cache_read / total) if total else 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_creation + other.cache_creation,
        )


@frozen
class PlanEntry:
    content: str
    status: str = "pending"  # pending | in_progress | completed
    priority: str = "medium"


@frozen
class Diff:
    """An edit made by a tool: the whole old and new text of the changed region."""

    path: str
    old_text: str
    new_text: str


# --- driver events -------------------------------------------------------------------------------


@frozen
class SystemInit:
    """The agent reported its own session id (persist it at once: it is what resume needs)."""

    session_id: str
    model: str | None = None
    version: str | None = None
    tools: tuple[str, ...] = ()


@frozen
class UserEcho:
    """A user turn replayed by the agent (history on load/resume, or an echo)."""

    text: str


@frozen
class AssistantText:
    """Assistant text.

    ``partial=True`` marks a streaming preview: ``text`` is only the *new* piece (a token delta), and a
    later non-partial event of the same message supersedes all of them. Non-partial pieces of one
    message concatenate to the whole message (ACP chunks are non-partial).
    """

    text: str
    message_id: str | None = None
    parent_tool_use_id: str | None = None
    partial: bool = False


@frozen
class Thinking:
    text: str
    message_id: str | None = None
    parent_tool_use_id: str | None = None
    partial: bool = False


@frozen
class ToolUse:
    """The agent called a tool. ``kind``: read|edit|delete|move|search|execute|think|fetch|other."""

    tool_call_id: str
    name: str
    kind: str = "other"
    summary: str = ""
    raw_input: Any = None
    parent_tool_use_id: str | None = None


@frozen
class ToolResult:
    tool_call_id: str
    text: str
    is_error: bool = False
    kind: str | None = None
    diff: Diff | None = None
    parent_tool_use_id: str | None = None


@frozen
class Plan:
    """A cumulative snapshot of the agent's plan (not a delta)."""

    entries: tuple[PlanEntry, ...]
    parent_tool_use_id: str | None = None


@frozen
class UsageUpdate:
    """Usage of one model request while the turn runs, and/or context use reported by the agent.

    ``usage`` is one request's usage (never a running sum); ``context_used``/``context_size`` come
    from agents that report them (ACP ``usage_update``).
    """

    usage: TokenUsage | None = None
    context_used: int | None = None
    context_size: int | None = None
    cost_usd: float | None = None


@frozen
class CompactBoundary:
    trigger: str = ""
    pre_tokens: int = 0
    post_tokens: int = 0


@frozen
class PermissionRequest:
    """The agent asks whether it may run a tool; answered through the approval broker."""

    request_id: str
    tool_name: str
    kind: str = "other"
    summary: str = ""
    raw_input: Any = None
    options: tuple[str, ...] = ()  # the agent's option ids, for display; answers are chosen by kind


@frozen
class ApprovalAnswered:
    """The user answered a ``PermissionRequest`` (``always``: for the rest of the session)."""

    request_id: str
    tool_name: str
    allow: bool
    always: bool = False


@frozen
class TurnResult:
    """The end of a turn. ``stop_reason``: end_turn|cancelled|max_tokens|refusal|error|…

    ``usage`` is this turn's usage summed over its requests; ``cost_usd`` is *this turn's* cost
    (never a running total for the process) — metrics add turns up.
    """

    stop_reason: str = "end_turn"
    is_error: bool = False
    usage: TokenUsage | None = None
    cost_usd: float | None = None
    duration_ms: int | None = None
    num_requests: int | None = None
    error: str | None = None


@frozen
class AgentError:
    """The agent process failed (died, unreadable output, failed spawn): argv, exit code, stderr tail."""

    message: str
    exit_code: int | None = None
    stderr_tail: str = ""


@frozen
class Unknown:
    """A frame the codec did not understand; kept, never fatal."""

    raw: str
    reason: str = ""


# --- kernel events (written to the same session log) --------------------------------------------


@frozen
class UserTurn:
    """A turn sent to the agent: typed by the user or assembled from envelopes."""

    text: str
    sender: str = "user"


@frozen
class EnvelopeReceived:
    """An envelope that reached this session (rendered ``✉ from <sender> · <ts>``)."""

    envelope_id: str
    sender: str
    body: str
    ts: str
    task_id: str | None = None
    status: str | None = None


@frozen
class StateChanged:
    old: str
    new: str
    reason: str = ""


@frozen
class UnknownEvent:
    """A recorded event of a type no installed plugin registered (tag ``type``), kept verbatim.

    ``data`` is the record without its tag, exactly as read; :func:`event_to_dict` writes it back
    unchanged, so replaying and rewriting a transcript never loses a plugin's events. Shown as
    :meth:`describe` says (``canvas.Stroke event (kept as recorded: its plugin is not installed or not
    loaded here)``: a thin client such as ``aegis transcript`` loads no plugins).
    """

    type: str
    data: dict[str, Any] = field(factory=dict, hash=False)

    def describe(self) -> str:
        what = self.type or "(untagged)"
        return f"{what} event (kept as recorded: its plugin is not installed or not loaded here)"


DriverEvent = (
    SystemInit
    | UserEcho
    | AssistantText
    | Thinking
    | ToolUse
    | ToolResult
    | Plan
    | UsageUpdate
    | CompactBoundary
    | PermissionRequest
    | TurnResult
    | AgentError
    | Unknown
)

KERNEL_EVENT_TYPES: tuple[type, ...] = (
    SystemInit, UserEcho, AssistantText, Thinking, ToolUse, ToolResult, Plan, UsageUpdate,
    CompactBoundary, PermissionRequest, ApprovalAnswered, TurnResult, AgentError, Unknown, UserTurn,
    EnvelopeReceived, StateChanged,
)
EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in KERNEL_EVENT_TYPES}
"""Every event type serialisable by tag: the kernel's and the ones plugins registered (process-wide)."""
_TAGS: dict[type, str] = {cls: name for name, cls in EVENT_TYPES.items()}
_NESTED = {"usage": TokenUsage, "diff": Diff}
log = logging.getLogger("aegis.events")
_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")


class EventTypeError(ValueError):
    """A refused event-type registration: not an attrs class, a bad tag, or a tag another class owns."""


def register_event_type(cls: type, name: str | None = None) -> str:
    """Make ``cls`` (an attrs class, frozen by convention) serialisable under tag ``name`` (default: the
    class name; plugins should prefix theirs, e.g. ``"canvas.Stroke"``). Returns the tag.

    Registering the same class under the same tag again is a no-op (kernels are built many times per
    process); a tag owned by another class, a kernel tag, a bad tag or a non-attrs class raises
    :class:`EventTypeError`. Nested attrs records and tuples in the class's fields are rebuilt on
    replay from the field annotations.
    """
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise EventTypeError(f"event type {cls!r} is not an attrs class (decorate it with @attrs.frozen)")
    tag = cls.__name__ if name is None else name
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise EventTypeError(f"invalid event tag {tag!r}: letters, digits, '_', '.', ':' or '-', starting with a letter")
    owner = EVENT_TYPES.get(tag)
    if owner is cls:
        return tag
    if owner is not None:
        where = "the kernel" if owner in KERNEL_EVENT_TYPES else f"{owner.__module__}.{owner.__qualname__}"
        raise EventTypeError(f"event tag {tag!r} is already taken by {where}")
    if cls in _TAGS:
        raise EventTypeError(f"event type {cls.__qualname__} is already registered as {_TAGS[cls]!r}")
    EVENT_TYPES[tag] = cls
    _TAGS[cls] = tag
    return tag


def collect_event_types(hook: Any) -> list[str]:
    """Register every plugin's event types: calls ``aegis_register_event_types`` through pluggy (``hook``
    is ``pm.hook``). A refused type is logged and returned as a problem; ``register`` never raises, so
    one plugin's mistake never stops another's types (the kernel calls this when it is built)."""
    caller = getattr(hook, "aegis_register_event_types", None)
    if caller is None:
        return []
    problems: list[str] = []

    def register(cls: type, name: str | None = None) -> None:
        try:
            register_event_type(cls, name)
        except EventTypeError as exc:
            where = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"
            problems.append(f"event type {where} refused: {exc}")
            log.error("%s", problems[-1])

    try:
        caller(register=register)
    except Exception as exc:  # noqa: BLE001 - a broken registration hook must not stop the kernel
        problems.append(f"aegis_register_event_types failed: {type(exc).__name__}: {exc}")
        log.exception("aegis_register_event_types failed")
    return problems


def event_to_dict(event: Any) -> dict[str, Any]:
    """Serialise an event to a JSON-ready dict tagged with ``"t"`` (an :class:`UnknownEvent` as it was read)."""
    if isinstance(event, UnknownEvent):
        return {"t": event.type, **event.data} if event.type else dict(event.data)
    data = attrs.asdict(event, recurse=True)
    return {"t": _TAGS.get(type(event), type(event).__name__), **data}


def event_from_dict(data: dict[str, Any]) -> Any:
    """Inverse of :func:`event_to_dict`. A tag nobody registered, or a record its registered class can no
    longer be built from, becomes an :class:`UnknownEvent` holding the record verbatim. Never raises on
    content."""
    data = dict(data)
    tag = data.pop("t", "")
    cls = EVENT_TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        return UnknownEvent(type=tag if isinstance(tag, str) else str(tag), data=data)
    try:
        return _build(cls, data, kernel=cls in KERNEL_EVENT_TYPES)
    except (TypeError, ValueError, AttributeError, NameError):
        return UnknownEvent(type=tag, data=data)


def _build(cls: type, data: dict[str, Any], *, kernel: bool) -> Any:
    fields = {a.name: a for a in attrs.fields(cls)}
    if not kernel:
        attrs.resolve_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            continue
        if kernel:
            if key in _NESTED and isinstance(value, dict):
                value = _NESTED[key](**value)
            elif key == "entries":
                value = tuple(PlanEntry(**e) for e in value)
            elif isinstance(value, list):
                value = tuple(value)
        else:
            value = _structure(fields[key].type, value)
        kwargs[key] = value
    return cls(**kwargs)


def _structure(annotation: Any, value: Any) -> Any:
    """Rebuild nested attrs records and tuples of a plugin event's field from their JSON form."""
    if isinstance(value, dict):
        for candidate in _candidates(annotation):
            if isinstance(candidate, type) and attrs.has(candidate):
                attrs.resolve_types(candidate)
                return _build(candidate, value, kernel=False)
        return value
    if isinstance(value, (list, tuple)):
        for candidate in _candidates(annotation):
            if candidate is tuple or typing.get_origin(candidate) is tuple:
                args = [a for a in typing.get_args(candidate) if a is not Ellipsis]
                inner = args[0] if args else Any
                return tuple(_structure(inner, item) for item in value)
        return value
    return value


def _candidates(annotation: Any) -> tuple[Any, ...]:
    """``X | None`` → ``(X, NoneType)``; anything else → ``(annotation,)``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)


__all__ = [name for name in EVENT_TYPES] + [
    "TokenUsage", "PlanEntry", "Diff", "DriverEvent", "UnknownEvent", "EventTypeError", "KERNEL_EVENT_TYPES",
    "event_to_dict", "event_from_dict", "register_event_type", "collect_event_types",
]
_ = field  # re-exported for plugin authors who define events of their own
