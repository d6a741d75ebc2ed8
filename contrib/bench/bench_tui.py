"""TUI figures, measured in a real pseudo-terminal (120×40) where it matters.

1. `aegis demo` start → first frame drawn (the title line appears on the pty): target ≤ 1.0 s.
2. 5,000 tokens/s streamed into the active tab; key-press → the key's character drawn on the pty:
   target median ≤ 50 ms. ``--agents N`` streams from N agents at once (``--rate`` tokens/s each, one tab
   each, the first one active) and reports the median and p99 over ``--keys`` presses.
3. A 10,000-block transcript: time per scroll step (PageUp/PageDown/Home/End, headless pilot): no stalls.

Run: .venv/bin/python contrib/bench/bench_tui.py [--runs 5] [--keys 40] [--agents 20 --rate 500 --keys 200]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

COLS, ROWS = 120, 40
RATE = 5000  # tokens per second
TICK = 0.01  # one batch of RATE*TICK partial tokens per tick


# --- a pseudo-terminal child -----------------------------------------------------------------------


class PtyChild:
    def __init__(self, argv: list[str], cwd: str, env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS), **(env or {})}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=full_env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.buffer = b""

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return b""
        self.buffer += data
        return data

    def wait_for(self, needle: bytes, timeout: float) -> float:
        """Seconds since start until ``needle`` shows up in the output."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if needle in self.buffer:
                return time.perf_counter() - self.started
            self.read(0.01)
        raise TimeoutError(f"{needle!r} not seen in {timeout}s; last output: {self.buffer[-400:]!r}")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def quit(self, timeout: float = 20) -> int:
        self.send(b"\x11")  # Ctrl+Q
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and self.proc.poll() is None:
            self.read(0.05)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
        code = self.proc.wait()
        os.close(self.master)
        return code


# --- 1. first frame -------------------------------------------------------------------------------


def bench_first_frame(runs: int) -> list[float]:
    aegis = shutil.which("aegis", path=str(Path(sys.executable).parent)) or "aegis"
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            child = PtyChild([aegis, "demo", "--no-tour", "--dir", f"{tmp}/demo"], tmp)
            times.append(child.wait_for(b"aegis demo", 15))
            child.wait_for(b"Ctrl+T new agent", 15)  # the kernel came up too
            child.quit()
    return times


# --- 2. streaming + key latency (the child side runs the real app on a streaming driver) ------------


def child_stream(agents: int = 1, rate: int = RATE) -> None:
    """Run the TUI with ``agents`` agents streaming ``rate`` tokens/s each forever (until Ctrl+Q)."""
    import trio

    from aegis_kernel.events import AssistantText, TokenUsage, TurnResult, UsageUpdate
    from aegis_kernel.kernel import build_kernel
    from aegis_kernel.testing import DriverPlugin, FakeDriver, FakeProcess
    from aegis_tui.app import AegisApp
    from aegis_tui.cli import run_app

    class Streamer(FakeProcess):
        async def _run_turn(self, text: str) -> None:
            per_tick = max(1, int(rate * TICK))
            sent = 0
            start = time.perf_counter()
            with trio.CancelScope() as scope:
                self._turn = scope
                while True:
                    due = int((time.perf_counter() - start) * rate)
                    while sent < due:
                        n = min(per_tick, due - sent)
                        await self._send.send(AssistantText(text="".join(f"w{(sent + i) % 97} " for i in range(n)),
                                                            message_id="m", partial=True))
                        sent += n
                    await self._send.send(UsageUpdate(usage=TokenUsage(input=1000, output=sent)))
                    await trio.sleep(TICK)
            await self._send.send(TurnResult(stop_reason="cancelled"))

    class StreamDriver(FakeDriver):
        async def start(self, spec, launch, nursery):  # type: ignore[override]
            from aegis_kernel.events import SystemInit

            proc = Streamer(self.reply, f"s-{spec.handle}")
            proc._nursery = nursery
            await proc._send.send(SystemInit(session_id=proc.session_id))
            return proc

    project = Path(tempfile.mkdtemp())
    (project / ".aegis.yaml").write_text("default_agent: s\nplugins:\n  disabled: [mcp]\nagents:\n  s: {provider: stream}\n")

    async def tour(app: AegisApp) -> None:
        from aegis_kernel.delivery import Envelope

        for i in range(agents):
            session = await app.kernel.sessions.spawn("s")
            app._known.add(id(session))
            app.call_later(app.add_agent_tab, session, activate=(i == 0))
            await session.wait_for(lambda s: s.state == "ready", timeout=10)
            app.kernel.deliver(session.handle, Envelope.new("user", "stream"))

    kernel = build_kernel(project, extra_plugins=[("stream", DriverPlugin(StreamDriver(name="stream")))])
    sys.exit(run_app(kernel, clean=True, tour=tour))


KEYS = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþ"


def bench_keys(count: int, agents: int = 1, rate: int = RATE) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as tmp:
        child = PtyChild([sys.executable, __file__, "--child-stream", "--agents", str(agents), "--rate", str(rate)],
                         tmp)
        child.wait_for(b"w96", 20)  # streaming has started
        time.sleep(1.0)
        latencies = []
        chars = [KEYS[i % len(KEYS)] for i in range(count)]
        for i, ch in enumerate(chars):
            if i and i % 30 == 0:  # keep the input short: clear it (not measured)
                child.send(b"\x7f" * 30)
                time.sleep(0.3)
            needle = ch.encode()
            mark = len(child.buffer)
            sent = time.perf_counter()
            child.send(needle)
            deadline = sent + 5
            while time.perf_counter() < deadline:
                if needle in child.buffer[mark:]:
                    latencies.append(time.perf_counter() - sent)
                    break
                child.read(0.002)
            else:
                latencies.append(float("inf"))
            time.sleep(0.05)
        started = time.perf_counter()
        before = child.buffer.count(b"w")
        time.sleep(1.0)
        while child.read(0.01):
            pass
        drawn = (child.buffer.count(b"w") - before) / (time.perf_counter() - started)
        child.quit()
    return latencies, drawn


# --- 3. 10,000-block transcript ---------------------------------------------------------------------


def bench_scroll(steps: int) -> list[float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "tui"))
    from aegis_kernel import events as ev
    from aegis_tui.app import AgentView
    from aegis_tui.blocks import TranscriptModel
    from tui_testkit import make_app, make_project, wait_until

    times: list[float] = []

    async def body() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            app = make_app(make_project(Path(tmp)))
            app.animation_level = "none"  # measure rendering, not the smooth-scroll animation
            async with app.run_test(size=(COLS, ROWS)) as pilot:
                await wait_until(pilot, lambda: app.kernel_ready)
                model = TranscriptModel()
                for i in range(5000):
                    model.apply(ev.UserTurn(text=f"question {i}: " + "why " * (i % 7)))
                    model.apply(ev.AssistantText(text=f"answer **{i}**\n\n- point one\n- point `two`\n\n"
                                                      + "lorem ipsum dolor " * (i % 30)))
                    model.apply(ev.TurnResult())
                view = AgentView(None, model)
                view.working.session = None
                content = app.query_one("#content")
                await content.mount(view)
                for child in content.children:
                    child.display = child is view
                view.transcript.focus()
                t0 = time.perf_counter()
                view.transcript.flush()
                await pilot.pause()
                times.append(time.perf_counter() - t0)  # first: build + draw the bottom
                transcript = view.transcript
                page = transcript.scrollable_content_region.height
                bottom = transcript.max_scroll_y
                targets = [max(0, bottom - page * k) for k in range(1, steps // 2)] + [0] + \
                          [page * k for k in range(1, steps // 2)] + [bottom // 3, bottom]
                screen = app.screen
                for y in targets:
                    # one step = scroll one page + compose the whole screen (the cost of that frame)
                    t0 = time.perf_counter()
                    transcript.scroll_to(y=y, animate=False, immediate=True)
                    screen._compositor.render_update(full=True)
                    times.append(time.perf_counter() - t0)
                    await pilot.pause()
                await pilot.press("ctrl+q")

    asyncio.run(body())
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--agents", type=int, default=0,
                        help="only the key-latency figure, with this many agents streaming at once")
    parser.add_argument("--rate", type=int, default=RATE, help="tokens/s per agent with --agents")
    parser.add_argument("--child-stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_stream:
        child_stream(max(1, args.agents), args.rate)
        return
    if args.agents:
        latencies, drawn = bench_keys(args.keys, args.agents, args.rate)
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"key → screen, {args.agents} agents streaming {args.rate} tokens/s each: "
              f"median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
              f"({len(latencies)} keys; streamed 'w' chars reaching the terminal ~{drawn:,.0f}/s)")
        return
    frames = bench_first_frame(args.runs)
    print(f"aegis demo → first frame      median {statistics.median(frames) * 1000:7.1f} ms  "
          f"(max {max(frames) * 1000:.1f} ms, {args.runs} runs; target ≤ 1000 ms)")
    latencies, drawn = bench_keys(args.keys)
    finite = [x for x in latencies if x != float("inf")]
    print(f"key → screen while streaming  median {statistics.median(latencies) * 1000:7.1f} ms  "
          f"(p90 {sorted(finite)[int(len(finite) * 0.9) - 1] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms, "
          f"{len(latencies)} keys at {RATE} tokens/s; target median ≤ 50 ms)")
    print(f"  (streamed text reaching the terminal: ~{drawn:,.0f} 'w' chars/s)")
    scroll = bench_scroll(args.steps)
    first, steps = scroll[0], scroll[1:]
    print(f"10,000-block transcript       first draw {first * 1000:6.1f} ms · scroll step median "
          f"{statistics.median(steps) * 1000:.1f} ms, p95 {sorted(steps)[int(len(steps) * 0.95)] * 1000:.1f} ms, "
          f"max {max(steps) * 1000:.1f} ms ({len(steps)} steps)")


if __name__ == "__main__":
    main()
