"""A wire-level fake ACP agent for the client tests (stdlib only, single-threaded).

initialize → capabilities from $FAKE_ACP_CAPS (JSON, merged) ; session/new → sessionId "fake-1".
Every session/prompt's *last* text block is a JSON list of steps, run in order:

- ``{"raw": "<line>"}``          write this line to stdout as is
- ``{"send": {...}}``            write this JSON message
- ``{"update": {...}}``          a session/update with this update object
- ``{"request": {"method": m, "params": p}}``  call the client, wait for its reply and report the
                                 reply as an agent_message_chunk whose text is the reply JSON
- ``{"await": id}``              wait for the client's reply to a request sent with ``send`` and
                                 report it like ``request`` does
- ``{"echo_prompt": true}``      report the prompt's blocks as an agent_message_chunk (JSON)
- ``{"wait_cancel": true}``      read stdin until session/cancel arrives
- ``{"hang": true}``             read stdin until EOF, answering nothing (an agent that lost the turn)
- ``{"result": {...}}``          the prompt's result (default {"stopReason": "end_turn"})
- ``{"error": [code, msg]}``     answer the prompt with an error instead
- ``{"stderr": "text"}``         write to stderr
- ``{"exit": code}``             exit at once

Every received line is appended to $FAKE_ACP_LOG when set.
"""

import json
import os
import sys

SID = "fake-1"
out = sys.stdout
log_path = os.environ.get("FAKE_ACP_LOG")
pending = []  # lines read while waiting for something else
next_id = 100


def write(obj):
    out.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    out.flush()


def read():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    if log_path:
        with open(log_path, "a") as fh:
            fh.write(line)
    return json.loads(line)


def chunk(text):
    write({"jsonrpc": "2.0", "method": "session/update",
           "params": {"sessionId": SID, "update": {"sessionUpdate": "agent_message_chunk",
                                                   "content": {"type": "text", "text": text}}}})


def run_prompt(msg):
    global next_id
    blocks = msg["params"]["prompt"]
    steps = json.loads(blocks[-1]["text"])
    result = {"stopReason": "end_turn"}
    for step in steps:
        if "raw" in step:
            write(step["raw"])
        elif "send" in step:
            write(step["send"])
        elif "update" in step:
            write({"jsonrpc": "2.0", "method": "session/update",
                   "params": {"sessionId": SID, "update": step["update"]}})
        elif "request" in step:
            next_id += 1
            rid = next_id
            write({"jsonrpc": "2.0", "id": rid, **step["request"]})
            while True:
                reply = read()
                if reply.get("id") == rid and "method" not in reply:
                    break
                pending.append(reply)
            chunk(json.dumps(reply, sort_keys=True))
        elif "await" in step:
            while True:
                reply = read()
                if reply.get("id") == step["await"] and "method" not in reply:
                    break
                pending.append(reply)
            chunk(json.dumps(reply, sort_keys=True))
        elif "echo_prompt" in step:
            chunk(json.dumps(blocks))
        elif "wait_cancel" in step:
            while True:
                got = read()
                if got.get("method") == "session/cancel":
                    break
                pending.append(got)
        elif "hang" in step:
            while True:
                pending.append(read())
        elif "result" in step:
            result = step["result"]
        elif "error" in step:
            code, message = step["error"]
            write({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": code, "message": message}})
            return
        elif "stderr" in step:
            sys.stderr.write(step["stderr"] + "\n")
            sys.stderr.flush()
        elif "exit" in step:
            sys.exit(step["exit"])
    write({"jsonrpc": "2.0", "id": msg["id"], "result": result})


def main():
    caps = {"loadSession": False, "mcpCapabilities": {"http": True}}
    caps.update(json.loads(os.environ.get("FAKE_ACP_CAPS") or "{}"))
    while True:
        msg = pending.pop(0) if pending else read()
        method = msg.get("method")
        if method == "initialize":
            write({"jsonrpc": "2.0", "id": msg["id"], "result": {
                "protocolVersion": int(os.environ.get("FAKE_ACP_VERSION", "1")), "agentCapabilities": caps,
                "authMethods": [{"id": "login", "name": "Log in"}], "agentInfo": {"name": "fake", "version": "9"}}})
        elif method == "session/new":
            if os.environ.get("FAKE_ACP_NEW_ERROR"):
                write({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32000, "message": "auth required"}})
            else:
                write({"jsonrpc": "2.0", "id": msg["id"], "result": {"sessionId": SID}})
        elif method in ("session/resume", "session/close"):
            write({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
        elif method == "session/prompt":
            run_prompt(msg)
        elif "id" in msg and method is not None:
            write({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "nope"}})


if __name__ == "__main__":
    main()
