"""Claude Code stream-json codec — sans-I/O.

Lines in, typed :mod:`aegis_kernel.events` out; messages out as plain dicts (:func:`encode` makes
the NDJSON line). Nothing here touches a process, a socket or the clock.

Reading (:class:`ClaudeParser`, one per agent process — it keeps per-session state)::

    parser = ClaudeParser()
    for event in parser.feed(line):       # str or bytes, one stdout line, no length limit
        ...
    for msg in parser.outbox: ...          # replies the transport must write (then clear it)

Frame → events (``parser.feed`` never raises; anything it cannot read becomes :class:`Unknown`):

=============================  ===================================================================
``system/init``                ``SystemInit(session_id, model, version=claude_code_version, tools)``
                               (the CLI re-sends it at the start of every turn)
``system/compact_boundary``    ``CompactBoundary(trigger, pre_tokens, post_tokens)``
``system/<notice>``            nothing for the out-of-band notices listed in :data:`QUIET_SYSTEM`
                               (``status``, ``hook_*``, ``task_*``, ``thinking_tokens`` …);
                               ``Unknown`` for any other subtype
``assistant``                  one event **per content block**, in order: ``text`` →
                               ``AssistantText``; ``thinking`` → ``Thinking``; ``tool_use`` →
                               ``ToolUse`` (or ``Plan`` for the plan tools, below);
                               ``*_tool_result`` → ``ToolResult``. Empty text/thinking blocks
                               (redacted thinking) give nothing. ``message.usage`` →
                               ``UsageUpdate`` once per message id (first)
``user``                       ``tool_result`` blocks → ``ToolResult`` (kind and Edit/Write diff
                               from the matching ``tool_use``); text → ``UserEcho``
``stream_event``               (``--include-partial-messages``) ``text_delta`` →
                               ``AssistantText(partial=True)``, ``thinking_delta`` →
                               ``Thinking(partial=True)`` — the *delta* text, stamped with the
                               message id; ``message_start`` usage → the message's
                               ``UsageUpdate`` if the ``assistant`` frame has not given it yet;
                               every other stream event → nothing
``result``                     ``TurnResult`` (see :meth:`ClaudeParser._result`)
``control_request``            ``can_use_tool`` → ``PermissionRequest``; any other subtype →
                               ``Unknown`` plus an error reply in :attr:`ClaudeParser.outbox`
``control_response``           nothing (an interrupt ack is remembered); an error → ``Unknown``
``rate_limit_event`` …         nothing (see :data:`QUIET_TYPES`)
anything else                  ``Unknown(raw[:2 KB], reason)``
=============================  ===================================================================

Usage: an ``assistant`` frame's ``message.usage`` is the API's ``message_start`` snapshot — the
request's whole input side (uncached, cache read, cache write) and a provisional ``output_tokens``
(1). It is *one request's* usage, so it is reported once per message id even though the CLI
repeats it on every frame of that message. The turn's true totals come with ``result.usage``
(summed over the turn's requests by the CLI).

Plans: ``TodoWrite`` (a full snapshot) and the ``TaskCreate``/``TaskUpdate``/``TaskList`` family
(deltas, with ids that arrive in the tool *result*) are folded into one cumulative ``Plan``; these
tool calls and their results produce ``Plan`` events instead of ``ToolUse``/``ToolResult``.

Writing: :func:`user_turn`, :func:`interrupt_request`, :func:`initialize_request`,
:func:`permission_response`, :func:`control_error`, :func:`encode`. Spawning: :func:`build_argv`,
:func:`build_env`.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aegis_kernel import (
    AssistantText,
    CompactBoundary,
    Diff,
    PermissionRequest,
    Plan,
    PlanEntry,
    SystemInit,
    Thinking,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    Unknown,
    UsageUpdate,
    UserEcho,
)

if TYPE_CHECKING:
    from aegis_kernel import McpEndpoint, SpawnSpec

__all__ = [
    "ClaudeParser", "TOOL_KINDS", "PERMISSION_MODES", "tool_kind", "tool_summary",
    "user_turn", "interrupt_request", "initialize_request", "permission_response", "control_error",
    "encode", "build_argv", "build_env", "brokers_permissions", "mcp_config_json", "mcp_config_argv",
    "INTERRUPTED_MARKER",
]

UNKNOWN_RAW_LIMIT = 2048
SUMMARY_LIMIT = 80
USAGE_IDS_KEPT = 4096

#: Claude's built-in tools → ACP tool kinds. ``mcp__<server>__<tool>`` and the rest → ``other``.
TOOL_KINDS: dict[str, str] = {
    "Read": "read",
    "Bash": "execute", "BashOutput": "execute", "KillShell": "execute",
    "Edit": "edit", "Write": "edit", "NotebookEdit": "edit", "MultiEdit": "edit",
    "Glob": "search", "Grep": "search",
    "WebFetch": "fetch", "WebSearch": "fetch",
    "Task": "think", "Agent": "think",
}
_SUMMARY_KEYS = {
    "Bash": "command", "Read": "file_path", "Write": "file_path", "Edit": "file_path",
    "MultiEdit": "file_path", "NotebookEdit": "notebook_path", "Glob": "pattern", "Grep": "pattern",
}
_PLAN_TOOLS = frozenset({"TodoWrite", "TaskCreate", "TaskUpdate", "TaskList"})

#: ``system`` subtypes that are out-of-band notices: no event.
QUIET_SYSTEM = frozenset({
    "status", "hook_started", "hook_progress", "hook_response", "task_started", "task_progress",
    "task_notification", "task_updated", "thinking_tokens", "commands_changed", "files_persisted",
    "informational", "local_command_output", "plugin_install",
})
#: top-level frame types that carry nothing for the transcript.
QUIET_TYPES = frozenset({"rate_limit_event", "keep_alive", "control_cancel_request", "auth_status"})

#: the text Claude writes as a user frame when a turn is interrupted (control interrupt or SIGINT).
INTERRUPTED_MARKER = "[Request interrupted by user]"

_TASK_CREATED = re.compile(r"Task #(\S+?)\b.*?created", re.S)
_TASK_ROW = re.compile(r"^#(\S+)\s+\[([a-z_]+)\]\s+(.*)$")


# --- helpers ------------------------------------------------------------------------------------


def tool_kind(name: str) -> str:
    """The ACP kind of a Claude tool name (``other`` for MCP and unknown tools)."""
    return TOOL_KINDS.get(name, "other")


def _shorten(text: str) -> str:
    if "\n" in text or "\r" in text or "\t" in text:
        text = " ".join(text.split())
    if len(text) > SUMMARY_LIMIT:
        text = text[: SUMMARY_LIMIT - 1] + "…"
    return text


def tool_summary(name: str, tool_input: Any) -> str:
    """One line (≤ 80 chars) saying what a call does: the command, path or pattern, else the first
    string argument."""
    if not isinstance(tool_input, dict):
        return ""
    key = _SUMMARY_KEYS.get(name)
    if key is not None:
        value = tool_input.get(key)
        if isinstance(value, str):
            return _shorten(value)
    for value in tool_input.values():
        if isinstance(value, str):
            return _shorten(value)
    return ""


def _int(value: Any) -> int:
    return value if type(value) is int else (int(value) if isinstance(value, float) else 0)


def _usage(data: Any) -> TokenUsage | None:
    if not isinstance(data, dict):
        return None
    return TokenUsage(
        input=_int(data.get("input_tokens")),
        output=_int(data.get("output_tokens")),
        cache_read=_int(data.get("cache_read_input_tokens")),
        cache_creation=_int(data.get("cache_creation_input_tokens")),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _result_text(content: Any) -> str:
    """A tool_result's content as text: a string as is, text blocks joined by newlines."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, dict):
                btype = block.get("type")
                if btype == "text":
                    parts.append(str(block.get("text", "")))
                elif btype == "image":
                    parts.append("[image]")
                else:
                    parts.append(json.dumps(block, ensure_ascii=False))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False)


def _unknown(raw: Any, reason: str) -> Unknown:
    if isinstance(raw, (bytes, bytearray)):
        text = bytes(raw[: UNKNOWN_RAW_LIMIT * 4]).decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        text = json.dumps(raw, ensure_ascii=False, default=repr)[: UNKNOWN_RAW_LIMIT * 2]
    return Unknown(raw=text[:UNKNOWN_RAW_LIMIT], reason=reason)


# --- the parser ---------------------------------------------------------------------------------


class ClaudeParser:
    """Per-session stream-json reader. Feed it every stdout line, in order.

    State kept between lines: each open tool call's kind and pending diff (until its result), the
    cumulative plan, message ids whose usage was reported, the message being streamed (per
    sub-agent), interrupt acknowledgements, and open permission requests' inputs.

    Attributes:
        session_id: the latest session id the agent reported (``system/init``).
        outbox: messages the transport must write to the agent's stdin (error replies to control
            requests this codec does not support). The transport clears it after writing.
    """

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.outbox: list[dict[str, Any]] = []
        self._kinds: dict[str, str] = {}
        self._diffs: dict[str, Diff] = {}
        self._plan_calls: dict[str, str] = {}  # tool_use id -> plan tool name
        self._plan: dict[str, dict[str, str]] = {}  # key -> {content, status}
        self._plan_pending: dict[str, str] = {}  # TaskCreate tool_use id -> provisional key
        self._usage_seen: OrderedDict[str, None] = OrderedDict()
        self._streaming: dict[str | None, str | None] = {}  # parent_tool_use_id -> message id
        self._interrupt_ids: set[str] = set()
        self._interrupted = False
        self._permission_inputs: dict[str, Any] = {}
        self._cost_so_far = 0.0  # result.total_cost_usd is cumulative over the process

    # --- public -------------------------------------------------------------------------------

    def feed(self, line: str | bytes) -> list[Any]:
        """Parse one stdout line into zero or more events. Never raises."""
        try:
            obj = json.loads(line)
        except (ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError: ValueErrors
            stripped = line.strip() if isinstance(line, (str, bytes)) else line
            if not stripped:
                return []
            return [_unknown(line, f"not JSON: {exc}")]
        try:
            if not isinstance(obj, dict):
                return [_unknown(line, "JSON but not an object")]
            return self.parse_frame(obj, line)
        except Exception as exc:  # a codec bug or a frame shape we never imagined: keep going
            return [_unknown(line, f"codec error: {type(exc).__name__}: {exc}")]

    def parse_frame(self, obj: dict[str, Any], raw: Any = None) -> list[Any]:
        """Parse one already-decoded frame (``raw`` is only used for :class:`Unknown`)."""
        ftype = obj.get("type")
        if ftype == "stream_event":
            return self._stream_event(obj)
        if ftype == "assistant":
            return self._assistant(obj)
        if ftype == "user":
            return self._user(obj)
        if ftype == "result":
            return [self._result(obj)]
        if ftype == "system":
            return self._system(obj, raw)
        if ftype == "control_request":
            return self._control_request(obj, raw)
        if ftype == "control_response":
            return self._control_response(obj, raw)
        if isinstance(ftype, str) and ftype in QUIET_TYPES:
            return []
        return [_unknown(raw if raw is not None else obj, f"unknown frame type {ftype!r}")]

    def interrupt_sent(self, request_id: str) -> None:
        """Note that an interrupt with ``request_id`` was written (its ack marks the turn cancelled)."""
        self._interrupt_ids.add(request_id)

    def permission_input(self, request_id: str) -> Any:
        """The tool input of an open permission request (for an ``allow`` reply); forgets it."""
        return self._permission_inputs.pop(request_id, None)

    @property
    def plan(self) -> tuple[PlanEntry, ...]:
        """The cumulative plan as it stands."""
        return tuple(PlanEntry(content=row["content"], status=row["status"]) for row in self._plan.values())

    # --- frames -------------------------------------------------------------------------------

    def _system(self, obj: dict[str, Any], raw: Any) -> list[Any]:
        subtype = obj.get("subtype")
        if subtype == "init":
            session_id = obj.get("session_id")
            session_id = session_id if isinstance(session_id, str) else ""
            if session_id:
                self.session_id = session_id
            tools = obj.get("tools")
            return [SystemInit(
                session_id=session_id,
                model=_str_or_none(obj.get("model")),
                version=_str_or_none(obj.get("claude_code_version")),
                tools=tuple(t for t in tools if isinstance(t, str)) if isinstance(tools, list) else (),
            )]
        if subtype == "compact_boundary":
            meta = obj.get("compact_metadata")
            meta = meta if isinstance(meta, dict) else {}
            return [CompactBoundary(
                trigger=str(meta.get("trigger") or ""),
                pre_tokens=_int(meta.get("pre_tokens")),
                post_tokens=_int(meta.get("post_tokens")),
            )]
        if isinstance(subtype, str) and subtype in QUIET_SYSTEM:
            return []
        return [_unknown(raw if raw is not None else obj, f"system subtype {subtype!r}")]

    def _note_usage(self, message_id: Any, usage: Any, out: list[Any]) -> None:
        if not isinstance(message_id, str) or message_id in self._usage_seen:
            return
        parsed = _usage(usage)
        if parsed is None:
            return
        self._usage_seen[message_id] = None
        if len(self._usage_seen) > USAGE_IDS_KEPT:
            self._usage_seen.popitem(last=False)
        out.append(UsageUpdate(usage=parsed))

    def _assistant(self, obj: dict[str, Any]) -> list[Any]:
        message = obj.get("message")
        if not isinstance(message, dict):
            return [_unknown(obj, "assistant frame without a message")]
        parent = obj.get("parent_tool_use_id")
        if not isinstance(parent, str):
            parent = None
        mid = message.get("id")
        if not isinstance(mid, str):
            mid = None
        out: list[Any] = []
        self._note_usage(mid, message.get("usage"), out)
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        elif not isinstance(content, list):
            return out
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                text = block.get("text")
                if isinstance(text, str) and text:
                    out.append(AssistantText(text=text, message_id=mid, parent_tool_use_id=parent))
            elif btype == "thinking":
                text = block.get("thinking")
                if isinstance(text, str) and text:
                    out.append(Thinking(text=text, message_id=mid, parent_tool_use_id=parent))
            elif btype in ("tool_use", "server_tool_use", "mcp_tool_use"):
                self._tool_use(block, parent, out)
            elif isinstance(btype, str) and btype.endswith("_tool_result"):
                tid = str(block.get("tool_use_id") or "")
                out.append(ToolResult(
                    tool_call_id=tid,
                    text=_result_text(block.get("content")),
                    is_error=bool(block.get("is_error")),
                    kind=self._kinds.pop(tid, None),
                    parent_tool_use_id=parent,
                ))
            elif btype == "redacted_thinking":
                continue
            else:
                out.append(_unknown(block, f"assistant content block {btype!r}"))
        return out

    def _tool_use(self, block: dict[str, Any], parent: str | None, out: list[Any]) -> None:
        name = block.get("name")
        name = name if isinstance(name, str) else ""
        tid = str(block.get("id") or "")
        tool_input = block.get("input")
        if name in _PLAN_TOOLS:
            self._plan_calls[tid] = name
            if self._plan_tool_use(name, tid, tool_input if isinstance(tool_input, dict) else {}):
                out.append(Plan(entries=self.plan, parent_tool_use_id=parent))
            return
        kind = TOOL_KINDS.get(name, "other")
        self._kinds[tid] = kind
        if isinstance(tool_input, dict) and kind == "edit":
            diff = _diff_of(name, tool_input)
            if diff is not None:
                self._diffs[tid] = diff
        out.append(ToolUse(
            tool_call_id=tid,
            name=name,
            kind=kind,
            summary=tool_summary(name, tool_input),
            raw_input=tool_input,
            parent_tool_use_id=parent,
        ))

    def _user(self, obj: dict[str, Any]) -> list[Any]:
        message = obj.get("message")
        if not isinstance(message, dict):
            return [_unknown(obj, "user frame without a message")]
        parent = obj.get("parent_tool_use_id")
        if not isinstance(parent, str):
            parent = None
        content = message.get("content")
        if isinstance(content, str):
            return self._echo(content)
        if not isinstance(content, list):
            return []
        out: list[Any] = []
        texts: list[str] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "tool_result":
                tid = str(block.get("tool_use_id") or "")
                is_error = bool(block.get("is_error"))
                text = _result_text(block.get("content"))
                plan_tool = self._plan_calls.pop(tid, None)
                if plan_tool is not None:
                    if self._plan_tool_result(plan_tool, tid, text, is_error):
                        out.append(Plan(entries=self.plan, parent_tool_use_id=parent))
                    continue
                diff = self._diffs.pop(tid, None)
                out.append(ToolResult(
                    tool_call_id=tid,
                    text=text,
                    is_error=is_error,
                    kind=self._kinds.pop(tid, None),
                    diff=None if is_error else diff,
                    parent_tool_use_id=parent,
                ))
            elif btype == "text":
                text = block.get("text")
                if isinstance(text, str) and not text.startswith("<system-reminder>"):
                    texts.append(text)
        if texts:
            out.extend(self._echo("\n".join(texts)))
        return out

    def _echo(self, text: str) -> list[Any]:
        if text.strip() == INTERRUPTED_MARKER:
            self._interrupted = True
        return [UserEcho(text=text)] if text else []

    def _stream_event(self, obj: dict[str, Any]) -> list[Any]:
        event = obj.get("event")
        if not isinstance(event, dict):
            return []
        etype = event.get("type")
        if etype == "content_block_delta":
            delta = event.get("delta")
            if not isinstance(delta, dict):
                return []
            dtype = delta.get("type")
            parent = obj.get("parent_tool_use_id")
            if not isinstance(parent, str):
                parent = None
            if dtype == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    return [AssistantText(text=text, message_id=self._streaming.get(parent),
                                          parent_tool_use_id=parent, partial=True)]
            elif dtype == "thinking_delta":
                text = delta.get("thinking")
                if isinstance(text, str) and text:
                    return [Thinking(text=text, message_id=self._streaming.get(parent),
                                     parent_tool_use_id=parent, partial=True)]
            return []
        if etype == "message_start":
            message = event.get("message")
            if not isinstance(message, dict):
                return []
            parent = obj.get("parent_tool_use_id")
            if not isinstance(parent, str):
                parent = None
            mid = message.get("id")
            self._streaming[parent] = mid if isinstance(mid, str) else None
            out: list[Any] = []
            self._note_usage(mid, message.get("usage"), out)
            return out
        if etype == "error":
            return [_unknown(obj, "stream error event")]
        return []

    def _result(self, obj: dict[str, Any]) -> TurnResult:
        """``result`` → ``TurnResult``.

        - ``stop_reason`` is ``cancelled`` when the turn was interrupted: ``terminal_reason`` is
          ``aborted_streaming``/``aborted_tools``, or the subtype is ``error_during_execution``
          after an interrupt (acknowledged interrupt request, or the ``[Request interrupted by
          user]`` echo — which SIGINT also produces). Otherwise the frame's ``stop_reason``; when
          it has none, ``max_turn_requests`` for ``error_max_turns``, ``error`` for other error
          subtypes, else ``end_turn``.
        - A cancelled turn is not an error (``is_error=False``, no ``error`` text), as in ACP.
        - ``usage`` is the turn's summed usage (``result.usage``: per turn), ``num_requests``
          ``num_turns``, ``error`` the ``errors`` list joined (else the ``result`` text) when
          ``is_error``.
        - ``cost_usd`` is *this turn's* cost. The CLI's ``total_cost_usd`` is cumulative over the
          process (captured: two identical turns report 0.00113 then 0.00225), so the parser
          reports the difference from the previous ``result`` (a total that went down — a
          restarted counter — is taken as is).
        - A malformed frame (``subtype`` not a non-empty string, ``is_error`` not a boolean: every
          real one has both) ends the turn as an error saying so, never as a success.
        """
        subtype = obj.get("subtype")
        terminal = obj.get("terminal_reason")
        interrupted = self._interrupted
        self._interrupted = False
        self._streaming.clear()
        if not isinstance(subtype, str) or not subtype or not isinstance(obj.get("is_error"), bool):
            return TurnResult(stop_reason="error", is_error=True,
                              error=f"malformed result frame from the agent: {_unknown(obj, '').raw[:300]}")
        cancelled = terminal in ("aborted_streaming", "aborted_tools") or (
            subtype == "error_during_execution" and interrupted
        )
        is_error = bool(obj.get("is_error"))
        stop = obj.get("stop_reason")
        if cancelled:
            stop_reason = "cancelled"
        elif isinstance(stop, str) and stop:
            stop_reason = stop
        elif subtype == "error_max_turns":
            stop_reason = "max_turn_requests"
        elif is_error or (isinstance(subtype, str) and subtype.startswith("error")):
            stop_reason = "error"
        else:
            stop_reason = "end_turn"
        error: str | None = None
        if is_error and not cancelled:
            errors = obj.get("errors")
            if isinstance(errors, list) and errors:
                error = "; ".join(str(e) for e in errors)
            elif isinstance(obj.get("result"), str) and obj["result"]:
                error = obj["result"]
            else:
                error = str(subtype or "error")
        cost = obj.get("total_cost_usd")
        turn_cost: float | None = None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            total = float(cost)
            turn_cost = total - self._cost_so_far if total >= self._cost_so_far else total
            self._cost_so_far = total
        duration = obj.get("duration_ms")
        turns = obj.get("num_turns")
        return TurnResult(
            stop_reason=stop_reason,
            is_error=is_error and not cancelled,
            usage=_usage(obj.get("usage")),
            cost_usd=turn_cost,
            duration_ms=_int(duration) if isinstance(duration, (int, float)) else None,
            num_requests=_int(turns) if isinstance(turns, (int, float)) else None,
            error=error,
        )

    def _control_request(self, obj: dict[str, Any], raw: Any) -> list[Any]:
        request = obj.get("request")
        request_id = obj.get("request_id")
        if not isinstance(request, dict) or not isinstance(request_id, str):
            return [_unknown(raw if raw is not None else obj, "malformed control_request")]
        subtype = request.get("subtype")
        if subtype == "can_use_tool":
            name = request.get("tool_name")
            name = name if isinstance(name, str) else ""
            tool_input = request.get("input")
            self._permission_inputs[request_id] = tool_input
            return [PermissionRequest(
                request_id=request_id,
                tool_name=name,
                kind=TOOL_KINDS.get(name, "other"),
                summary=tool_summary(name, tool_input),
                raw_input=tool_input,
                options=("allow", "deny"),
            )]
        self.outbox.append(control_error(request_id, f"aegis does not support control_request {subtype!r}"))
        return [_unknown(raw if raw is not None else obj, f"unsupported control_request {subtype!r}")]

    def _control_response(self, obj: dict[str, Any], raw: Any) -> list[Any]:
        response = obj.get("response")
        if not isinstance(response, dict):
            return []
        request_id = response.get("request_id")
        if not isinstance(request_id, str):
            request_id = ""
        if response.get("subtype") == "error":
            self._interrupt_ids.discard(request_id)
            return [_unknown(raw if raw is not None else obj, f"control request {request_id!r} failed")]
        if request_id in self._interrupt_ids:
            self._interrupt_ids.discard(request_id)
            self._interrupted = True
        return []

    # --- plans --------------------------------------------------------------------------------

    def _plan_tool_use(self, name: str, tid: str, tool_input: dict[str, Any]) -> bool:
        """Fold a plan tool call into the plan; True when the plan changed."""
        if name == "TodoWrite":
            todos = tool_input.get("todos")
            if not isinstance(todos, list):
                return False
            self._plan = {
                f"todo:{i}": {"content": str(t.get("content") or t.get("subject") or ""),
                              "status": str(t.get("status") or "pending")}
                for i, t in enumerate(todos) if isinstance(t, dict)
            }
            return True
        if name == "TaskCreate":
            subject = tool_input.get("subject") or tool_input.get("description") or ""
            key = f"pending:{tid}"
            self._plan[key] = {"content": str(subject), "status": "pending"}
            self._plan_pending[tid] = key
            return True
        if name == "TaskUpdate":
            task_id = str(tool_input.get("taskId") or tool_input.get("id") or "")
            row = self._plan.get(task_id)
            status = tool_input.get("status")
            subject = tool_input.get("subject")
            if row is None:
                if not isinstance(subject, str) or status == "deleted":
                    return False  # an id from before this process; TaskList will bring it back
                row = self._plan[task_id] = {"content": subject, "status": "pending"}
            if status == "deleted":
                del self._plan[task_id]
                return True
            if isinstance(status, str) and status:
                row["status"] = status
            if isinstance(subject, str) and subject:
                row["content"] = subject
            return True
        return False  # TaskList: its result rehydrates the plan

    def _plan_tool_result(self, name: str, tid: str, text: str, is_error: bool) -> bool:
        if name == "TaskCreate":
            key = self._plan_pending.pop(tid, None)
            if key is None or key not in self._plan:
                return False
            if is_error:
                del self._plan[key]
                return True
            match = _TASK_CREATED.search(text)
            if match:  # re-key under the real id, keeping the order
                self._plan = {(match.group(1) if k == key else k): v for k, v in self._plan.items()}
            return False
        if name == "TaskList" and not is_error:
            rows = [m.groups() for line in text.splitlines() if (m := _TASK_ROW.match(line.strip()))]
            if not rows:
                return False
            self._plan = {tid_: {"content": subject, "status": status} for tid_, status, subject in rows}
            return True
        return False


def _diff_of(name: str, tool_input: dict[str, Any]) -> Diff | None:
    path = tool_input.get("file_path") or tool_input.get("notebook_path")
    if not isinstance(path, str):
        return None
    if name == "Edit":
        old, new = tool_input.get("old_string"), tool_input.get("new_string")
        if isinstance(old, str) and isinstance(new, str):
            return Diff(path=path, old_text=old, new_text=new)
    elif name == "Write":
        content = tool_input.get("content")
        if isinstance(content, str):
            return Diff(path=path, old_text="", new_text=content)
    elif name == "MultiEdit":
        edits = [e for e in tool_input.get("edits") or () if isinstance(e, dict)]
        if edits:
            return Diff(
                path=path,
                old_text="\n".join(str(e.get("old_string", "")) for e in edits),
                new_text="\n".join(str(e.get("new_string", "")) for e in edits),
            )
    return None


# --- writers --------------------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> str:
    """One NDJSON line (no trailing newline; JSON escapes every newline inside strings)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def user_turn(text: str) -> dict[str, Any]:
    """A user turn for stdin."""
    return {"type": "user", "message": {"role": "user", "content": text},
            "parent_tool_use_id": None, "session_id": ""}


def interrupt_request(request_id: str) -> dict[str, Any]:
    """Stop the current turn; the CLI acks, writes ``[Request interrupted by user]`` and a ``result``."""
    return {"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}}


def initialize_request(request_id: str) -> dict[str, Any]:
    """The control-protocol handshake (needed before ``can_use_tool`` prompts arrive); no hooks."""
    return {"type": "control_request", "request_id": request_id,
            "request": {"subtype": "initialize", "hooks": None}}


def permission_response(request_id: str, allow: bool, input: Any = None, message: str = "") -> dict[str, Any]:
    """The answer to a ``can_use_tool`` request.

    ``allow`` replies ``{"behavior": "allow", "updatedInput": input}`` (pass the request's own input,
    see :meth:`ClaudeParser.permission_input`); deny replies ``{"behavior": "deny", "message": …}``.
    """
    if allow:
        body: dict[str, Any] = {"behavior": "allow", "updatedInput": input if isinstance(input, dict) else {}}
    else:
        body = {"behavior": "deny", "message": message or "Denied by the Aegis approval policy."}
    return {"type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": body}}


def control_error(request_id: str, message: str) -> dict[str, Any]:
    """An error reply to a control request."""
    return {"type": "control_response",
            "response": {"subtype": "error", "request_id": request_id, "error": message}}


# --- spawning -------------------------------------------------------------------------------------

#: Aegis permission → ``--permission-mode``.
PERMISSION_MODES = {"read": "plan", "write": "acceptEdits", "full": "bypassPermissions", "auto": "auto"}

BASE_ARGV = ("-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
             "--include-partial-messages")


def brokers_permissions(spec: SpawnSpec) -> bool:
    """Whether Claude's permission prompts are routed to Aegis's approval broker.

    Yes for ``read``/``write`` profiles and for any profile with ``allow``/``deny`` rules: Claude runs
    with ``--permission-prompt-tool stdio`` and asks over the control protocol (``can_use_tool``)
    whenever its own mode would have asked a human — in ``-p`` mode with no prompt tool such calls
    are simply refused, so brokering is what makes ``write`` able to run an approved command or an
    MCP tool. ``full``/``auto`` without rules let Claude decide alone (no round trips).
    """
    profile = spec.profile
    return profile.permission in ("read", "write") or bool(profile.allow) or bool(profile.deny)


def mcp_config_json(mcp: McpEndpoint | None) -> str | None:
    """``{"mcpServers": {"aegis": {"type": "http", "url": …, "headers": {…}}}}`` or None.

    Secret (the URL holds the session's token): written to a private file whose *path* goes in
    argv (:func:`mcp_config_argv`), never put in argv itself."""
    if mcp is None:
        return None
    server: dict[str, Any] = {"type": "http", "url": mcp.url}
    if mcp.headers:
        server["headers"] = dict(mcp.headers)
    return json.dumps({"mcpServers": {mcp.name: server}}, separators=(",", ":"))


def mcp_config_argv(path: str) -> list[str]:
    """``--mcp-config <path> --strict-mcp-config``: the CLI reads the servers from the (0600) file."""
    return ["--mcp-config", path, "--strict-mcp-config"]


def build_argv(spec: SpawnSpec) -> list[str]:
    """The command line for ``spec`` (pure).

    ``<command or claude> -p --input-format stream-json --output-format stream-json --verbose
    --include-partial-messages [--resume ID] [--model M] [--effort E] --permission-mode MODE
    [--permission-prompt-tool stdio] [--append-system-prompt TEXT]``.

    No MCP flags: the endpoint is a secret that arrives later (``Launch.mcp``, set by the MCP
    plugin's ``aegis_pre_spawn``); :func:`aegis_claude.agent.start_agent` writes it to a private
    file and appends :func:`mcp_config_argv` with that file's path.

    ``MODE`` follows :data:`PERMISSION_MODES` (read→plan, write→acceptEdits, full→bypassPermissions,
    auto→auto). When :func:`brokers_permissions`, ``--permission-prompt-tool stdio`` is added; a
    ``full`` profile with rules runs in ``default`` mode instead of ``bypassPermissions`` (which would
    never ask, so ``deny`` rules could not apply) and the broker allows everything else.
    """
    profile = spec.profile
    argv = [*(profile.command or ("claude",)), *BASE_ARGV]
    if spec.resume_id:
        argv += ["--resume", spec.resume_id]
    if profile.model:
        argv += ["--model", profile.model]
    if profile.effort:
        argv += ["--effort", profile.effort]
    mode = PERMISSION_MODES[profile.permission]
    brokered = brokers_permissions(spec)
    if brokered and mode == "bypassPermissions":
        mode = "default"
    argv += ["--permission-mode", mode]
    if brokered:
        argv += ["--permission-prompt-tool", "stdio"]
    if spec.system_prompt:
        argv += ["--append-system-prompt", spec.system_prompt]
    return argv


def build_env(spec: SpawnSpec) -> dict[str, str]:
    """Environment overlay: ``CLAUDE_CODE_ENTRYPOINT=sdk-py``, ``CLAUDECODE`` blanked, then ``profile.env``.

    The launch env is an overlay on the parent's environment, so an inherited ``CLAUDECODE`` (set
    when Aegis itself runs inside Claude Code, and refused by the CLI as a nested session) can only
    be overridden with an empty value, not removed.
    """
    return {"CLAUDE_CODE_ENTRYPOINT": "sdk-py", "CLAUDECODE": "", **dict(spec.profile.env)}
