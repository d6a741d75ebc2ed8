"""The turn primitive: run a turn (or a transient session's opening turn) and await its outcome."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from aegis_kernel.events import AgentError, AssistantText, SystemInit, TokenUsage, ToolUse, TurnResult
from aegis_kernel.testing import DriverPlugin, FakeDriver, FakeProcess, pids_mentioning
from aegis_kernel import Turn, TurnOutcome, open_transient_turn, run_transient_turn, run_turn

CONFIG = """\
default_agent: worker
plugins:
  disabled: [mcp]
agents:
  worker:
    provider: tfake
    model: m1
"""


class ScriptProcess(FakeProcess):
    """Obeys the last line of a turn: ``hang`` · ``crash`` · ``error`` · ``chunks`` · else echoes it."""

    async def _run_turn(self, text: str) -> None:
        word = text.strip().splitlines()[-1].strip()
        with trio.CancelScope() as scope:
            self._turn = scope
            if word == "hang":
                await trio.sleep_forever()
            elif word == "crash":
                await self._send.send(AgentError(message="the agent process exited with code 3", exit_code=3))
                self._send.close()
                return
            elif word == "error":
                await self._send.send(AssistantText(text="half an answer"))
                await self._send.send(TurnResult(stop_reason="error", is_error=True, error="model refused"))
                return
            elif word == "chunks":
                await self._send.send(AssistantText(text="a draft", message_id="m1"))
                await self._send.send(ToolUse(tool_call_id="t1", name="Read"))
                await self._send.send(AssistantText(text="the whole ", message_id="m2"))
                await self._send.send(AssistantText(text="final message", message_id="m2"))
                await self._send.send(TurnResult(usage=TokenUsage(input=7, output=3), cost_usd=0.25))
                return
            await self._send.send(AssistantText(text=f"echo {word}"))
            await self._send.send(TurnResult(usage=TokenUsage(input=10, output=5)))
            return
        await self._send.send(TurnResult(stop_reason="cancelled"))


class ScriptDriver(FakeDriver):
    async def start(self, spec: Any, launch: Any, nursery: trio.Nursery) -> Any:
        proc = ScriptProcess(self.reply, f"t-{spec.handle}")
        proc._nursery = nursery
        self.processes.append(proc)
        await proc._send.send(SystemInit(session_id=proc.session_id))
        return proc


@pytest.fixture
def driver(write_config, register_plugin) -> ScriptDriver:
    write_config(CONFIG)
    return register_plugin(DriverPlugin(ScriptDriver(name="tfake"))).drivers[0]


def kernel_of(make_kernel):
    return make_kernel(entry_points=False)


@pytest.mark.trio
async def test_ok_gives_the_whole_final_message_usage_and_cost_and_closes_the_transient_session(driver, make_kernel):
    async with kernel_of(make_kernel) as kernel:
        outcome = await run_transient_turn(kernel, "worker", "chunks", timeout=10)
        assert outcome == TurnOutcome("ok", text="the whole final message", usage=TokenUsage(input=7, output=3),
                                      cost_usd=0.25, stop_reason="end_turn", handle=outcome.handle, model="m1",
                                      provider="tfake")
        assert outcome.ok and kernel.sessions.get(outcome.handle) is None
        assert [p.closed for p in driver.processes] == [True]
        assert kernel.sessions.saved_all() == []  # transient: nothing a restart would bring back


@pytest.mark.trio
async def test_an_error_turn_a_crash_and_an_unknown_profile(driver, make_kernel):
    async with kernel_of(make_kernel) as kernel:
        error = await run_transient_turn(kernel, "worker", "error", timeout=10)
        assert (error.status, error.error, error.detail, error.text) == ("error", "model refused", "model refused",
                                                                         "half an answer")
        crash = await run_transient_turn(kernel, "worker", "crash", timeout=10)
        assert crash.status == "error" and crash.stop_reason == "agent_failed"
        assert crash.error == "the agent failed: the agent process exited with code 3" and crash.usage is None
        from aegis_kernel.sessions import SessionError

        with pytest.raises(SessionError, match="unknown agent"):
            await run_transient_turn(kernel, "nobody", "x")
        assert list(kernel.sessions) == []


@pytest.mark.trio
async def test_a_turn_that_never_ends_times_out_on_the_mock_clock_and_its_session_is_closed(driver, make_kernel,
                                                                                          autojump_clock):
    async with kernel_of(make_kernel) as kernel:
        start = trio.current_time()
        outcome = await run_transient_turn(kernel, "worker", "hang", timeout=3600)
        assert outcome.status == "timed_out" and outcome.stop_reason == "deadline"
        assert outcome.error == "the turn did not finish within 1h"
        assert trio.current_time() - start >= 3600  # an hour passed on the mock clock, none on the wall
        assert list(kernel.sessions) == [] and [p.closed for p in driver.processes] == [True]


@pytest.mark.trio
async def test_cancel_ends_the_wait_and_a_cancelled_caller_leaves_no_session(driver, make_kernel):
    async with kernel_of(make_kernel) as kernel:
        async with open_transient_turn(kernel, "worker", "hang") as turn:
            await turn.session.wait_for(lambda s: s.state == "working")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(turn.wait)
                await trio.testing.wait_all_tasks_blocked()
                assert not turn.done  # still working: nothing ended the wait
                turn.cancel("cancelled by the user")
            assert turn.outcome.status == "cancelled" and turn.outcome.error == "cancelled by the user"
        assert list(kernel.sessions) == []

        with trio.move_on_after(0) as scope:  # the caller gives up at once
            await run_transient_turn(kernel, "worker", "hang")
        assert scope.cancelled_caught
        assert list(kernel.sessions) == [] and all(p.closed for p in driver.processes)


@pytest.mark.trio
async def test_run_turn_awaits_the_turn_that_carries_its_text_not_the_one_running(driver, make_kernel):
    async with kernel_of(make_kernel) as kernel:
        session = await kernel.sessions.spawn("worker", prompt="hang")
        await session.wait_for(lambda s: s.state == "working")
        results: list[TurnOutcome] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(results, run_turn(session, "second", timeout=10)))
            await trio.testing.wait_all_tasks_blocked()
            assert results == []  # buffered behind the hanging turn
            session.interrupt()  # the first turn ends (cancelled); ours runs next
        [outcome] = results
        assert (outcome.status, outcome.text) == ("ok", "echo second")
        assert session.state == "ready"  # run_turn leaves a live session live


@pytest.mark.trio
async def test_run_turn_interrupts_a_turn_past_its_deadline(driver, make_kernel, autojump_clock):
    async with kernel_of(make_kernel) as kernel:
        # transient: a restorable session waits for its snapshot's writer thread, and the mock clock
        # jumps to the next deadline while anything waits on a thread
        session = await kernel.sessions.spawn("worker", restorable=False)
        await session.wait_for(lambda s: s.state == "ready")
        outcome = await run_turn(session, "hang", timeout=60)
        assert outcome.status == "timed_out"
        await session.wait_for(lambda s: s.state == "ready")  # interrupted, not left working
        assert (await run_turn(session, "again", timeout=60)).text == "echo again"


@pytest.mark.trio
async def test_a_turn_on_a_closed_session_is_an_error_at_once(driver, make_kernel):
    async with kernel_of(make_kernel) as kernel:
        session = await kernel.sessions.spawn("worker")
        await session.wait_for(lambda s: s.state == "ready")
        turn = Turn(session)
        await session.close("done with it")
        outcome = await turn.wait(timeout=1)
        assert outcome.status == "error" and outcome.stop_reason == "closed" and "done with it" in outcome.error


async def _append(results: list[Any], awaitable: Any) -> None:
    results.append(await awaitable)


# --- real scripted agents (subprocesses) ------------------------------------------------------------------


@pytest.mark.trio
async def test_real_scripted_agents_ok_error_and_no_process_left_after_a_timeout(write_config, make_kernel,
                                                                                 aegis_project):
    pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")
    write_config("default_agent: worker\nplugins:\n  disabled: [mcp]\nagents:\n  worker:\n    provider: scripted\n")
    marker = str(aegis_project / ".aegis" / "state")
    async with make_kernel() as kernel:
        ok = await run_transient_turn(kernel, "worker", "@usage in=5 out=2\n@reply the answer", timeout=30)
        assert (ok.status, ok.text) == ("ok", "the answer") and ok.usage.output == 2
        failed = await run_transient_turn(kernel, "worker", "@fail it broke", timeout=30)
        assert failed.status == "error" and "it broke" in failed.error
        async with open_transient_turn(kernel, "worker", "@sleep 600") as turn:
            await turn.session.wait_for(lambda s: s.state == "working", timeout=30)
            assert pids_mentioning(marker)  # the agent is running
            outcome = await turn.wait(timeout=0.2)
            assert outcome.status == "timed_out"
        assert pids_mentioning(marker) == []  # closed on the way out: no process left
        assert list(kernel.sessions) == []
