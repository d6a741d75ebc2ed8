"""ACP parse throughput on one core: raw ``session/update`` lines → kernel events.

Measures what the ACP client's reader does per frame: ``aegis_acp.jsonrpc.parse_line`` (JSON decode
+ envelope validation) and ``UpdateTranslator.update`` (field validation + event construction).
Frames are typical OpenCode/Gemini shapes: ``agent_message_chunk`` (with messageId) and
``tool_call_update`` (in_progress with rawInput, then completed with a text content block).
Prints the median frames/s of several runs per mix. Target: ≥ 50,000 frames/s.

    .venv/bin/python contrib/bench/bench_parse_acp.py [--frames 60000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from aegis_acp.codec import UpdateTranslator
from aegis_acp.jsonrpc import Notification, parse_line

SID = "ses_df3b1f7b3ffellqTpft756CzCP"


def _frame(update: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "session/update",
                       "params": {"sessionId": SID, "update": update}}).encode()


def chunk_frames(n: int) -> list[bytes]:
    return [_frame({"sessionUpdate": "agent_message_chunk", "messageId": "msg_20c4e11b0001RvdvU9T1QRGrB4",
                    "content": {"type": "text", "text": f"token {i} of a streamed reply, "}}) for i in range(n)]


def tool_frames(n: int) -> list[bytes]:
    out = []
    for i in range(n // 2):
        tid = f"call_{i:020d}"
        out.append(_frame({"sessionUpdate": "tool_call_update", "toolCallId": tid, "status": "in_progress",
                           "kind": "execute", "title": "bash", "locations": [],
                           "rawInput": {"command": f"pytest -q tests/test_{i}.py", "description": "run tests"}}))
        out.append(_frame({"sessionUpdate": "tool_call_update", "toolCallId": tid, "status": "completed",
                           "content": [{"type": "content", "content": {"type": "text",
                                                                       "text": f"{i} passed in 0.42s\n"}}],
                           "rawOutput": {"output": f"{i} passed in 0.42s\n", "metadata": {"truncated": False}}}))
    return out


def mixed_frames(n: int) -> list[bytes]:
    chunks, tools = chunk_frames(n // 2), tool_frames(n - n // 2)
    out = []
    for i in range(max(len(chunks), len(tools))):
        if i < len(chunks):
            out.append(chunks[i])
        if i < len(tools):
            out.append(tools[i])
    return out


def run_once(frames: list[bytes]) -> float:
    translator = UpdateTranslator()
    events = 0
    start = time.perf_counter()
    for line in frames:
        msg = parse_line(line)
        if type(msg) is Notification and msg.method == "session/update":
            events += len(translator.update(msg.params, line))
    elapsed = time.perf_counter() - start
    assert events >= len(frames) // 2, "the codec produced too few events"
    return len(frames) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for name, make in (("agent_message_chunk", chunk_frames), ("tool_call_update", tool_frames),
                       ("mixed", mixed_frames)):
        frames = make(args.frames)
        run_once(frames[:1000])  # warm up
        rates = [run_once(frames) for _ in range(args.runs)]
        print(f"{name:20s} median {statistics.median(rates):>10,.0f} frames/s "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f}; {len(frames)} frames × {args.runs} runs)")


if __name__ == "__main__":
    main()
