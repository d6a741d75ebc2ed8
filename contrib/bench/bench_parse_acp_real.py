"""ACP parse throughput on one core over *real* traffic: every agent frame of the Gemini CLI and
OpenCode captures (tests/gemini/data, tests/opencode/data), replayed in a loop through what the
client's reader does per frame — ``parse_line``, ``UpdateTranslator.update`` / ``.permission`` and,
for prompt results, the vendor driver's ``usage_from_result`` + ``turn_result``.

Some real frames are much bigger than the synthetic ones of bench_parse_acp.py (``initialize``/``session/new``
replies list every model and mode; ``available_commands_update`` lists ~40 commands), so this is a
floor rather than the typical case. Target: ≥ 50,000 frames/s.

    .venv/bin/python contrib/bench/bench_parse_acp_real.py [--frames 60000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from aegis_acp.codec import UpdateTranslator, turn_result
from aegis_acp.jsonrpc import Notification, Request, Response, parse_line
from aegis_gemini.driver import GeminiDriver
from aegis_opencode.driver import OpenCodeDriver

TESTS = Path(__file__).resolve().parents[2] / "tests"


def frames(vendor: str) -> list[bytes]:
    out = []
    for path in sorted((TESTS / vendor / "data").glob(f"{vendor}_acp_*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["dir"] == "in":
                out.append(json.dumps(rec["msg"]).encode())
    return out


def run_once(lines: list[bytes], driver: object) -> float:
    translator = UpdateTranslator()
    usage_from_result = driver.usage_from_result  # type: ignore[attr-defined]
    events = 0
    start = time.perf_counter()
    for i, line in enumerate(lines):
        msg = parse_line(line)
        kind = type(msg)
        if kind is Notification and msg.method == "session/update":
            events += len(translator.update(msg.params, line))
        elif kind is Request:
            events += len(translator.permission(str(i), msg.params, line))
        elif kind is Response and type(msg.result) is dict and "stopReason" in msg.result:
            turn_result(msg.result, usage=usage_from_result(msg.result))
            events += 1
    elapsed = time.perf_counter() - start
    assert events >= len(lines) // 3, "the codec produced too few events"
    return len(lines) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for vendor, driver in (("gemini", GeminiDriver()), ("opencode", OpenCodeDriver())):
        base = frames(vendor)
        lines = (base * (args.frames // len(base) + 1))[: args.frames]
        rates = [run_once(lines, driver) for _ in range(args.runs)]
        size = sum(map(len, base)) / len(base)
        print(f"{vendor:9} captures  median {statistics.median(rates):10,.0f} frames/s "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f}; {len(base)} real frames, mean {size:,.0f} B, "
              f"{args.frames} frames × {args.runs} runs)")


if __name__ == "__main__":
    main()
