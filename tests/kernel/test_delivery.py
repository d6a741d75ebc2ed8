"""The delivery channel's durability: what is acknowledged is persisted, bad records cost only themselves."""

from __future__ import annotations

import errno
import json
import os

import pytest
import trio

from aegis_kernel import state
from aegis_kernel.delivery import Delivery, DeliveryError, Envelope
from aegis_kernel.testing import DriverPlugin, FakeDriver

FAKE_CONFIG = "default_agent: fake\nagents:\n  fake:\n    provider: fake\n"


async def never_answers(text: str) -> str:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


@pytest.fixture
def busy(write_config, register_plugin):
    """The fake agent never finishes a turn: envelopes sent to it wait in its inbox."""
    write_config(FAKE_CONFIG)
    driver = FakeDriver(never_answers)
    register_plugin(DriverPlugin(driver))
    return driver


@pytest.mark.trio
async def test_an_envelope_that_cannot_be_persisted_is_refused_not_acknowledged(busy, kernel, monkeypatch):
    session = await kernel.sessions.spawn(prompt="work")
    await session.wait_for(lambda s: s.state == "working")
    first = kernel.deliver(session.handle, Envelope.new("agent:x", "one"))
    real_write = os.write

    def full_disk(fd, data):
        if len(data) > 10:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state.os, "write", full_disk)
    lost = Envelope.new("agent:x", "two")
    with pytest.raises(DeliveryError, match=r"not accepted: disk full writing .*inboxes"):
        kernel.deliver(session.handle, lost)
    assert session.pending_count == 1  # the refused envelope was not handed over either
    monkeypatch.setattr(state.os, "write", real_write)
    third = kernel.deliver(session.handle, Envelope.new("agent:x", "three"))
    pending = [e.id for e in Delivery(kernel.delivery.inbox_dir).pending(session.handle)]
    assert pending == [first.envelope_id, third.envelope_id]
    ledger = kernel.delivery.inbox_dir / f"{session.handle}.jsonl"
    assert all(json.loads(line) for line in ledger.read_text().splitlines())  # no torn line left


@pytest.mark.trio
async def test_fsyncs_and_snapshot_writes_never_run_on_the_event_loop(busy, kernel, monkeypatch):
    """Issue 10 item 7: spawn, deliver, rename and close hand every fsync to the state writer thread,
    and spawn still returns only once the snapshot that brings the session back is on disk."""
    import threading

    loop_thread = threading.current_thread()
    fsyncs: list[threading.Thread] = []
    real_fsync = os.fsync

    def fsync(fd):
        fsyncs.append(threading.current_thread())
        return real_fsync(fd)

    monkeypatch.setattr(state, "BATCH_INTERVAL", 0.0)  # every inbox append is due an fsync
    monkeypatch.setattr(os, "fsync", fsync)
    session = await kernel.sessions.spawn(handle="alpha", prompt="work")
    snapshot = json.loads(kernel.state.path("sessions.json").read_text())
    assert [r["handle"] for r in snapshot["sessions"]] == ["alpha"]  # durable when acknowledged
    await session.wait_for(lambda s: s.state == "working")
    for n in range(3):
        kernel.deliver("alpha", Envelope.new("agent:x", f"note {n}"))
    kernel.sessions.rename("alpha", "beta")
    await kernel.sessions.close("beta")
    await kernel.state.writer.flush().wait()
    assert fsyncs and loop_thread not in fsyncs
    snapshot = json.loads(kernel.state.path("sessions.json").read_text())
    assert snapshot["sessions"] == [] and snapshot["ended"][-1]["handle"] == "beta"
