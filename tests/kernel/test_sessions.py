"""Sessions and the delivery channel, on the in-memory FakeDriver (one layer; e2e tests use real agents)."""

from __future__ import annotations

import json

import pytest
import trio

from aegis_kernel import hookimpl
from aegis_kernel.delivery import Envelope
from aegis_kernel.events import EnvelopeReceived, UserTurn
from aegis_kernel.sessions import SessionError
from aegis_kernel.testing import DriverPlugin, FakeDriver

FAKE_CONFIG = """\
default_agent: fake
agents:
  fake:
    provider: fake
  ghost:  # cannot start: its binary does not exist
    provider: acp
    command: [/nonexistent/aegis-no-such-agent]
"""


class Gate:
    """A reply function that holds each turn until released (to make a session busy)."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.texts: list[str] = []

    async def __call__(self, text: str) -> str:
        self.texts.append(text)
        if len(self.texts) == 1:
            await self.release.wait()
        return f"done {len(self.texts)}"


@pytest.fixture
def fake(write_config, register_plugin):
    write_config(FAKE_CONFIG)
    driver = FakeDriver()
    register_plugin(DriverPlugin(driver))
    return driver


@pytest.mark.trio
async def test_spawn_prompt_reply_metrics(fake, kernel):
    session = await kernel.sessions.spawn(prompt="hello there")
    await session.wait_for(lambda s: s.metrics.turns == 1)
    assert session.state == "ready"
    assert session.final_text == "fake reply to: hello there"
    assert session.metrics.total.input == 10 and session.metrics.total.output == 5
    assert kernel.sessions.get(session.handle) is session


@pytest.mark.trio
async def test_envelopes_to_a_busy_session_arrive_as_one_batch_at_turn_end(fake, kernel):
    gate = Gate()
    fake.reply = gate
    session = await kernel.sessions.spawn(prompt="first task")
    await session.wait_for(lambda s: s.state == "working")
    r1 = kernel.deliver(session.handle, Envelope.new("agent:wry-hopper", "note one"))
    r2 = kernel.deliver(session.handle, Envelope.new("queue:tests", "note two", task_id="7", status="ok"))
    assert (r1.state, r1.position, r2.position) == ("queued", 1, 2)
    gate.release.set()
    await session.wait_for(lambda s: s.metrics.turns == 2)
    batch = gate.texts[1]
    assert batch.startswith("✉ from agent:wry-hopper · ")
    assert "note one" in batch and "✉ from queue:tests · task#7 · ok · " in batch and "note two" in batch
    received = [e for e in session.history if isinstance(e, EnvelopeReceived)]
    assert [e.body for e in received] == ["note one", "note two"]


@pytest.mark.trio
async def test_idle_session_is_woken_by_an_envelope(fake, kernel):
    session = await kernel.sessions.spawn()
    await session.wait_for(lambda s: s.state == "ready")
    receipt = kernel.deliver(session.handle, Envelope.new("agent:x", "wake up"))
    assert receipt.position == 0
    await session.wait_for(lambda s: s.metrics.turns == 1)
    assert "wake up" in fake.processes[0].prompts[0]


@pytest.mark.trio
async def test_interrupt_envelope_cuts_the_running_turn(fake, kernel):
    fake.reply = Gate()  # first turn never ends by itself
    session = await kernel.sessions.spawn(prompt="long job")
    await session.wait_for(lambda s: s.state == "working")
    kernel.deliver(session.handle, Envelope.new("agent:boss", "stop and read this", interrupt=True))
    await session.wait_for(lambda s: s.metrics.turns == 2)
    assert "stop and read this" in fake.processes[0].prompts[1]


@pytest.mark.trio
async def test_driver_session_id_is_persisted_at_once(fake, kernel):
    session = await kernel.sessions.spawn(handle="keeper")
    await session.wait_for(lambda s: s.driver_session_id == "fake-keeper")
    snapshot = json.loads(kernel.state.path("sessions.json").read_text())
    assert snapshot["sessions"][0]["driver_session_id"] == "fake-keeper"


def test_unknown_provider_is_a_clear_config_error(fake, write_config, aegis_project, aegis_plugins):
    from aegis_kernel.config import ConfigError
    from aegis_kernel.kernel import build_kernel

    write_config(FAKE_CONFIG + "  lost:\n    provider: nosuchprovider\n")
    with pytest.raises(ConfigError) as info:
        build_kernel(aegis_project, extra_plugins=aegis_plugins)
    assert "unknown provider 'nosuchprovider'" in str(info.value) and "@ agents.lost.provider" in str(info.value)
    assert "fake" in str(info.value)  # names what is installed


@pytest.mark.trio
async def test_an_agent_that_cannot_start_is_a_clear_session_error(fake, kernel):
    session = await kernel.sessions.spawn("ghost")
    await session.wait_for(lambda s: s.state == "error")
    assert "/nonexistent/aegis-no-such-agent" in session.error


@pytest.mark.trio
async def test_spawn_refusals(fake, kernel):
    with pytest.raises(SessionError, match="unknown agent 'nope'"):
        await kernel.sessions.spawn("nope")
    await kernel.sessions.spawn(handle="taken")
    with pytest.raises(SessionError, match="handle 'taken' is taken"):
        await kernel.sessions.spawn(handle="taken")
    with pytest.raises(ValueError, match="invalid handle"):
        await kernel.sessions.spawn(handle="Not OK")
    with pytest.raises(ValueError, match="transient sessions"):
        await kernel.sessions.spawn(transcript="shared")  # a restorable session keeps its own transcript


@pytest.mark.trio
async def test_transient_sessions_can_share_a_transcript_and_keep_no_inbox(fake, kernel):
    a = await kernel.sessions.spawn(handle="wa", prompt="one", restorable=False, transcript="pool")
    b = await kernel.sessions.spawn(handle="wb", prompt="two", restorable=False, transcript="pool")
    for s in (a, b):
        await s.wait_for(lambda s: s.metrics.turns == 1)
    await a.close()
    c = await kernel.sessions.spawn(handle="wc", prompt="three", restorable=False, transcript="pool")
    await c.wait_for(lambda s: s.metrics.turns == 1)  # written after a's close closed nothing shared
    await b.close()
    path = kernel.state.root / "sessions" / "pool.jsonl"
    assert a.info()["transcript"] == str(path)
    assert "pool" in kernel.sessions._transcripts  # c still writes to it
    await c.close()
    assert not kernel.sessions._transcripts  # the last one out closed it: no fd kept per day
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["handle"] for r in records} == {"wa", "wb", "wc"}
    texts = {r["handle"]: r["event"]["text"] for r in records if r["event"]["t"] == "AssistantText"}
    assert texts == {"wa": "fake reply to: one", "wb": "fake reply to: two", "wc": "fake reply to: three"}
    assert not (kernel.state.root / "inboxes").exists() or not any((kernel.state.root / "inboxes").iterdir())


@pytest.mark.trio
async def test_close_reaps_and_calls_observers(fake, register_plugin, make_kernel):
    closed = []

    class Observer:
        @hookimpl
        def aegis_session_closed(self, session, reason):
            closed.append((session.handle, reason))

    register_plugin(Observer())
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="short-lived")
        await session.wait_for(lambda s: s.state == "ready")
        await kernel.sessions.close("short-lived", "done with it")
        assert session.state == "closed"
        assert kernel.sessions.get("short-lived") is None
        assert fake.processes[0].closed
    assert closed == [("short-lived", "done with it")]


@pytest.mark.trio
async def test_undelivered_envelopes_survive_a_restart_exactly_once(fake, make_kernel):
    gate = Gate()
    fake.reply = gate
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="worker", prompt="busy")
        await session.wait_for(lambda s: s.state == "working")
        kernel.deliver("worker", Envelope.new("agent:peer", "do not lose me"))
    # the kernel stopped while the envelope was still queued; a new one restores the session
    fake.reply = lambda text: "ok"
    async with make_kernel() as kernel:
        restored = await kernel.sessions.restore()
        assert [s.handle for s in restored] == ["worker"]
        session = restored[0]
        assert session.resume_id == "fake-worker"
        await session.wait_for(lambda s: s.metrics.turns == 1)
        prompts = fake.processes[-1].prompts
        assert len(prompts) == 1 and "do not lose me" in prompts[0]
    async with make_kernel() as kernel:
        assert kernel.delivery.pending("worker") == []


@pytest.mark.trio
async def test_user_turn_is_logged_to_the_session_event_log(fake, kernel):
    session = await kernel.sessions.spawn(prompt="log me")
    await session.wait_for(lambda s: s.metrics.turns == 1)
    lines = kernel.state.path("sessions", f"{session.log_id}.jsonl").read_text().splitlines()
    tags = [json.loads(line)["event"]["t"] for line in lines]
    assert "UserTurn" in tags and "TurnResult" in tags and "SystemInit" in tags
    assert any(isinstance(e, UserTurn) and e.text == "log me" for e in session.history)


@pytest.mark.trio
async def test_a_broken_pre_turn_hook_is_skipped_not_fatal(fake, register_plugin, make_kernel):
    class Broken:
        @hookimpl
        def aegis_pre_turn(self, session, text):
            raise RuntimeError("bug in a plugin")

    class Shouting:
        @hookimpl
        def aegis_pre_turn(self, session, text):
            return text.upper()

    register_plugin(Broken())
    register_plugin(Shouting())
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(prompt="still works")
        await session.wait_for(lambda s: s.metrics.turns == 1)
        assert fake.processes[0].prompts == ["STILL WORKS"]


@pytest.mark.trio
async def test_envelopes_to_a_failed_session_are_refused_with_the_way_out(fake, kernel):
    from aegis_kernel.delivery import DeliveryError

    session = await kernel.sessions.spawn("ghost", handle="broken")
    await session.wait_for(lambda s: s.state == "error")
    with pytest.raises(DeliveryError, match="has failed .*aegis spawn --resume broken"):
        kernel.deliver("broken", Envelope.new("agent:x", "hello?"))


@pytest.mark.trio
async def test_closing_drops_undelivered_envelopes_so_a_reused_handle_never_gets_them(fake, make_kernel):
    fake.reply = Gate()
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="reused", prompt="busy")
        await session.wait_for(lambda s: s.state == "working")
        kernel.deliver("reused", Envelope.new("agent:peer", "meant for the first one"))
        await kernel.sessions.close("reused")
        assert kernel.delivery.pending("reused") == []


@pytest.mark.trio
async def test_a_failed_transient_session_writes_closed_then_lets_go_of_its_shared_transcript(fake, kernel):
    import os

    session = await kernel.sessions.spawn(handle="wd", prompt="one", restorable=False, transcript="pool")
    await session.wait_for(lambda s: s.metrics.turns == 1)
    fake.processes[-1]._send.close()  # the agent dies
    await session.wait_for(lambda s: s.state == "error")
    with trio.fail_after(5):
        await session._closed.wait()  # its task has ended; the session is not retired yet
    await session.close()
    path = os.path.realpath(kernel.state.root / "sessions" / "pool.jsonl")
    last = json.loads(open(path).read().splitlines()[-1])
    assert (last["event"]["old"], last["event"]["new"], last["session"]) == ("error", "closed", session.log_id)
    assert not kernel.sessions._transcripts
    open_fds = [fd for fd in os.listdir("/proc/self/fd") if _link(fd) == path]
    assert open_fds == []  # closed once, and not reopened by the "closed" record


def _link(fd: str) -> str:
    import os

    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
