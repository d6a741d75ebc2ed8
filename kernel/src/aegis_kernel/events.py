"""Typed events: what drivers report and what the kernel records.

Every driver turns its wire protocol into these frozen attrs records; everything above the driver
(sessions, metrics, transcript, TUI, queue results) sees only these. A turn always ends with exactly
one :class:`TurnResult`. Events are serialised into session logs with :func:`event_to_dict` /
:func:`event_from_dict` (tag ``"t"`` = class name).
"""

from __future__ import annotations

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

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        SystemInit, UserEcho, AssistantText, Thinking, ToolUse, ToolResult, Plan, UsageUpdate,
        CompactBoundary, PermissionRequest, ApprovalAnswered, TurnResult, AgentError, Unknown, UserTurn,
        EnvelopeReceived, StateChanged,
    )
}
_NESTED = {"usage": TokenUsage, "diff": Diff}


def event_to_dict(event: Any) -> dict[str, Any]:
    """Serialise an event to a JSON-ready dict tagged with ``"t"``."""
    data = attrs.asdict(event, recurse=True)
    return {"t": type(event).__name__, **data}


def event_from_dict(data: dict[str, Any]) -> Any:
    """Inverse of :func:`event_to_dict`; an unknown tag becomes :class:`Unknown`."""
    data = dict(data)
    cls = EVENT_TYPES.get(data.pop("t", ""))
    if cls is None:
        return Unknown(raw=repr(data), reason="unknown event tag")
    kwargs: dict[str, Any] = {}
    names = {a.name for a in attrs.fields(cls)}
    for key, value in data.items():
        if key not in names:
            continue
        if key in _NESTED and isinstance(value, dict):
            value = _NESTED[key](**value)
        elif key == "entries":
            value = tuple(PlanEntry(**e) for e in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


__all__ = [name for name in EVENT_TYPES] + [
    "TokenUsage", "PlanEntry", "Diff", "DriverEvent", "event_to_dict", "event_from_dict",
]
_ = field  # re-exported for plugin authors who define events of their own
