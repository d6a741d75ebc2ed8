"""aegis_kernel.process: the shared trio subprocess helper (real child processes)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
import trio
from aegis_kernel.process import STDERR_RING_BYTES, AgentStdinClosed, SpawnFailed, open_agent_process

PY = sys.executable


def _script(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


async def _until_dead(pidfd: int, timeout: float = 5.0) -> None:
    """Wait until the process behind ``pidfd`` has terminated (a pidfd turns readable then)."""
    with trio.fail_after(timeout):
        await trio.lowlevel.wait_readable(pidfd)


@pytest.mark.trio
async def test_big_line_and_following_lines(tmp_path):
    size = 20 * 1024 * 1024
    code = f"""
        import sys
        out = sys.stdout.buffer
        out.write(b"first\\n")
        out.write(b"x" * {size} + b"\\n")
        out.write(b"last\\n")
        out.flush()
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        got = [line async for line in proc.lines()]
        assert await proc.wait() == 0
        await proc.close(grace=0.5)
    assert [len(x) for x in got] == [5, size, 4]
    assert got[0] == b"first" and got[2] == b"last"
    assert got[1] == b"x" * size


@pytest.mark.trio
async def test_truncated_last_line_is_yielded(tmp_path):
    code = """
        import sys
        sys.stdout.write("a\\n\\nb-no-newline")
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        got = [line async for line in proc.lines()]
        await proc.close(grace=0.5)
    assert got == [b"a", b"", b"b-no-newline"]


@pytest.mark.trio
async def test_env_is_merged_and_cwd_used(tmp_path):
    code = """
        import os
        print(os.environ["AEGIS_TEST_VAR"], os.environ.get("PATH") is not None, os.getcwd())
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {"AEGIS_TEST_VAR": "v1"}, tmp_path)
        got = [line async for line in proc.lines()]
        await proc.close(grace=0.5)
    assert got == [f"v1 True {tmp_path}".encode()]


@pytest.mark.trio
async def test_send_line_round_trip_and_polite_close(tmp_path):
    code = """
        import sys
        for line in sys.stdin:
            sys.stdout.write("echo:" + line)
            sys.stdout.flush()
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        lines = proc.lines()
        await proc.send_line("hello")
        assert await lines.__anext__() == b"echo:hello"
        await proc.send_line(b"bytes too")
        assert await lines.__anext__() == b"echo:bytes too"
        rc = await proc.close(grace=2)
        assert rc == 0  # stdin EOF was enough
        assert await proc.close(grace=2) == 0  # safe twice
        with pytest.raises(AgentStdinClosed, match="stdin is closed"):
            await proc.send_line("late")


@pytest.mark.trio
async def test_send_line_to_dead_process_raises_clear_error(tmp_path):
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script("import sys; sys.exit(4)"), {}, tmp_path)
        assert await proc.wait() == 4
        with pytest.raises(AgentStdinClosed) as info:
            for _ in range(100):  # the first write may land in the pipe buffer before EPIPE
                await proc.send_line("x" * 65536)
        assert "exit code 4" in str(info.value)
        await proc.close(grace=0.5)


@pytest.mark.trio
async def test_stderr_tail_is_a_ring(tmp_path):
    code = """
        import sys
        err = sys.stderr.buffer
        for i in range(2000):
            err.write(b"noise %05d ----------------------------------------------------------\\n" % i)
        err.write(b"the last words\\n")
        err.flush()
        sys.exit(7)
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        assert await proc.wait() == 7
        await proc.stderr_settled(timeout=5)
        tail = proc.stderr_tail()
        assert tail.endswith("the last words\n")
        assert len(tail.encode()) <= STDERR_RING_BYTES
        assert "noise 00000" not in tail
        assert proc.stderr_tail(limit=15) == "the last words\n"
        await proc.close(grace=0.5)
    assert proc.exit_description() == "exit code 7"


@pytest.mark.trio
async def test_close_kills_group_including_sigterm_ignoring_child_and_grandchild(tmp_path):
    code = """
        import signal, subprocess, sys
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grand = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        print(grand.pid, flush=True)
        sys.stdin.close()  # ignore the polite EOF too
        import time
        time.sleep(600)
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        lines = proc.lines()
        grand_pid = int(await lines.__anext__())
        assert os.getpgid(grand_pid) == proc.pid  # same group, led by the agent
        grand_fd = os.pidfd_open(grand_pid)  # not our child: watch it through a pidfd
        try:
            with trio.fail_after(5):  # 3 × grace plus slack: never hangs
                rc = await proc.close(grace=0.3)
            assert rc == -9
            assert proc.exit_description() == "killed by SIGKILL"
            await _until_dead(grand_fd)
        finally:
            os.close(grand_fd)
        assert await proc.close(grace=0.3) == -9  # idempotent


@pytest.mark.trio
async def test_close_terminates_when_stdin_eof_is_ignored(tmp_path):
    code = """
        import sys, time
        sys.stdin.close()
        print("ready", flush=True)
        time.sleep(600)
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        assert await proc.lines().__anext__() == b"ready"
        rc = await proc.close(grace=0.3)
    assert rc == -15


@pytest.mark.trio
async def test_close_is_shielded_from_cancellation(tmp_path):
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, [PY, "-c", "import time; time.sleep(600)"], {}, tmp_path)
        with trio.CancelScope() as scope:
            scope.cancel()
            await proc.close(grace=0.3)
        assert proc.returncode is not None


@pytest.mark.trio
async def test_missing_binary_raises_spawn_failed(tmp_path):
    argv = ["/nonexistent/aegis-agent-binary", "--acp"]
    async with trio.open_nursery() as nursery:
        with pytest.raises(SpawnFailed) as info:
            await open_agent_process(nursery, argv, {}, tmp_path)
    err = info.value
    assert err.argv == tuple(argv)
    assert isinstance(err.error, FileNotFoundError)
    assert "/nonexistent/aegis-agent-binary --acp" in str(err)
    assert "No such file or directory" in str(err)


@pytest.mark.trio
async def test_bad_cwd_raises_spawn_failed(tmp_path):
    async with trio.open_nursery() as nursery:
        with pytest.raises(SpawnFailed, match="cwd"):
            await open_agent_process(nursery, [PY, "-c", "pass"], {}, tmp_path / "missing")


@pytest.mark.trio
async def test_a_frame_over_the_cap_ends_the_stream_and_stops_the_agent(tmp_path, monkeypatch):
    """An agent that writes more than the frame cap without a newline (issue 12 finding 9) is not read
    into memory: the lines before it arrive, the stream ends, the agent is stopped, and its death event
    names the limit."""
    monkeypatch.setattr("aegis_kernel.process.MAX_FRAME_BYTES", 1024 * 1024)
    code = """
        import sys
        out = sys.stdout.buffer
        out.write(b"x" * (1024 * 1024) + b"\\n")  # exactly the cap: one line
        out.write(b"before\\n")
        out.flush()
        while True:  # endless output without a newline
            out.write(b"y" * 65536)
            out.flush()
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        got = [line async for line in proc.lines()]
        await proc.settle_after_eof()
        death = proc.death_event(during_turn=True)
        await proc.close(grace=0.5)
    assert [len(x) for x in got] == [1024 * 1024, 6]
    assert proc.frame_overflow is not None
    assert "larger than the 1 MiB limit" in death.message
    assert proc.returncode is not None


@pytest.mark.trio
async def test_the_cap_counts_bytes_across_chunks_and_within_one(tmp_path, monkeypatch):
    monkeypatch.setattr("aegis_kernel.process.MAX_FRAME_BYTES", 100)
    code = """
        import sys
        out = sys.stdout.buffer
        out.write(b"a" * 100 + b"\\n" + b"b" * 50 + b"\\n" + b"c" * 101 + b"\\nnever\\n")
        out.flush()
    """
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, _script(code), {}, tmp_path)
        got = [line async for line in proc.lines()]
        await proc.close(grace=0.5)
    assert got == [b"a" * 100, b"b" * 50]
    assert "100 bytes limit" in (proc.frame_overflow or "")
