"""Benchmark: Claude stream-json frames parsed per second by ``aegis_claude.codec.ClaudeParser``.

A typical streamed turn is mostly ``stream_event`` deltas (with ``--include-partial-messages``) plus
one ``assistant`` frame per content block; the mix below is 8 deltas : 1 assistant text frame : 1
assistant tool_use frame : 1 user tool_result frame, using the shapes of the real captures
(``tests/claude/data``). Single thread = one core. Target: ≥ 50,000 frames/s (median of runs).

    uv run python contrib/bench/bench_parse_claude.py [--frames 200000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from aegis_claude.codec import ClaudeParser

TARGET = 50_000
SESSION = "ec5bc941-2282-4def-9c01-0c8016d73d8f"


def _frames(turn: int) -> list[bytes]:
    mid = f"msg_{turn:020x}"
    tid = f"toolu_{turn:020x}"
    usage = {"input_tokens": 111, "output_tokens": 1, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 7}
    deltas = [
        {"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": f"token {i} of the reply "}},
         "session_id": SESSION, "parent_tool_use_id": None, "uuid": f"62a57ca2-595a-4ca5-ae45-d601dfd8ea{i:02d}"}
        for i in range(8)
    ]
    text = {"type": "assistant", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": "claude-opus-4-8",
        "content": [{"type": "text", "text": "The retry path lives in _run_turn at line 142; it backs off twice."}],
        "stop_reason": None, "stop_sequence": None, "usage": usage, "context_management": None},
        "parent_tool_use_id": None, "session_id": SESSION, "uuid": "378fca67-56dd-496c-8543-f506143b34c9"}
    tool = {"type": "assistant", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": "claude-opus-4-8",
        "content": [{"type": "tool_use", "id": tid, "name": "Read",
                     "input": {"file_path": "/home/dev/project/worker.py"}}],
        "stop_reason": None, "stop_sequence": None, "usage": usage, "context_management": None},
        "parent_tool_use_id": None, "session_id": SESSION, "uuid": "5a9354f1-13a0-49eb-afc6-0825ca235243"}
    result = {"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": tid, "type": "tool_result",
         "content": "import trio\n\nasync def _run_turn(self):\n    ...\n"}]},
        "parent_tool_use_id": None, "session_id": SESSION, "uuid": "098af0b0-e8cd-40d8-abc8-7e984e201387",
        "timestamp": "2026-11-24T06:45:08.891Z"}
    return [json.dumps(f, separators=(",", ":")).encode() for f in (*deltas, text, tool, result)]


def run(frames: int) -> float:
    """Parse ``frames`` frames with one parser; return frames per second."""
    turns = frames // 11 + 1
    lines = [line for t in range(turns) for line in _frames(t)][:frames]
    parser = ClaudeParser()
    feed = parser.feed
    start = time.perf_counter()
    for line in lines:
        feed(line)
    return len(lines) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    run(5_000)  # warm up
    rates = [run(args.frames) for _ in range(args.runs)]
    median = statistics.median(rates)
    verdict = "ok" if median >= TARGET else "BELOW"
    print(f"claude stream-json parse: median {median:,.0f} frames/s over {args.runs} runs of {args.frames:,} "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); target {TARGET:,} → {verdict}")
    return 0 if median >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
