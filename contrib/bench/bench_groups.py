"""Gather overhead of a group broadcast, with real scripted ACP members that answer at once.

    .venv/bin/python contrib/bench/bench_groups.py [--members 8] [--rounds 30]

The kernel runs in this process (as under ``aegis serve``: all installed plugins, MCP plane included);
a group of ``--members`` scripted members (``provider: scripted``: real agent subprocesses over ACP)
answers ``--rounds`` broadcasts. For each round: broadcast → ``aegis_group_wait_all`` returns; the
figure is the time from the slowest member's turn end (its ``TurnResult`` reaching the kernel) to
``wait_all`` returning — what gathering adds beyond the members' own turns. Median, p90, max.

Target (issue 15): median ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from aegis_kernel import hookimpl
from aegis_kernel.events import TurnResult
from aegis_kernel.kernel import open_kernel
from aegis_kernel.operations import Caller

CONFIG = """\
default_agent: member
agents:
  member:
    provider: scripted
"""


class Probe:
    """Notes when each session's turn end reaches the kernel (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.turn_end: dict[str, float] = {}

    @hookimpl
    def aegis_session_started(self, session: Any) -> None:
        def on_event(s: Any, event: Any) -> None:
            if isinstance(event, TurnResult):
                self.turn_end[s.handle] = time.perf_counter()

        session.subscribe(on_event)


async def run(members: int, rounds: int) -> list[float]:
    probe = Probe()
    user = Caller(via="user")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text(CONFIG)
        async with open_kernel(project, extra_plugins=[("bench-probe", probe)]) as kernel:
            ops = kernel.operations

            async def call(op: str, **args: Any) -> Any:
                return await ops.call(kernel, op, args, user)

            out = await call("aegis_group_spawn", name="bench", profiles=["member"] * members)
            handles = out["members"]
            for handle in handles:
                await kernel.sessions.get(handle).wait_for(lambda s: s.state == "ready", timeout=60)
            overheads = []
            for _ in range(rounds + 2):  # two warm-up rounds
                probe.turn_end.clear()
                await call("aegis_group_broadcast", name="bench", objective="@reply ok")
                result = await call("aegis_group_wait_all", name="bench", timeout=60)
                returned = time.perf_counter()
                assert set(result["replies"]) == set(handles), result
                overheads.append(returned - max(probe.turn_end[h] for h in handles))
            await call("aegis_group_dissolve", name="bench")
            return overheads[2:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    overheads = trio.run(run, args.members, args.rounds)
    ms = sorted(x * 1000 for x in overheads)
    p90 = ms[int(len(ms) * 0.9) - 1] if len(ms) >= 10 else ms[-1]
    print(f"gather overhead beyond the slowest member's turn, {args.members} members, {args.rounds} rounds: "
          f"median {statistics.median(ms):.2f} ms · p90 {p90:.2f} ms · max {ms[-1]:.2f} ms (target ≤ 10 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
