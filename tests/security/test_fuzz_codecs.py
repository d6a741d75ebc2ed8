"""Fuzzing the wire codecs (issue 12): random and mutated frames, seeded from captured real traffic
(tests/claude/data, tests/acp/data), go into the Claude stream-json parser, the ACP JSON-RPC framing,
the ACP update translator and the ACP client's line handling.

Each must take anything without an exception escaping — and without leaning on its own safety net: an
``Unknown`` whose reason is "codec error: …" means the codec crashed inside and was caught, which is a
bug too. Memory stays bounded: what one frame turns into is never much bigger than the frame.
Runs are derandomized (the same examples every run), so a failure reproduces and CI never flakes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a dev dependency (uv sync --all-packages)")

from aegis_acp import codec as acp_codec  # noqa: E402
from aegis_acp import jsonrpc  # noqa: E402
from aegis_acp.client import AcpClient  # noqa: E402
from aegis_claude.codec import ClaudeParser  # noqa: E402
from aegis_kernel import events as ev  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TESTS = Path(__file__).parent.parent
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _jsonl(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


CLAUDE_FRAMES = [f for f in _jsonl(TESTS / "claude" / "data") if isinstance(f, dict)]
ACP_MESSAGES = [r["msg"] for r in _jsonl(TESTS / "acp" / "data") if isinstance(r.get("msg"), dict)]
ACP_UPDATES = [m["params"] for m in ACP_MESSAGES if m.get("method") == "session/update"]
ACP_PERMISSIONS = [m["params"] for m in ACP_MESSAGES if m.get("method") == "session/request_permission"]


def _keys(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        into.update(value)
        for v in value.values():
            _keys(v, into)
    elif isinstance(value, list):
        for v in value:
            _keys(v, into)
    return into


# Keys and string values the real traffic uses, so random structures hit the codecs' branches.
KEYS = sorted(_keys(CLAUDE_FRAMES + ACP_MESSAGES, set()))


def _words() -> list[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and len(value) <= 40:
            found.add(value)

    for frame in CLAUDE_FRAMES + ACP_MESSAGES:
        walk(frame)
    return sorted(found)


WORDS = _words()

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40) | st.sampled_from(WORDS))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                                inner, max_size=5),
    max_leaves=25)


@st.composite
def mutated(draw: Any, seeds: list[Any]) -> Any:
    """A real frame with a few random edits: a value replaced, a key dropped, a list emptied or grown."""
    value = json.loads(json.dumps(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        parent, key, node = None, None, value
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        edit = draw(st.sampled_from(["replace", "drop", "grow"]))
        if parent is None:
            if edit == "replace":
                value = draw(json_values)
            continue
        if edit == "replace":
            parent[key] = draw(json_values)
        elif edit == "drop" and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent[key], list):
            parent[key].append(draw(json_values))
        elif isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(KEYS))] = draw(json_values)
    return value


def _line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


@st.composite
def broken_lines(draw: Any, seeds: list[Any]) -> bytes:
    """A real frame's bytes cut short, with a byte flipped, or plain random bytes."""
    data = _line(draw(st.sampled_from(seeds))).encode()
    how = draw(st.sampled_from(["cut", "flip", "random"]))
    if how == "cut":
        return data[: draw(st.integers(min_value=0, max_value=len(data)))]
    if how == "flip":
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        return data[:i] + bytes([draw(st.integers(min_value=0, max_value=255))]) + data[i + 1:]
    return draw(st.binary(max_size=200))


def _size(events: list[Any]) -> int:
    return sum(len(json.dumps(ev.event_to_dict(e), default=repr, ensure_ascii=False)) for e in events)


def _check(events: list[Any], line: str | bytes) -> None:
    """No crash caught by the codec's safety net, and output bounded by the input."""
    for e in events:
        assert not (isinstance(e, ev.Unknown) and e.reason.startswith("codec error")), e.reason
        assert not isinstance(e, ev.Unknown) or len(e.raw) <= 8192
    assert _size(events) <= 4 * len(line) + 16384


# --- Claude stream-json ------------------------------------------------------------------------------


def _claude_feed(frames: list[str | bytes]) -> None:
    parser = ClaudeParser()
    for line in frames:
        events = parser.feed(line)
        assert isinstance(events, list)
        _check(events, line)
    assert len(parser.outbox) <= len(frames)


@FUZZ
@given(st.lists(mutated(CLAUDE_FRAMES).map(_line), min_size=1, max_size=8))
def test_claude_parser_takes_mutated_real_frames(frames):
    _claude_feed(frames)


@FUZZ
@given(st.lists(st.fixed_dictionaries({"type": st.sampled_from(
    ["assistant", "user", "result", "system", "stream_event", "control_request", "control_response"])},
    optional={k: json_values for k in ("message", "subtype", "event", "request", "response", "is_error",
                                       "parent_tool_use_id", "session_id", "usage", "request_id")}).map(_line),
    min_size=1, max_size=8))
def test_claude_parser_takes_random_frames_of_every_type(frames):
    _claude_feed(frames)


@FUZZ
@given(st.lists(broken_lines(CLAUDE_FRAMES), min_size=1, max_size=5))
def test_claude_parser_takes_broken_bytes(frames):
    _claude_feed(frames)


# --- ACP -----------------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(mutated(ACP_MESSAGES).map(_line), json_values.map(_line), broken_lines(ACP_MESSAGES)))
def test_jsonrpc_parse_line_classifies_anything(line):
    msg = jsonrpc.parse_line(line)
    assert isinstance(msg, (jsonrpc.Request, jsonrpc.Notification, jsonrpc.Response, jsonrpc.ErrorResponse,
                            jsonrpc.Invalid))
    if isinstance(msg, jsonrpc.Invalid):
        assert len(msg.raw) <= jsonrpc.RAW_KEEP + 40


@FUZZ
@given(st.lists(st.one_of(mutated(ACP_UPDATES), st.fixed_dictionaries(
    {"sessionId": st.text(max_size=5), "update": st.fixed_dictionaries(
        {"sessionUpdate": st.sampled_from([
            "agent_message_chunk", "agent_thought_chunk", "user_message_chunk", "tool_call", "tool_call_update",
            "plan", "usage_update", "available_commands_update", "brand_new"])},
        optional={k: json_values for k in ("content", "toolCallId", "status", "title", "kind", "rawInput",
                                           "rawOutput", "entries", "used", "size", "cost", "locations")})})),
    min_size=1, max_size=8),
    st.lists(mutated(ACP_PERMISSIONS) if ACP_PERMISSIONS else json_values, max_size=2))
def test_acp_translator_takes_mutated_and_random_updates(updates, permissions):
    translator = acp_codec.UpdateTranslator()
    for params in updates:
        line = _line(params)
        _check(translator.update(params, line), line)
    for i, params in enumerate(permissions):
        line = _line(params)
        events = translator.permission(str(i), params, line)
        _check(events, line)
        assert isinstance(events[-1], (ev.PermissionRequest, ev.Unknown))
    _check(translator.flush(), "")


@FUZZ
@given(json_values)
def test_acp_turn_end_and_initialize_readers(result):
    line = _line(result)
    _check([acp_codec.turn_result(result, duration_ms=1)], line)
    _check([acp_codec.turn_error(1, str(result)[:100])], line)
    usage = acp_codec.usage_from_prompt_result(result)
    assert usage is None or isinstance(usage, ev.TokenUsage)
    try:
        acp_codec.parse_initialize(result)
    except ValueError:
        pass  # its documented refusal


class _Silent:
    """Just enough of an AgentSubprocess for the client's line handling (nothing is ever written)."""

    pid = 0
    sent: list[bytes]

    def __init__(self) -> None:
        self.sent = []

    async def send_line(self, data: bytes) -> None:
        self.sent.append(data)

    def exit_description(self) -> str:
        return "still running"


@FUZZ
@given(st.lists(st.one_of(mutated(ACP_MESSAGES).map(_line), broken_lines(ACP_MESSAGES)), min_size=1,
                max_size=8))
def test_acp_client_reads_any_line_without_dying(lines):
    """The client's reader: each line is handled (an event, a served request, a protocol error) and
    nothing escapes; requests the agent makes are all answered or pending, never lost to a crash."""

    async def main() -> None:
        import trio.testing

        client = AcpClient(_Silent(), cwd=Path("/nonexistent-fuzz-cwd"))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            for line in lines:
                data = line.encode() if isinstance(line, str) else line
                if data.strip():
                    client._on_line(data, nursery)
                if client.protocol_error is not None:
                    break
            await trio.testing.wait_all_tasks_blocked()
            client.cancel_permissions()
            nursery.cancel_scope.cancel()
        client.close_events()
        async for event in client.events:
            _check([event], max(lines, key=len))

    trio.run(main)
