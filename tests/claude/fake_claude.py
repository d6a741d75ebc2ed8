"""A stand-in for ``claude -p --input-format stream-json --output-format stream-json`` (test helper).

It speaks the frames of the real captures (tests/claude/data) in answer to user turns:

- ``hello``-like text → ``FAKE_REPLY to: <text>`` streamed (stream_event deltas) + assistant + result;
- ``TOOL <cmd>`` → ``can_use_tool`` for Bash (waits for the control_response); allowed → tool_use,
  tool_result, ``ran <cmd>``; denied → ``denied: <message>``;
- ``SLOW`` → starts streaming, then waits for the interrupt control_request → ack, interrupted
  echo, ``error_during_execution`` result (``aborted_streaming``);
- ``HOOK`` → sends an unsupported control_request and reports the reply it got;
- ``DIE`` → writes to stderr and exits 3 mid-turn;
- ``MCP`` → ``mcp <server> sha256=<hex of its url> mode=<octal mode of the --mcp-config file>``;
- ``LEAK`` → prints its argv and its MCP URL to stderr and exits 4 (what a crashing CLI may do).
``--resume <id>`` keeps that session id; ``--model`` is echoed in system/init; EOF → exit 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid

ARGV = sys.argv[1:]
SESSION = ARGV[ARGV.index("--resume") + 1] if "--resume" in ARGV else str(uuid.uuid4())
MODEL = ARGV[ARGV.index("--model") + 1] if "--model" in ARGV else "claude-fake"
USAGE = {"input_tokens": 111, "output_tokens": 1, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 7}
cost = 0.0
seq = 0


def out(frame: dict) -> None:
    sys.stdout.write(json.dumps(frame) + "\n")
    sys.stdout.flush()


def read() -> dict | None:
    line = sys.stdin.readline()
    if not line:
        return None
    return json.loads(line)


def msg_id() -> str:
    global seq
    seq += 1
    return f"msg_{seq:04d}"


def assistant(mid: str, *blocks: dict) -> None:
    out({"type": "assistant", "message": {"id": mid, "type": "message", "role": "assistant", "model": MODEL,
                                          "content": list(blocks), "usage": USAGE},
         "parent_tool_use_id": None, "session_id": SESSION})


def stream(event: dict) -> None:
    out({"type": "stream_event", "event": event, "session_id": SESSION, "parent_tool_use_id": None})


def say(text: str) -> None:
    mid = msg_id()
    stream({"type": "message_start", "message": {"id": mid, "usage": USAGE, "content": []}})
    half = len(text) // 2
    for piece in (text[:half], text[half:]):
        stream({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
    assistant(mid, {"type": "text", "text": text})


def result(requests: int, text: str) -> None:
    global cost
    cost += 0.001 * requests
    out({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 5, "num_turns": requests,
         "result": text, "stop_reason": "end_turn", "session_id": SESSION, "total_cost_usd": cost,
         "usage": {"input_tokens": 111 * requests, "output_tokens": 22 * requests,
                   "cache_creation_input_tokens": 3 * requests, "cache_read_input_tokens": 7 * requests},
         "terminal_reason": "completed"})


def control_reply(request_id: str, response: dict | None = None) -> None:
    out({"type": "control_response", "response": {"subtype": "success", "request_id": request_id,
                                                  "response": response or {}}})


def turn(text: str) -> bool:
    out({"type": "system", "subtype": "init", "session_id": SESSION, "model": MODEL, "tools": ["Bash", "Read"],
         "claude_code_version": "9.9.9", "cwd": "/x", "mcp_servers": []})
    out({"type": "system", "subtype": "status", "status": "requesting", "session_id": SESSION})
    if text.startswith("TOOL "):
        command = text[5:]
        out({"type": "control_request", "request_id": "perm-1", "request": {
            "subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": command}, "tool_use_id": "toolu_1"}})
        reply = read()
        if reply is None:
            return False
        body = reply["response"]["response"]
        if body["behavior"] != "allow":
            say(f"denied: {body['message']}")
            result(1, "denied")
            return True
        mid = msg_id()
        assistant(mid, {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": body["updatedInput"]})
        out({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": body["updatedInput"]["command"]}]},
             "parent_tool_use_id": None, "session_id": SESSION})
        say(f"ran {body['updatedInput']['command']}")
        result(2, "ran")
        return True
    if text == "SLOW":
        mid = msg_id()
        stream({"type": "message_start", "message": {"id": mid, "usage": USAGE, "content": []}})
        stream({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "slow0 "}})
        request = read()
        if request is None:
            return False
        assert request["request"]["subtype"] == "interrupt", request
        control_reply(request["request_id"])
        assistant(mid, {"type": "text", "text": "slow0 "})
        out({"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": "[Request interrupted by user]"}]}, "parent_tool_use_id": None, "session_id": SESSION})
        out({"type": "result", "subtype": "error_during_execution", "is_error": True, "duration_ms": 9,
             "num_turns": 1, "stop_reason": None, "session_id": SESSION, "total_cost_usd": cost,
             "usage": {"input_tokens": 0, "output_tokens": 0}, "terminal_reason": "aborted_streaming",
             "errors": ["[ede_diagnostic] result_type=user"]})
        return True
    if text == "HOOK":
        out({"type": "control_request", "request_id": "hook-1", "request": {"subtype": "hook_callback", "callback_id": "x"}})
        reply = read()
        say(f"hook reply: {reply['response']['subtype'] if reply else 'none'}")
        result(1, "hook")
        return True
    if text == "MCP":
        name, server, mode = mcp_server()
        say(f"mcp {name} sha256={hashlib.sha256(server['url'].encode()).hexdigest()} mode={mode}")
        result(1, text)
        return True
    if text == "LEAK":
        sys.stderr.write(f"fatal: argv {ARGV}; cannot reach MCP at {mcp_server()[1]['url']}\n")
        sys.stderr.flush()
        sys.exit(4)
    if text == "DIE":
        say("dying")
        sys.stderr.write("fatal: the fake claude fell over\n")
        sys.stderr.flush()
        sys.exit(3)
    say(f"FAKE_REPLY to: {text}")
    result(1, text)
    return True


def mcp_server() -> tuple[str, dict, str]:
    """(name, server, file mode) of the one server in ``--mcp-config`` (a file path, or inline JSON)."""
    arg = ARGV[ARGV.index("--mcp-config") + 1]
    if arg.lstrip().startswith("{"):
        config, mode = json.loads(arg), "argv"
    else:
        with open(arg) as fh:
            config = json.load(fh)
        mode = oct(os.stat(arg).st_mode & 0o777)
    [(name, server)] = config["mcpServers"].items()
    return name, server, mode


def main() -> int:
    while True:
        frame = read()
        if frame is None:
            return 0
        if frame.get("type") == "control_request":
            if frame["request"]["subtype"] == "initialize":
                control_reply(frame["request_id"], {"commands": [], "models": []})
            elif frame["request"]["subtype"] == "interrupt":
                control_reply(frame["request_id"])  # nothing running
            continue
        if frame.get("type") == "user":
            content = frame["message"]["content"]
            if not turn(content if isinstance(content, str) else json.dumps(content)):
                return 0


if __name__ == "__main__":
    sys.exit(main())
