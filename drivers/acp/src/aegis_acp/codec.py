"""ACP v1 (client side) ↔ kernel events. Sans-I/O: pure functions and one small stateful translator.

Mapping of ``session/update`` (:class:`UpdateTranslator`):

==========================  =====================================================================
``agent_message_chunk``     :class:`AssistantText` (``partial=False``: ACP chunks concatenate)
``agent_thought_chunk``     :class:`Thinking`
``user_message_chunk``      :class:`UserEcho` (history replayed by ``session/load``)
``tool_call``               :class:`ToolUse` (summary from ``rawInput`` command|file_path|filePath|
                            path|pattern|query, else the title). A *pending* call with an empty
                            ``rawInput`` (OpenCode) waits one frame so the next update's input merges in.
``tool_call_update``        status completed/failed → :class:`ToolResult` (text of the content text
                            blocks, diff from the first diff block); the first update of a tool never
                            announced by ``tool_call`` (Gemini) emits its :class:`ToolUse` first, once.
``plan``                    :class:`Plan`
``usage_update``            :class:`UsageUpdate` (context used/size; cost when the currency is USD)
mode/commands/config/info   no event (known, nothing to report)
anything else               :class:`Unknown`
==========================  =====================================================================

The translator never raises: malformed input becomes :class:`Unknown` with a reason.
``session/prompt`` results become a :class:`TurnResult` via :func:`turn_result`; usage comes from
``usage`` (OpenCode) or ``_meta.quota.token_count`` (Gemini), see :func:`usage_from_prompt_result`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aegis_kernel import (
    AssistantText,
    Diff,
    PermissionRequest,
    Plan,
    PlanEntry,
    Thinking,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    Unknown,
    UsageUpdate,
    UserEcho,
)
from attrs import frozen

from .jsonrpc import dumps

PROTOCOL_VERSION = 1
TOOL_KINDS = frozenset({"read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"})
SUMMARY_KEYS = ("command", "file_path", "filePath", "path", "pattern", "query")
SUMMARY_MAX = 200
STOP_REASONS = frozenset({"end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled"})
ERROR_STOP_REASONS = frozenset({"refusal", "error"})
IGNORED_UPDATES = frozenset({
    "available_commands_update", "current_mode_update", "config_option_update", "session_info_update",
})

__all__ = [
    "AgentInfo", "UpdateTranslator", "PermissionOption", "parse_initialize", "permission_options",
    "pick_option", "tool_summary", "usage_from_prompt_result", "turn_result", "turn_error",
    "initialize_params", "mcp_servers_param", "prompt_blocks", "PROTOCOL_VERSION",
]


# --- small helpers --------------------------------------------------------------------------------


def _int(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def _one_line(text: str) -> str:
    text = text.strip().split("\n", 1)[0]
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def tool_summary(raw_input: Any, title: str = "") -> str:
    """A one-line summary of a tool call: the first of rawInput's well-known keys, else the title."""
    if type(raw_input) is dict:
        for key in SUMMARY_KEYS:
            value = raw_input.get(key)
            if type(value) is str and value:
                return _one_line(value)
            if type(value) is list and value and all(type(v) is str for v in value):
                return _one_line(" ".join(value))
    return _one_line(title) if title else ""


def _kind(value: Any) -> str:
    return value if type(value) is str and value in TOOL_KINDS else "other"


def _block_text(block: Any) -> str | None:
    """Text of one ACP ContentBlock (text, resource_link, embedded text resource); None otherwise."""
    if type(block) is not dict:
        return None
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return text if type(text) is str else None
    if kind == "resource_link":
        uri = block.get("uri")
        return uri if type(uri) is str else None
    if kind == "resource":
        res = block.get("resource")
        if type(res) is dict and type(res.get("text")) is str:
            return res["text"]
    return None


def _tool_content(content: Any) -> tuple[str, Diff | None]:
    """Text of a tool call's ``content`` (its text blocks, joined) and its first diff block."""
    texts: list[str] = []
    diff: Diff | None = None
    if type(content) is not list:
        return "", None
    for item in content:
        if type(item) is not dict:
            continue
        kind = item.get("type")
        if kind == "content":
            text = _block_text(item.get("content"))
            if text is not None:
                texts.append(text)
        elif kind == "diff" and diff is None:
            path, new = item.get("path"), item.get("newText")
            if type(path) is str and type(new) is str:
                old = item.get("oldText")
                diff = Diff(path=path, old_text=old if type(old) is str else "", new_text=new)
        elif kind == "terminal":
            tid = item.get("terminalId")
            texts.append(f"[terminal {tid}]")
    return "\n".join(texts), diff


def _raw_output_text(raw_output: Any) -> str:
    if raw_output is None:
        return ""
    if type(raw_output) is str:
        return raw_output
    if type(raw_output) is dict:
        for key in ("output", "result", "text", "error"):
            value = raw_output.get(key)
            if type(value) is str:
                return value
    return dumps(raw_output)


class _Tool:
    __slots__ = ("tool_call_id", "title", "kind", "raw_input", "announced", "finished")

    def __init__(self, tool_call_id: str) -> None:
        self.tool_call_id = tool_call_id
        self.title = ""
        self.kind = "other"
        self.raw_input: Any = None
        self.announced = False
        self.finished = False

    def merge(self, data: Mapping[str, Any]) -> None:
        title = data.get("title")
        if type(title) is str and title:
            self.title = title
        if type(data.get("kind")) is str:
            self.kind = _kind(data["kind"])
        raw = data.get("rawInput")
        if raw is not None and raw != {}:
            self.raw_input = raw
        elif raw == {} and self.raw_input is None:
            self.raw_input = raw

    def use(self) -> ToolUse:
        self.announced = True
        return ToolUse(
            tool_call_id=self.tool_call_id,
            name=self.title or self.tool_call_id,
            kind=self.kind,
            summary=tool_summary(self.raw_input, self.title),
            raw_input=self.raw_input,
        )


# --- the translator -------------------------------------------------------------------------------


class UpdateTranslator:
    """Turns one session's ``session/update`` (and permission) frames into kernel events.

    Stateful only about tool calls (announced once, finished once). :meth:`update` and
    :meth:`permission` return a (possibly empty) list of events and never raise; call :meth:`flush`
    when a turn ends so a held tool announcement is not lost.
    """

    def __init__(self) -> None:
        self._tools: dict[str, _Tool] = {}
        self._held: _Tool | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], Any], list[Any]]] = {
            "agent_message_chunk": self._agent_chunk,
            "agent_thought_chunk": self._thought_chunk,
            "user_message_chunk": self._user_chunk,
            "tool_call": self._tool_call,
            "tool_call_update": self._tool_call_update,
            "plan": self._plan,
            "usage_update": self._usage,
        }

    # public ------------------------------------------------------------------------------------

    def update(self, params: Any, raw: Any = None) -> list[Any]:
        """Events for one ``session/update`` notification's ``params``."""
        try:
            return self._update(params, raw)
        except Exception as exc:  # noqa: BLE001 - a codec bug must never kill the session
            return [Unknown(raw=_rawtext(raw, params), reason=f"codec error: {type(exc).__name__}: {exc}")]

    def permission(self, request_id: str, params: Any, raw: Any = None) -> list[Any]:
        """Events for a ``session/request_permission`` request: ends with a ``PermissionRequest`` when valid,
        else with an ``Unknown`` (the caller must then answer the request with an error)."""
        out = self._release_held(None)
        try:
            req = self._permission(request_id, params, raw)
        except Exception as exc:  # noqa: BLE001
            req = Unknown(raw=_rawtext(raw, params), reason=f"codec error: {type(exc).__name__}: {exc}")
        out.append(req)
        return out

    def flush(self) -> list[Any]:
        """Events still held (a pending tool call waiting for its input); call at turn end."""
        return self._release_held(None)

    # internals ---------------------------------------------------------------------------------

    def _release_held(self, keep_id: Any) -> list[Any]:
        held = self._held
        if held is None:
            return []
        self._held = None
        if held.tool_call_id == keep_id:
            return []  # the frame at hand concerns it and will announce it merged
        return [held.use()]

    def _update(self, params: Any, raw: Any) -> list[Any]:
        if type(params) is not dict:
            return self._release_held(None) + [Unknown(_rawtext(raw, params), "session/update params is not an object")]
        upd = params.get("update")
        if type(upd) is not dict:
            bad = Unknown(_rawtext(raw, params), "session/update without an update object")
            return self._release_held(None) + [bad]
        kind = upd.get("sessionUpdate")
        if type(kind) is not str:
            return self._release_held(None) + [Unknown(_rawtext(raw, params), "update without a sessionUpdate string")]
        handler = self._handlers.get(kind)
        out = self._release_held(upd.get("toolCallId") if kind in ("tool_call_update", "tool_call") else None)
        if handler is not None:
            out.extend(handler(upd, raw))
        elif kind in IGNORED_UPDATES:
            pass
        else:
            out.append(Unknown(_rawtext(raw, params), f"unknown session update {kind!r}"))
        return out

    def _agent_chunk(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        content = upd.get("content")
        text = _block_text(content)
        if text is None:
            return [Unknown(_rawtext(raw, upd), "agent_message_chunk without text content")]
        mid = upd.get("messageId")
        return [AssistantText(text=text, message_id=mid if type(mid) is str else None)]

    def _thought_chunk(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        text = _block_text(upd.get("content"))
        if text is None:
            return [Unknown(_rawtext(raw, upd), "agent_thought_chunk without text content")]
        mid = upd.get("messageId")
        return [Thinking(text=text, message_id=mid if type(mid) is str else None)]

    def _user_chunk(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        text = _block_text(upd.get("content"))
        if text is None:
            return [Unknown(_rawtext(raw, upd), "user_message_chunk without text content")]
        return [UserEcho(text=text)]

    def _tool(self, upd: dict[str, Any]) -> _Tool | None:
        tid = upd.get("toolCallId")
        if type(tid) is not str or not tid:
            return None
        tool = self._tools.get(tid)
        if tool is None:
            tool = self._tools[tid] = _Tool(tid)
        return tool

    def _tool_call(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        tool = self._tool(upd)
        if tool is None:
            return [Unknown(_rawtext(raw, upd), "tool_call without toolCallId")]
        if tool.announced:  # a repeated tool_call is an update
            return self._tool_call_update(upd, raw)
        tool.merge(upd)
        status = upd.get("status")
        if status in (None, "pending") and not tool.raw_input:
            self._held = tool  # wait one frame for the input (OpenCode sends it in the next update)
            return []
        out = [tool.use()]
        if status in ("completed", "failed"):
            out.append(self._result(tool, upd))
        return out

    def _tool_call_update(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        tool = self._tool(upd)
        if tool is None:
            return [Unknown(_rawtext(raw, upd), "tool_call_update without toolCallId")]
        if tool.finished:
            return []
        tool.merge(upd)
        out: list[Any] = []
        status = upd.get("status")
        if not tool.announced:
            out.append(tool.use())
        if status in ("completed", "failed"):
            out.append(self._result(tool, upd))
        return out

    def _result(self, tool: _Tool, upd: dict[str, Any]) -> ToolResult:
        tool.finished = True
        text, diff = _tool_content(upd.get("content"))
        if not text:
            text = _raw_output_text(upd.get("rawOutput"))
        self._tools.pop(tool.tool_call_id, None)
        self._finished_marker(tool.tool_call_id)
        return ToolResult(
            tool_call_id=tool.tool_call_id,
            text=text,
            is_error=upd.get("status") == "failed",
            kind=tool.kind,
            diff=diff,
        )

    def _finished_marker(self, tid: str) -> None:
        # Keep a finished stub so a late duplicate update is ignored, without keeping its input alive.
        stub = _Tool(tid)
        stub.announced = stub.finished = True
        self._tools[tid] = stub

    def _plan(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        entries = upd.get("entries")
        if type(entries) is not list:
            return [Unknown(_rawtext(raw, upd), "plan without entries")]
        out = []
        for e in entries:
            if type(e) is not dict or type(e.get("content")) is not str:
                continue  # the schema says: skip invalid items
            status, priority = e.get("status"), e.get("priority")
            out.append(PlanEntry(
                content=e["content"],
                status=status if type(status) is str else "pending",
                priority=priority if type(priority) is str else "medium",
            ))
        return [Plan(entries=tuple(out))]

    def _usage(self, upd: dict[str, Any], raw: Any) -> list[Any]:
        used, size = upd.get("used"), upd.get("size")
        if type(used) is not int or type(size) is not int:
            return [Unknown(_rawtext(raw, upd), "usage_update needs integer used and size")]
        cost = upd.get("cost")
        cost_usd = None
        if type(cost) is dict and cost.get("currency") == "USD" and type(cost.get("amount")) in (int, float):
            cost_usd = float(cost["amount"])
        return [UsageUpdate(context_used=used, context_size=size, cost_usd=cost_usd)]

    def _permission(self, request_id: str, params: Any, raw: Any) -> Any:
        if type(params) is not dict:
            return Unknown(_rawtext(raw, params), "request_permission params is not an object")
        call = params.get("toolCall")
        if type(call) is not dict:
            return Unknown(_rawtext(raw, params), "request_permission without toolCall")
        options = permission_options(params)
        if not options:
            return Unknown(_rawtext(raw, params), "request_permission without valid options")
        tool = self._tool(call)
        if tool is None:
            return Unknown(_rawtext(raw, params), "request_permission toolCall without toolCallId")
        if not tool.finished:
            tool.merge(call)
        raw_input = call.get("rawInput")
        if raw_input is None or raw_input == {}:
            # Gemini puts the arguments in the content as JSON text.
            text, _ = _tool_content(call.get("content"))
            if text:
                raw_input = _json_or_text(text)
            if tool.raw_input is None or tool.raw_input == {}:
                tool.raw_input = raw_input
        title = tool.title or (call.get("title") if type(call.get("title")) is str else "") or tool.tool_call_id
        return PermissionRequest(
            request_id=request_id,
            tool_name=title,
            kind=tool.kind,
            summary=tool_summary(raw_input, title),
            raw_input=raw_input,
            options=tuple(o.option_id for o in options),
        )


def _json_or_text(text: str) -> Any:
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested absurdly deep: kept as text
            pass
    return text


def _rawtext(raw: Any, fallback: Any) -> str:
    if raw is None:
        return dumps(fallback)[:4096]
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8", errors="replace")
    return raw if len(raw) <= 4096 else raw[:4096] + "…"


# --- permissions ----------------------------------------------------------------------------------


@frozen
class PermissionOption:
    option_id: str
    name: str
    kind: str  # allow_once | allow_always | reject_once | reject_always


def permission_options(params: Any) -> list[PermissionOption]:
    """The valid options of a ``session/request_permission`` request (invalid items skipped)."""
    if type(params) is not dict or type(params.get("options")) is not list:
        return []
    out = []
    for o in params["options"]:
        if type(o) is dict and type(o.get("optionId")) is str and type(o.get("kind")) is str:
            name = o.get("name")
            out.append(PermissionOption(o["optionId"], name if type(name) is str else o["optionId"], o["kind"]))
    return out


def pick_option(options: list[PermissionOption], allow: bool, always: bool = False) -> str | None:
    """The optionId whose *kind* matches the decision (never blindly the first); None if none fits.

    allow+always → allow_always, else allow_once; allow → allow_once, else allow_always;
    deny → reject_once, else reject_always (deny+always prefers reject_always).
    """
    if allow:
        order = ("allow_always", "allow_once") if always else ("allow_once", "allow_always")
    else:
        order = ("reject_always", "reject_once") if always else ("reject_once", "reject_always")
    for kind in order:
        for o in options:
            if o.kind == kind:
                return o.option_id
    return None


# --- initialize / session setup -------------------------------------------------------------------


@frozen
class AgentInfo:
    """What the agent said about itself in the ``initialize`` response."""

    protocol_version: int = PROTOCOL_VERSION
    name: str | None = None
    version: str | None = None
    load_session: bool = False
    mcp_http: bool | None = None  # None: the agent did not say
    mcp_sse: bool | None = None
    session_resume: bool = False
    session_close: bool = False
    auth_methods: tuple[str, ...] = ()


def parse_initialize(result: Any) -> AgentInfo:
    """Read an ``initialize`` result leniently (the schema defaults every capability to off)."""
    if type(result) is not dict:
        raise ValueError("initialize result is not an object")
    version = result.get("protocolVersion")
    if type(version) is not int:
        raise ValueError("initialize result without an integer protocolVersion")
    caps = result.get("agentCapabilities")
    caps = caps if type(caps) is dict else {}
    mcp = caps.get("mcpCapabilities")
    mcp_http = mcp_sse = None
    if type(mcp) is dict:
        mcp_http = mcp.get("http") is True
        mcp_sse = mcp.get("sse") is True
    sess = caps.get("sessionCapabilities")
    sess = sess if type(sess) is dict else {}
    info = result.get("agentInfo")
    info = info if type(info) is dict else {}
    auth = result.get("authMethods")
    auth = auth if type(auth) is list else []
    auth_ids = tuple(a["id"] for a in auth if type(a) is dict and type(a.get("id")) is str)
    return AgentInfo(
        protocol_version=version,
        name=info.get("name") if type(info.get("name")) is str else None,
        version=info.get("version") if type(info.get("version")) is str else None,
        load_session=caps.get("loadSession") is True,
        mcp_http=mcp_http,
        mcp_sse=mcp_sse,
        session_resume=type(sess.get("resume")) is dict,
        session_close=type(sess.get("close")) is dict,
        auth_methods=auth_ids,
    )


def initialize_params(client_name: str = "aegis", client_version: str = "0.1.0") -> dict[str, Any]:
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "clientCapabilities": {"fs": {"readTextFile": True, "writeTextFile": True}, "terminal": False},
        "clientInfo": {"name": client_name, "version": client_version},
    }


def mcp_servers_param(url: str | None, name: str, headers: Mapping[str, str], agent: AgentInfo) -> list[dict[str, Any]]:
    """``mcpServers`` for session/new|load|resume: our HTTP server unless the agent says it has no HTTP."""
    if not url or agent.mcp_http is False:
        return []
    return [{
        "type": "http", "name": name, "url": url,
        "headers": [{"name": k, "value": v} for k, v in headers.items()],
    }]


def prompt_blocks(text: str, system_prompt: str = "") -> list[dict[str, Any]]:
    """Prompt content: the system prompt (if any) as its own first text block, then the message."""
    blocks = []
    if system_prompt:
        blocks.append({"type": "text", "text": system_prompt})
    blocks.append({"type": "text", "text": text})
    return blocks


# --- turn end -------------------------------------------------------------------------------------


def usage_from_prompt_result(result: Any) -> TokenUsage | None:
    """Token usage of a ``session/prompt`` result, or None when the agent reports none.

    - ``usage`` {inputTokens, outputTokens, cachedReadTokens, cachedWriteTokens, thoughtTokens,
      totalTokens} (OpenCode): ``inputTokens`` is taken as *uncached* input (OpenCode's is); when
      ``totalTokens`` shows the cache was counted inside ``inputTokens`` the cache is taken out.
      Thought tokens are output.
    - else ``_meta.quota.token_count`` {input_tokens, output_tokens} (Gemini).
    """
    if type(result) is not dict:
        return None
    u = result.get("usage")
    if type(u) is dict:
        inp, out = _int(u.get("inputTokens")), _int(u.get("outputTokens"))
        cr, cw, th = _int(u.get("cachedReadTokens")), _int(u.get("cachedWriteTokens")), _int(u.get("thoughtTokens"))
        total = u.get("totalTokens")
        if type(total) is int and total != inp + out + th + cr + cw and total == inp + out + th and inp >= cr + cw:
            inp -= cr + cw
        return TokenUsage(input=inp, output=out + th, cache_read=cr, cache_creation=cw)
    meta = result.get("_meta")
    if type(meta) is dict:
        quota = meta.get("quota")
        if type(quota) is dict and type(quota.get("token_count")) is dict:
            tc = quota["token_count"]
            return TokenUsage(input=_int(tc.get("input_tokens")), output=_int(tc.get("output_tokens")))
    return None


def turn_result(
    result: Any,
    *,
    duration_ms: int | None = None,
    usage: TokenUsage | None = None,
    cancelled: bool = False,
) -> TurnResult:
    """The :class:`TurnResult` for a ``session/prompt`` result (``usage`` already extracted).

    ``is_error`` is set for ``refusal`` and malformed results. A turn the agent finished normally
    keeps its own stop reason even if we had asked to cancel (it finished first); a malformed
    result after our ``session/cancel`` counts as ``cancelled``.
    """
    reason = result.get("stopReason") if type(result) is dict else None
    if type(reason) is not str:
        if cancelled:
            return TurnResult(stop_reason="cancelled", usage=usage, duration_ms=duration_ms)
        return TurnResult(stop_reason="error", is_error=True, usage=usage, duration_ms=duration_ms,
                          error=f"malformed session/prompt result: {dumps(result)[:300]}")
    return TurnResult(stop_reason=reason, is_error=reason in ERROR_STOP_REASONS, usage=usage, duration_ms=duration_ms)


def turn_error(code: int, message: str, *, duration_ms: int | None = None, cancelled: bool = False) -> TurnResult:
    """The :class:`TurnResult` for an error reply to ``session/prompt`` (cancelled if we asked to cancel)."""
    if cancelled:
        return TurnResult(stop_reason="cancelled", duration_ms=duration_ms)
    return TurnResult(stop_reason="error", is_error=True, duration_ms=duration_ms, error=f"{message} (code {code})")
