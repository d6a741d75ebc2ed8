"""The fake model server: the test kit's stand-in for the model APIs behind the real agent CLIs.

One port on 127.0.0.1, three wire formats — enough for the real ``claude``, ``gemini`` and
``opencode`` binaries to run whole turns (text, MCP tool calls, streaming, cancellation) with no
account and no network::

    with FakeModelServer() as fm:
        env = {"ANTHROPIC_BASE_URL": fm.url, ...}          # or GOOGLE_GEMINI_BASE_URL, baseURL=fm.url + "/v1"
        ...
        assert fm.requests[-1].last_user_text == "hello"

Routes (a path prefix before them is accepted):

- Anthropic Messages: ``POST /v1/messages`` (``?beta=true`` too; SSE when ``"stream": true``, else
  JSON) and ``POST /v1/messages/count_tokens``;
- Gemini: ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` / ``:generateContent`` /
  ``:countTokens``;
- OpenAI chat completions: ``POST /v1/chat/completions`` (SSE chunks when ``"stream": true``);
- ``GET …/models`` (a model list readable by all three clients);
- anything else → ``404`` with a JSON error, logged as ``{"event": "not_found"}``.

What the model "says" is decided from the **last user-side message** (``role: system`` messages
and Claude's ``<system-reminder>`` text blocks are skipped; of several text blocks the last one
counts):

1. a JSON-mode side request (Gemini ``responseMimeType: application/json`` + schema, OpenAI
   ``response_format``) → an object built from the schema (:func:`sample_from_schema`);
2. the next matching :class:`Reply` queued in :attr:`FakeModelServer.script`, else
   :attr:`FakeModelServer.responder` if set;
3. the message carries a tool result → text ``FAKE_DONE tool_result=<result>``;
4. its text contains ``CALL_TOOL <name> <json-args>`` → one call of the request's tool named
   ``<name>`` exactly, else the first whose name ends with ``_<name>`` (Claude exposes MCP tools as
   ``mcp__<server>__<tool>``, Gemini as ``mcp_<server>_<tool>``, OpenCode as ``<server>_<tool>``);
   no such tool → text ``FAKE_NO_TOOL <name>``;
5. its text contains ``SLOW`` → ``slow0 slow1 …``, one chunk every :attr:`slow_interval` seconds
   (0.5) for at most :attr:`slow_duration` (60); a client that goes away is noticed at once and
   logged as ``{"event": "client_disconnected"}``;
6. otherwise → ``FAKE_REPLY to: <user text>``.

Every response reports usage (default input 111, output 22, cache read 7, cache creation 3) in its
format's own fields, verbatim: Anthropic ``input_tokens``/``output_tokens``/
``cache_read_input_tokens``/``cache_creation_input_tokens`` (``message_start`` carries the input side
and ``output_tokens: 1``, ``message_delta`` the output); Gemini ``usageMetadata``
(``promptTokenCount``, ``candidatesTokenCount``, ``cachedContentTokenCount``); OpenAI ``usage``
(``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``; in the last
stream chunk). Gemini and OpenAI count cached tokens inside the prompt count, so clients derive
their own figures (OpenCode reports ``inputTokens`` 104 = 111 − 7).

Every request is recorded (:attr:`FakeModelServer.requests`, :class:`RecordedRequest`) with its
parsed body, its messages normalised across formats (so a test can check that a resumed agent
sends the earlier turns), the last user text and the decision taken; server-side happenings go to
:attr:`FakeModelServer.log`. Both can be awaited without sleeping (:meth:`FakeModelServer.wait_for`).

The server runs stdlib ``ThreadingHTTPServer`` on a background thread, so it serves sync tests,
trio tests and the TUI alike. HTTP/1.1 keep-alive; streams are ``text/event-stream`` with chunked
transfer encoding, flushed per event. ``python -m aegis_testkit.fakemodel --port 8700`` runs it by
hand, logging one JSON line per event on stdout.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import re
import select
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from attrs import define, field, frozen

from aegis_kernel import TokenUsage

__all__ = [
    "FakeModelServer", "Reply", "RecordedRequest", "Message", "DEFAULT_USAGE", "sample_from_schema",
    "main",
]

DEFAULT_USAGE = TokenUsage(input=111, output=22, cache_read=7, cache_creation=3)
DEFAULT_MODEL_IDS = ("claude-opus-4-8", "gemini-2.5-flash", "fake-model")
_REMINDER = "<system-reminder>"
_CALL_TOOL = re.compile(r"CALL_TOOL\s+(\S+)")


# --- records --------------------------------------------------------------------------------------


@frozen
class Reply:
    """A scripted answer (queue it in :attr:`FakeModelServer.script`, or return it from a responder).

    Give ``text`` and/or ``tool`` (+ ``args``); ``tool`` is resolved against the request's tools like
    ``CALL_TOOL`` (exact name, else by suffix). ``thinking`` adds a reasoning block first.
    ``slow=True`` streams ``slow0 slow1 …``. ``error`` answers with an HTTP error ``status`` (400 by
    default: the CLIs retry 429/5xx for a long time) in the format's error shape. ``usage`` overrides
    the server's. A queued reply is only used for a request whose last user text contains ``when``
    (if given) and whose API is ``api`` (``anthropic``/``gemini``/``openai``, if given).
    """

    text: str | None = None
    tool: str | None = None
    args: dict[str, Any] = field(factory=dict)
    thinking: str | None = None
    slow: bool = False
    error: str | None = None
    status: int = 400
    usage: TokenUsage | None = None
    when: str | None = None
    api: str | None = None


@frozen
class Message:
    """One message of a request, normalised across the three formats.

    ``role``: ``user`` | ``assistant`` | ``tool`` | ``system``. ``text`` joins the text blocks (Claude's
    ``<system-reminder>`` blocks removed; Gemini thought parts removed); ``tool_calls`` are the names
    of tools the assistant called; ``tool_result`` the result text a ``user``/``tool`` message carries.
    """

    role: str
    text: str = ""
    tool_calls: tuple[str, ...] = ()
    tool_result: str | None = None


@define
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    api: str | None = None  # anthropic | gemini | openai | models | None (not found)
    endpoint: str = ""  # messages | count_tokens | generate | stream_generate | chat | models | …
    query: dict[str, str] = field(factory=dict)
    headers: dict[str, str] = field(factory=dict)
    body: Any = None
    model: str | None = None
    stream: bool = False
    tools: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()
    last_user_text: str = ""
    tool_result: str | None = None
    json_mode: bool = False
    decision: str = ""
    disconnected: bool = False

    @property
    def has_history(self) -> bool:
        """True when the request carries earlier turns (an assistant message before the last one)."""
        return any(m.role == "assistant" for m in self.messages)

    @property
    def user_texts(self) -> tuple[str, ...]:
        """Every user text of the conversation, oldest first (tool results excluded)."""
        return tuple(m.text for m in self.messages if m.role == "user" and m.text)


# --- request normalisation --------------------------------------------------------------------------


def _text_of_blocks(content: Any) -> tuple[list[str], list[str], list[str]]:
    """Anthropic / OpenAI content → (text blocks, tool-call names, tool results)."""
    if isinstance(content, str):
        return ([content] if not content.startswith(_REMINDER) else []), [], []
    texts: list[str] = []
    calls: list[str] = []
    results: list[str] = []
    if not isinstance(content, list):
        return texts, calls, results
    for block in content:
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype == "text" or (btype is None and isinstance(block.get("text"), str)):
            text = block.get("text")
            if isinstance(text, str) and not text.lstrip().startswith(_REMINDER):
                texts.append(text)
        elif btype == "tool_use":
            calls.append(str(block.get("name", "")))
        elif btype == "tool_result":
            results.append(_result_text(block.get("content")))
    return texts, calls, results


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    if content is None:
        return ""
    return json.dumps(content)


@define
class _Parsed:
    messages: list[Message]
    last_text: str
    tool_result: str | None
    tools: tuple[str, ...]


def _last_user(messages: list[Message], last_texts: dict[int, str]) -> tuple[str, str | None]:
    """The last user-side message's (last text block, tool result): system messages skipped,
    trailing tool messages (OpenAI parallel calls) joined."""
    results: list[str] = []
    for index in range(len(messages) - 1, -1, -1):
        m = messages[index]
        if m.role == "system":
            continue
        if m.role == "tool":
            results.append(m.tool_result or "")
            continue
        if results:
            break
        if m.role == "user":
            if m.tool_result is not None:
                return last_texts.get(index, ""), m.tool_result
            return last_texts.get(index, ""), None
        break
    if results:
        return "", "\n".join(reversed(results))
    return "", None


def _parse_anthropic(body: dict[str, Any]) -> _Parsed:
    messages: list[Message] = []
    last_texts: dict[int, str] = {}
    for raw in body.get("messages") or ():
        if not isinstance(raw, dict):
            continue
        role = raw.get("role")
        texts, calls, results = _text_of_blocks(raw.get("content"))
        if role == "system":
            messages.append(Message("system", "\n".join(texts)))
            continue
        if texts:
            last_texts[len(messages)] = texts[-1]
        messages.append(Message(
            "assistant" if role == "assistant" else "user", "\n".join(texts), tuple(calls),
            "\n".join(results) if results else None,
        ))
    tools = tuple(str(t.get("name")) for t in body.get("tools") or () if isinstance(t, dict) and t.get("name"))
    last, result = _last_user(messages, last_texts)
    return _Parsed(messages, last, result, tools)


def _parse_gemini(body: dict[str, Any]) -> _Parsed:
    messages: list[Message] = []
    last_texts: dict[int, str] = {}
    for raw in body.get("contents") or ():
        if not isinstance(raw, dict):
            continue
        texts: list[str] = []
        calls: list[str] = []
        results: list[str] = []
        for part in raw.get("parts") or ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
            elif isinstance(part.get("functionCall"), dict):
                calls.append(str(part["functionCall"].get("name", "")))
            elif isinstance(part.get("functionResponse"), dict):
                results.append(json.dumps(part["functionResponse"].get("response")))
        if texts:
            last_texts[len(messages)] = texts[-1]
        role = "assistant" if raw.get("role") == "model" else "user"
        messages.append(Message(role, "\n".join(texts), tuple(calls), "\n".join(results) if results else None))
    tools: list[str] = []
    for group in body.get("tools") or ():
        if isinstance(group, dict):
            for decl in group.get("functionDeclarations") or group.get("function_declarations") or ():
                if isinstance(decl, dict) and decl.get("name"):
                    tools.append(str(decl["name"]))
    last, result = _last_user(messages, last_texts)
    return _Parsed(messages, last, result, tuple(tools))


def _parse_openai(body: dict[str, Any]) -> _Parsed:
    messages: list[Message] = []
    last_texts: dict[int, str] = {}
    for raw in body.get("messages") or ():
        if not isinstance(raw, dict):
            continue
        role = raw.get("role")
        texts, _, _ = _text_of_blocks(raw.get("content"))
        if role in ("system", "developer"):
            messages.append(Message("system", "\n".join(texts)))
        elif role == "tool":
            messages.append(Message("tool", tool_result=_result_text(raw.get("content"))))
        elif role == "assistant":
            calls = tuple(
                str((c.get("function") or {}).get("name", ""))
                for c in raw.get("tool_calls") or () if isinstance(c, dict)
            )
            messages.append(Message("assistant", "\n".join(texts), calls))
        else:
            if texts:
                last_texts[len(messages)] = texts[-1]
            messages.append(Message("user", "\n".join(texts)))
    tools = tuple(
        str((t.get("function") or {}).get("name"))
        for t in body.get("tools") or () if isinstance(t, dict) and (t.get("function") or {}).get("name")
    )
    last, result = _last_user(messages, last_texts)
    return _Parsed(messages, last, result, tools)


# --- JSON mode --------------------------------------------------------------------------------------


def sample_from_schema(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value that satisfies a (simple) JSON schema / Gemini schema: ``const``, first ``enum`` value,
    first ``anyOf``/``oneOf`` branch, every object property, ``minItems`` array items, ``"fake"``
    strings, numbers at their ``minimum`` (else 1), ``false``; ``$ref`` to ``#/…`` resolved."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 20:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key) if isinstance(target, dict) else None
        return sample_from_schema(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and str(o.get("type")).lower() == "null")]
            return sample_from_schema((non_null or options)[0], root, depth + 1)
    stype = schema.get("type")
    if isinstance(stype, list):
        stype = next((t for t in stype if str(t).lower() != "null"), "null")
    stype = str(stype).lower() if stype is not None else ("object" if "properties" in schema else "")
    if stype == "object":
        props = schema.get("properties")
        return {k: sample_from_schema(v, root, depth + 1) for k, v in (props or {}).items()}
    if stype == "array":
        count = schema.get("minItems") or 0
        return [sample_from_schema(schema.get("items"), root, depth + 1) for _ in range(int(count))]
    if stype == "string":
        return "fake"
    if stype in ("integer", "number"):
        low = schema.get("minimum")
        value = low if isinstance(low, (int, float)) else 1
        high = schema.get("maximum")
        if isinstance(high, (int, float)) and value > high:
            value = high
        return int(value) if stype == "integer" else value
    if stype == "boolean":
        return False
    return None


def _json_mode(api: str, body: dict[str, Any]) -> tuple[bool, Any]:
    if api == "gemini":
        config = body.get("generationConfig") or body.get("generation_config") or {}
        if isinstance(config, dict) and config.get("responseMimeType") == "application/json":
            schema = config.get("responseJsonSchema") or config.get("responseSchema")
            return True, sample_from_schema(schema) if schema else {}
    elif api == "openai":
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
            spec = fmt.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return True, sample_from_schema(schema) if schema else {}
    return False, None


# --- the plan for one response ----------------------------------------------------------------------


@frozen
class _Plan:
    text: str = ""
    tool: str | None = None
    args: dict[str, Any] = field(factory=dict)
    thinking: str | None = None
    slow: bool = False
    error: str | None = None
    status: int = 400
    usage: TokenUsage = DEFAULT_USAGE


def _resolve_tool(name: str, tools: tuple[str, ...]) -> str | None:
    if name in tools:
        return name
    for tool in tools:
        if tool.endswith("_" + name):
            return tool
    return None


def _call_args(text: str, start: int) -> dict[str, Any]:
    """The JSON object after ``CALL_TOOL <name>``; also when the client quoted the whole message
    (``opencode run`` sends ``"CALL_TOOL x {\\"a\\": 1}"``)."""
    brace = text.find("{", start)
    if brace < 0:
        return {}
    for candidate in (text, text.replace('\\"', '"')):
        try:
            value, _ = json.JSONDecoder().raw_decode(candidate, candidate.find("{", start))
        except ValueError:
            continue
        return value if isinstance(value, dict) else {}
    return {}


def _chunks(text: str, words: int = 4) -> list[str]:
    """Split text into a few streaming chunks (whitespace kept), never losing a character."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    if not pieces:
        return [text] if text else []
    return ["".join(pieces[i:i + words]) for i in range(0, len(pieces), words)]


# --- the server -------------------------------------------------------------------------------------


class _Disconnected(Exception):
    pass


class FakeModelServer:
    """The fake model server; ``with FakeModelServer() as fm: fm.url``.

    Args:
        port: 0 (default) picks a free port; the bound port is :attr:`port`.
        usage: usage reported on every response unless a :class:`Reply` overrides it.
        slow_interval / slow_duration: pacing and length of ``SLOW`` streams.
        echo: also print each log event as a JSON line on stdout (the CLI does).

    Attributes:
        script: queued :class:`Reply` objects, consumed in order by matching requests.
        responder: optional ``callable(RecordedRequest) -> Reply | None`` consulted after the script.
        requests: every :class:`RecordedRequest`, in arrival order.
        log: server events as dicts (``request``, ``not_found``, ``client_disconnected``,
            ``bad_request``), in order.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        usage: TokenUsage = DEFAULT_USAGE,
        slow_interval: float = 0.5,
        slow_duration: float = 60.0,
        echo: bool = False,
    ) -> None:
        self.host = host
        self._port = port
        self.usage = usage
        self.slow_interval = slow_interval
        self.slow_duration = slow_duration
        self.echo = echo
        self.script: list[Reply] = []
        self.responder: Callable[[RecordedRequest], Reply | None] | None = None
        self.requests: list[RecordedRequest] = []
        self.log: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()  # written on stop: wakes paused streams
        self._ids = itertools.count(1)

    # --- lifetime ---------------------------------------------------------------------------------

    def start(self) -> FakeModelServer:
        """Bind and serve on a background thread (returns at once, already accepting)."""
        if self._httpd is not None:
            return self
        if self._wake_r.fileno() < 0:  # restarted after stop()
            self._wake_r, self._wake_w = socket.socketpair()
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = _Server((self.host, self._port), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"fakemodel:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; streams in flight end at once. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (Anthropic/Gemini base URL; OpenAI clients want ``url + "/v1"``)."""
        return f"http://{self.host}:{self.port}"

    # --- observation ------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[FakeModelServer], Any], timeout: float = 10.0) -> Any:
        """Block until ``predicate(self)`` is truthy (re-checked on every request and log event);
        return its value. Raises ``TimeoutError``. From trio: ``trio.to_thread.run_sync``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake model server: condition not met within {timeout}s")
                self._cond.wait(remaining)

    def wait_for_event(self, event: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """Block until a log event named ``event`` (with the given field values) was logged."""
        def found(fm: FakeModelServer) -> dict[str, Any] | None:
            for entry in fm.log:
                if entry.get("event") == event and all(entry.get(k) == v for k, v in match.items()):
                    return entry
            return None
        return self.wait_for(found, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were recorded; return them."""
        return self.wait_for(lambda fm: list(fm.requests) if len(fm.requests) >= count else None, timeout)

    def _emit(self, event: str, **fields: Any) -> None:
        entry = {"event": event, **fields}
        with self._cond:
            self.log.append(entry)
            self._cond.notify_all()
        if self.echo:
            print(json.dumps(entry), flush=True)

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    # --- decisions --------------------------------------------------------------------------------

    def _take_scripted(self, req: RecordedRequest) -> Reply | None:
        with self._cond:
            for i, reply in enumerate(self.script):
                if reply.when is not None and reply.when not in req.last_user_text:
                    continue
                if reply.api is not None and reply.api != req.api:
                    continue
                return self.script.pop(i)
        return None

    def _decide(self, req: RecordedRequest, json_value: Any) -> _Plan:
        if req.json_mode:
            req.decision = "json"
            return _Plan(text=json.dumps(json_value), usage=self.usage)
        reply = self._take_scripted(req)
        if reply is None and self.responder is not None:
            reply = self.responder(req)
        if reply is not None:
            return self._from_reply(req, reply)
        if req.tool_result is not None:
            req.decision = "tool_result"
            return _Plan(text=f"FAKE_DONE tool_result={req.tool_result}", usage=self.usage)
        text = req.last_user_text
        match = _CALL_TOOL.search(text)
        if match:
            name = match.group(1)
            tool = _resolve_tool(name, req.tools)
            if tool is None:
                req.decision = f"no_tool:{name}"
                return _Plan(text=f"FAKE_NO_TOOL {name}", usage=self.usage)
            req.decision = f"tool:{tool}"
            return _Plan(tool=tool, args=_call_args(text, match.end()), usage=self.usage)
        if "SLOW" in text:
            req.decision = "slow"
            return _Plan(slow=True, usage=self.usage)
        req.decision = "text"
        return _Plan(text=f"FAKE_REPLY to: {text}", usage=self.usage)

    def _from_reply(self, req: RecordedRequest, reply: Reply) -> _Plan:
        usage = reply.usage or self.usage
        if reply.error is not None:
            req.decision = f"error:{reply.status}"
            return _Plan(error=reply.error, status=reply.status, usage=usage)
        tool = None
        if reply.tool is not None:
            tool = _resolve_tool(reply.tool, req.tools) or reply.tool
        req.decision = "script:" + ("slow" if reply.slow else f"tool:{tool}" if tool else "text")
        return _Plan(text=reply.text or "", tool=tool, args=dict(reply.args), thinking=reply.thinking,
                     slow=reply.slow, usage=usage)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # a client that went away between requests
        super().handle_error(request, client_address)


# --- HTTP handling ----------------------------------------------------------------------------------


_GEMINI = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent|countTokens)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AegisFakeModel/1.0"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    fake: FakeModelServer  # set on the bound subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # requests are recorded structurally instead

    # --- plumbing ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline(65537)
            raw = bytes(data)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        return raw

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            raise _Disconnected from exc

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError) as exc:
            raise _Disconnected from exc

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as exc:
            raise _Disconnected from exc

    def _sse(self, data: Any, event: str | None = None) -> None:
        text = json.dumps(data) if not isinstance(data, str) else data
        frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
        self._chunk(frame.encode())

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, noticing at once a client that hangs up or a server that stops."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                ready, _, _ = select.select([sock, self.fake._wake_r], [], [], remaining)
            except (OSError, ValueError) as exc:
                raise _Disconnected from exc
            if self.fake._wake_r in ready:
                raise _Disconnected("server stopping")
            if sock in ready:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                except OSError as exc:
                    raise _Disconnected from exc
                if not data:
                    raise _Disconnected("client closed the connection")
                # The client sent something (a pipelined request): it is still there; just wait.
                time.sleep(max(0.0, deadline - time.monotonic()))
                return

    def _slow_pieces(self) -> Iterator[str]:
        fake = self.fake
        count = max(1, int(fake.slow_duration / fake.slow_interval)) if fake.slow_interval > 0 else 1
        for i in range(count):
            if i:
                self._pause(fake.slow_interval)
            yield f"slow{i} "

    # --- dispatch ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        req = RecordedRequest(method="GET", path=self.path, headers=dict(self.headers.items()),
                              query={k: v[-1] for k, v in parse_qs(split.query).items()})
        if path.endswith("/models"):
            req.api, req.endpoint, req.decision = "models", "models", "models"
            self.fake._record(req)
            self.fake._emit("request", method="GET", path=self.path, decision="models")
            self._send_json(200, _models_payload())
            return
        self._not_found(req)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        req = RecordedRequest(method="POST", path=self.path, query=query, headers=dict(self.headers.items()))
        try:
            raw = self._read_body()
            body = json.loads(raw) if raw else {}
        except (ValueError, OSError, zlib.error) as exc:
            self.fake._record(req)
            self.fake._emit("bad_request", path=self.path, error=str(exc))
            self._send_json(400, {"error": {"type": "invalid_request_error", "message": f"bad body: {exc}"}})
            return
        req.body = body
        if not isinstance(body, dict):
            body = {}
        gemini = _GEMINI.search(path)
        try:
            if path.endswith("/v1/messages/count_tokens") or path.endswith("/messages/count_tokens"):
                self._count_tokens(req, body, "anthropic")
            elif path.endswith("/messages"):
                self._generate(req, body, "anthropic", "messages", bool(body.get("stream")))
            elif gemini is not None:
                req.model = gemini.group("model")
                method = gemini.group("method")
                if method == "countTokens":
                    self._count_tokens(req, body, "gemini")
                else:
                    stream = method == "streamGenerateContent"
                    self._generate(req, body, "gemini", "stream_generate" if stream else "generate", stream)
            elif path.endswith("/chat/completions"):
                self._generate(req, body, "openai", "chat", bool(body.get("stream")))
            else:
                self._not_found(req)
        except _Disconnected as exc:
            req.disconnected = True
            self.close_connection = True
            self.fake._emit("client_disconnected", path=self.path, api=req.api, decision=req.decision,
                            reason=str(exc) or type(exc.__cause__).__name__)

    def _not_found(self, req: RecordedRequest) -> None:
        req.decision = "not_found"
        self.fake._record(req)
        self.fake._emit("not_found", method=req.method, path=self.path)
        self._send_json(404, {"error": {"type": "not_found_error", "code": 404, "status": "NOT_FOUND",
                                        "message": f"fake model server: no route for {req.method} {self.path}"}})

    def _count_tokens(self, req: RecordedRequest, body: dict[str, Any], api: str) -> None:
        req.api, req.endpoint, req.decision = api, "count_tokens", "count_tokens"
        parser = _parse_anthropic if api == "anthropic" else _parse_gemini
        parsed = parser(body.get("generateContentRequest") or body if api == "gemini" else body)
        req.messages = tuple(parsed.messages)
        req.last_user_text, req.tool_result = parsed.last_text, parsed.tool_result
        self.fake._record(req)
        self.fake._emit("request", method="POST", path=self.path, api=api, decision="count_tokens")
        tokens = self.fake.usage.input
        self._send_json(200, {"input_tokens": tokens} if api == "anthropic" else {"totalTokens": tokens})

    def _generate(self, req: RecordedRequest, body: dict[str, Any], api: str, endpoint: str, stream: bool) -> None:
        req.api, req.endpoint, req.stream = api, endpoint, stream
        if req.model is None:
            model = body.get("model")
            req.model = model if isinstance(model, str) else None
        parsed = {"anthropic": _parse_anthropic, "gemini": _parse_gemini, "openai": _parse_openai}[api](body)
        req.messages = tuple(parsed.messages)
        req.tools = parsed.tools
        req.last_user_text, req.tool_result = parsed.last_text, parsed.tool_result
        req.json_mode, json_value = _json_mode(api, body)
        plan = self.fake._decide(req, json_value)
        self.fake._record(req)
        self.fake._emit("request", method="POST", path=self.path, api=api, decision=req.decision,
                        stream=stream, last_user_text=req.last_user_text[:200])
        if plan.error is not None:
            self._send_json(plan.status, _error_payload(api, plan.status, plan.error))
            return
        model = req.model or {"anthropic": "claude-fake", "gemini": "gemini-fake", "openai": "fake-model"}[api]
        writer = {"anthropic": _AnthropicWriter, "gemini": _GeminiWriter, "openai": _OpenAIWriter}[api]
        writer(self, plan, model, next(self.fake._ids)).run(stream)


def _error_payload(api: str, status: int, message: str) -> dict[str, Any]:
    if api == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    if api == "gemini":
        return {"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}
    return {"error": {"message": message, "type": "invalid_request_error", "code": status}}


def _models_payload() -> dict[str, Any]:
    now = int(time.time())
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "type": "model", "display_name": m, "created": now,
                  "created_at": "2026-01-01T00:00:00Z", "owned_by": "aegis-fake"} for m in DEFAULT_MODEL_IDS],
        "models": [{"name": f"models/{m}", "displayName": m, "supportedGenerationMethods":
                    ["generateContent", "streamGenerateContent", "countTokens"]} for m in DEFAULT_MODEL_IDS],
        "has_more": False,
        "first_id": DEFAULT_MODEL_IDS[0],
        "last_id": DEFAULT_MODEL_IDS[-1],
    }


# --- per-format writers -----------------------------------------------------------------------------


class _Writer:
    def __init__(self, handler: _Handler, plan: _Plan, model: str, seq: int) -> None:
        self.h = handler
        self.plan = plan
        self.model = model
        self.seq = seq

    def run(self, stream: bool) -> None:
        if stream:
            self.h._start_stream()
            self.stream()
            self.h._end_stream()
        else:
            text = "".join(self.h._slow_pieces()) if self.plan.slow else self.plan.text
            self.h._send_json(200, self.whole(text))

    def stream(self) -> None:
        raise NotImplementedError

    def whole(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def pieces(self) -> Iterator[str]:
        if self.plan.slow:
            yield from self.h._slow_pieces()
        else:
            yield from _chunks(self.plan.text)


class _AnthropicWriter(_Writer):
    def _usage(self, output: int) -> dict[str, int]:
        u = self.plan.usage
        return {"input_tokens": u.input, "output_tokens": output, "cache_creation_input_tokens": u.cache_creation,
                "cache_read_input_tokens": u.cache_read}

    @property
    def msg_id(self) -> str:
        return f"msg_fake{self.seq:08d}"

    def _stop_reason(self) -> str:
        return "tool_use" if self.plan.tool else "end_turn"

    def stream(self) -> None:
        h, plan = self.h, self.plan
        h._sse({"type": "message_start", "message": {
            "id": self.msg_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": self._usage(1)}}, "message_start")
        index = 0
        if plan.thinking:
            h._sse({"type": "content_block_start", "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""}}, "content_block_start")
            h._sse({"type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": plan.thinking}}, "content_block_delta")
            h._sse({"type": "content_block_delta", "index": index,
                    "delta": {"type": "signature_delta", "signature": "fake-signature"}}, "content_block_delta")
            h._sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        if plan.text or plan.slow or not plan.tool:
            h._sse({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}, "content_block_start")
            for piece in self.pieces():
                h._sse({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            h._sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            index += 1
        if plan.tool:
            h._sse({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": f"toolu_fake{self.seq:08d}", "name": plan.tool, "input": {}}},
                "content_block_start")
            h._sse({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(plan.args)}},
                   "content_block_delta")
            h._sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        h._sse({"type": "message_delta", "delta": {"stop_reason": self._stop_reason(), "stop_sequence": None},
                "usage": {"output_tokens": plan.usage.output}}, "message_delta")
        h._sse({"type": "message_stop"}, "message_stop")

    def whole(self, text: str) -> dict[str, Any]:
        plan = self.plan
        content: list[dict[str, Any]] = []
        if plan.thinking:
            content.append({"type": "thinking", "thinking": plan.thinking, "signature": "fake-signature"})
        if text or not plan.tool:
            content.append({"type": "text", "text": text})
        if plan.tool:
            content.append({"type": "tool_use", "id": f"toolu_fake{self.seq:08d}", "name": plan.tool,
                            "input": plan.args})
        return {"id": self.msg_id, "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": self._stop_reason(), "stop_sequence": None,
                "usage": self._usage(plan.usage.output)}


class _GeminiWriter(_Writer):
    def _usage(self) -> dict[str, int]:
        u = self.plan.usage
        return {"promptTokenCount": u.input, "candidatesTokenCount": u.output,
                "totalTokenCount": u.input + u.output, "cachedContentTokenCount": u.cache_read}

    def _chunk(self, parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        data: dict[str, Any] = {"candidates": [candidate], "modelVersion": self.model,
                                "responseId": f"fake-{self.seq:08d}"}
        if final:
            candidate["finishReason"] = "STOP"
            data["usageMetadata"] = self._usage()
        return data

    def stream(self) -> None:
        h, plan = self.h, self.plan
        if plan.thinking:
            h._sse(self._chunk([{"text": plan.thinking, "thought": True}], False))
        if plan.slow:  # pieces as they come; the final chunk only closes the candidate
            for piece in self.pieces():
                h._sse(self._chunk([{"text": piece}], False))
            h._sse(self._chunk([{"text": ""}], True))
            return
        pieces = _chunks(plan.text) if (plan.text or not plan.tool) else []
        final: list[dict[str, Any]] = []
        if plan.tool:
            final.append({"functionCall": {"name": plan.tool, "args": plan.args}})
        elif pieces:
            final.append({"text": pieces.pop()})
        else:
            final.append({"text": ""})
        for piece in pieces:
            h._sse(self._chunk([{"text": piece}], False))
        h._sse(self._chunk(final, True))

    def whole(self, text: str) -> dict[str, Any]:
        plan = self.plan
        parts: list[dict[str, Any]] = []
        if plan.thinking:
            parts.append({"text": plan.thinking, "thought": True})
        if text or not plan.tool:
            parts.append({"text": text})
        if plan.tool:
            parts.append({"functionCall": {"name": plan.tool, "args": plan.args}})
        return self._chunk(parts, True)


class _OpenAIWriter(_Writer):
    def _usage(self) -> dict[str, Any]:
        u = self.plan.usage
        return {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output,
                "prompt_tokens_details": {"cached_tokens": u.cache_read}}

    @property
    def cid(self) -> str:
        return f"chatcmpl-fake{self.seq:08d}"

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, usage: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.cid, "object": "chat.completion.chunk", "created": int(time.time()),
                                "model": self.model,
                                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            data["usage"] = self._usage()
        return data

    def _call(self) -> dict[str, Any]:
        return {"id": f"call_fake{self.seq:08d}", "type": "function",
                "function": {"name": self.plan.tool, "arguments": json.dumps(self.plan.args)}}

    def stream(self) -> None:
        h, plan = self.h, self.plan
        h._sse(self._chunk({"role": "assistant", "content": ""}))
        if plan.thinking:
            h._sse(self._chunk({"reasoning_content": plan.thinking}))
        for piece in self.pieces():
            h._sse(self._chunk({"content": piece}))
        if plan.tool:
            call = self._call()
            h._sse(self._chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                "function": {"name": plan.tool, "arguments": ""}}]}))
            arguments = call["function"]["arguments"]
            h._sse(self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}))
        h._sse(self._chunk({}, "tool_calls" if plan.tool else "stop", usage=True))
        h._sse("[DONE]")

    def whole(self, text: str) -> dict[str, Any]:
        plan = self.plan
        message: dict[str, Any] = {"role": "assistant", "content": text if (text or not plan.tool) else None}
        if plan.thinking:
            message["reasoning_content"] = plan.thinking
        if plan.tool:
            message["tool_calls"] = [self._call()]
        return {"id": self.cid, "object": "chat.completion", "created": int(time.time()), "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if plan.tool else "stop"}],
                "usage": self._usage()}


# --- CLI --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m aegis_testkit.fakemodel [--host H] [--port N] [--in-tokens …]``: serve until Ctrl+C."""
    parser = argparse.ArgumentParser(prog="python -m aegis_testkit.fakemodel", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--in-tokens", type=int, default=DEFAULT_USAGE.input)
    parser.add_argument("--out-tokens", type=int, default=DEFAULT_USAGE.output)
    parser.add_argument("--cache-read", type=int, default=DEFAULT_USAGE.cache_read)
    parser.add_argument("--cache-creation", type=int, default=DEFAULT_USAGE.cache_creation)
    parser.add_argument("--slow-interval", type=float, default=0.5)
    parser.add_argument("--slow-duration", type=float, default=60.0)
    args = parser.parse_args(argv)
    usage = TokenUsage(input=args.in_tokens, output=args.out_tokens, cache_read=args.cache_read,
                       cache_creation=args.cache_creation)
    server = FakeModelServer(args.host, args.port, usage=usage, slow_interval=args.slow_interval,
                             slow_duration=args.slow_duration, echo=True)
    with server:
        print(json.dumps({"event": "listening", "url": server.url}), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
