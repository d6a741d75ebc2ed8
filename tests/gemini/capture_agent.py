"""Plays the *agent* side of a captured ACP session (``../shared/reference/captures/*_acp_*.jsonl``).

    python capture_agent.py CAPTURE.jsonl [ignored args…]

Walks the capture in order. An ``out`` record (what the client sent) is awaited on stdin: a request
or notification by its method, a reply to one of the agent's requests by its id. An ``in`` record
(what the agent sent) is written to stdout, a reply getting the id of the client's matching request.
So a driver that speaks to it exactly as the captured client did gets the real agent's frames back,
in the real order. Anything unexpected goes to stderr and exits 3. After the last record it waits
for stdin to close (answering any further request with ``{}``). The client's replies to the agent's
requests are appended to $CAPTURE_AGENT_LOG.
"""

import json
import os
import sys

log_path = os.environ.get("CAPTURE_AGENT_LOG")


def fail(message):
    sys.stderr.write(f"capture_agent: {message}\n")
    sys.stderr.flush()
    sys.exit(3)


def read():
    line = sys.stdin.readline()
    if not line:
        fail("stdin closed before the capture ended")
    return json.loads(line)


def main():
    with open(sys.argv[1]) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    ids = {}  # capture id of a client request -> the id the driver used
    for rec in records:
        msg = rec["msg"]
        if rec["dir"] == "out":
            if "method" in msg:
                got = read()
                if got.get("method") != msg["method"]:
                    fail(f"expected {msg['method']}, got {json.dumps(got)[:300]}")
                if "id" in msg:
                    ids[msg["id"]] = got["id"]
            else:  # the client's reply to one of our requests
                got = read()
                if got.get("id") != msg["id"] or "method" in got:
                    fail(f"expected the reply to request {msg['id']}, got {json.dumps(got)[:300]}")
                if log_path:
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps(got) + "\n")
        else:
            if "method" not in msg and "id" in msg:
                msg = {**msg, "id": ids.get(msg["id"], msg["id"])}
            sys.stdout.write(json.dumps(msg) + "\n")
            sys.stdout.flush()
    for line in sys.stdin:  # after the capture: answer requests (session/close) with an empty result
        got = json.loads(line)
        if "method" in got and "id" in got:
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": got["id"], "result": {}}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
