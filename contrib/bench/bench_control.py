"""The one command surface, measured from another process over the control socket (JSON-RPC).

1. Operation round trip: ``aegis_list_sessions`` on a persistent connection, median and p99
   (target median ≤ 0.5 ms).
2. ``aegis sessions`` as a whole process (interpreter start included), median (target ≤ 150 ms).
3. Event stream: ``aegis_subscribe`` to one subscriber that keeps up while N agents stream
   (target ≥ 20,000 events/s, no ``lagged`` marker).
4. A subscriber that reads slowly while N agents stream: it gets ``lagged`` markers and the owner's
   memory (RSS) stays flat — printed as RSS at the start and the end of the slow read.

The owner is a child process running a real kernel with the control socket, on in-process streaming
agents (so the figures are the kernel's and the transport's, not an agent CLI's).

Run: .venv/bin/python contrib/bench/bench_control.py [--agents 20] [--calls 2000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = 0.005


def child(project: Path, agents: int, rate: int) -> None:
    """The owner: a kernel with ``agents`` agents streaming ``rate`` partial events/s each, forever."""
    import trio

    from aegis_kernel.control import ControlServer
    from aegis_kernel.delivery import Envelope
    from aegis_kernel.events import AssistantText, SystemInit, TurnResult
    from aegis_kernel.kernel import build_kernel, open_kernel
    from aegis_kernel.testing import DriverPlugin, FakeDriver, FakeProcess

    class Streamer(FakeProcess):
        async def _run_turn(self, text: str) -> None:
            with trio.CancelScope() as scope:
                self._turn = scope
                sent, start = 0, trio.current_time()
                while True:
                    due = int((trio.current_time() - start) * rate)
                    while sent < due:
                        await self._send.send(AssistantText(text=f"w{sent} ", message_id="m", partial=True))
                        sent += 1
                    await trio.sleep(TICK)
            await self._send.send(TurnResult(stop_reason="cancelled"))

    class StreamDriver(FakeDriver):
        async def start(self, spec, launch, nursery):  # type: ignore[override]
            proc = Streamer(self.reply, f"s-{spec.handle}")
            proc._nursery = nursery
            await proc._send.send(SystemInit(session_id=proc.session_id))
            return proc

    async def main() -> None:
        kernel = build_kernel(project, extra_plugins=[("stream", DriverPlugin(StreamDriver(name="stream")))])
        async with open_kernel(kernel=kernel, restore=False) as k:
            await k.nursery.start(ControlServer(k, trio.Event()).run)
            for _ in range(agents):
                session = await k.sessions.spawn("s")
                await session.wait_for(lambda s: s.state == "ready", timeout=30)
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rate", type=int, default=2000, help="partial events/s per streaming agent")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--child", metavar="PROJECT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.agents, args.rate)
        return

    from aegis_kernel.client import connect

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".aegis.yaml").write_text("default_agent: s\nplugins:\n  disabled: [mcp]\nagents:\n"
                                             "  s: {provider: stream}\n")
        owner = subprocess.Popen([sys.executable, __file__, "--child", str(project), "--agents", str(args.agents),
                                  "--rate", str(args.rate)], stdout=subprocess.PIPE, text=True)
        try:
            assert owner.stdout.readline().strip() == "ready"
            state = project / ".aegis" / "state"

            # 1. round trip on a persistent connection (the agents are idle: nothing streams yet)
            with connect(state) as client:
                for _ in range(200):
                    client.call("aegis_list_sessions")
                times = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    client.call("aegis_list_sessions")
                    times.append(time.perf_counter() - t0)
            times.sort()
            print(f"aegis_list_sessions round trip ({args.agents} sessions)  median {statistics.median(times) * 1e3:.3f} ms"
                  f"  p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms  ({args.calls} calls; target median ≤ 0.5 ms)")

            # 2. `aegis sessions` as a whole process
            aegis = str(Path(sys.executable).parent / "aegis")
            runs = []
            for _ in range(args.processes):
                t0 = time.perf_counter()
                subprocess.run([aegis, "sessions"], cwd=project, check=True, capture_output=True)
                runs.append(time.perf_counter() - t0)
            print(f"aegis sessions (whole process)            median {statistics.median(runs) * 1e3:.0f} ms"
                  f"  ({args.processes} runs; target ≤ 150 ms)")

            # start every agent streaming
            with connect(state) as client:
                for s in client.call("aegis_list_sessions"):
                    client.call("aegis_send", {"handle": s["handle"], "text": "stream"})

            # 3. a subscriber that keeps up
            with connect(state, timeout=None) as client:
                count = lagged = 0
                t0 = time.perf_counter()
                for item in client.stream("aegis_subscribe", {"topics": ["session.event"], "buffer": 65536}):
                    if "lagged" in item:
                        lagged += item["lagged"]
                    else:
                        count += 1
                    if time.perf_counter() - t0 > args.seconds:
                        break
                elapsed = time.perf_counter() - t0
            print(f"event stream, one subscriber keeping up   {count / elapsed:,.0f} events/s  "
                  f"(offered {args.agents * args.rate:,}/s by {args.agents} agents; lagged {lagged}; "
                  "target ≥ 20,000/s, no loss)")

            # 4. a slow subscriber
            with connect(state, timeout=None) as client:
                rss = [rss_kb(owner.pid)]
                markers = missed = got = 0
                t0 = time.perf_counter()
                for item in client.stream("aegis_subscribe", {"topics": ["session.event"], "buffer": 1024}):
                    if "lagged" in item:
                        markers += 1
                        missed += item["lagged"]
                    else:
                        got += 1
                    if got % 200 == 0:
                        time.sleep(0.05)  # a reader that cannot keep up
                        rss.append(rss_kb(owner.pid))
                    if time.perf_counter() - t0 > args.seconds * 2:
                        break
            print(f"slow subscriber (buffer 1024)             {markers} lagged markers, {missed:,} events skipped, "
                  f"{got:,} read; owner RSS {rss[0] / 1024:.1f} → max {max(rss) / 1024:.1f} → "
                  f"end {rss[-1] / 1024:.1f} MB")
        finally:
            owner.terminate()
            owner.wait(timeout=30)
            os.environ.pop("AEGIS_BENCH", None)


if __name__ == "__main__":
    main()
