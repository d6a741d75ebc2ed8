"""Issue 12, finding 7: one bad record costs only itself, never a whole session or every session.

Each test damages the state the way a bug, a crash or a hand edit would, restarts the kernel, and
checks what a user notices: which sessions and envelopes come back, and a warning naming the place.
"""

from __future__ import annotations

import json
import logging

import pytest
import trio

from aegis_kernel.delivery import Envelope
from aegis_kernel.testing import DriverPlugin, FakeDriver

FAKE_CONFIG = "default_agent: fake\nagents:\n  fake:\n    provider: fake\n"


class Hold:
    """A reply that never finishes the first turn (the session stays busy), then answers at once."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str) -> str:
        self.texts.append(text)
        if len(self.texts) == 1:
            await trio.sleep_forever()
        return "ok"


@pytest.fixture
def fake(write_config, register_plugin):
    write_config(FAKE_CONFIG)
    driver = FakeDriver()
    register_plugin(DriverPlugin(driver))
    return driver


async def busy_sessions(make_kernel, fake, handles, envelopes_each=2):
    """Run a kernel with ``handles`` busy and ``envelopes_each`` envelopes waiting for each; stop it."""
    fake.reply = Hold()
    async with make_kernel() as kernel:
        for handle in handles:
            session = await kernel.sessions.spawn(handle=handle, prompt="busy")
            await session.wait_for(lambda s: s.state == "working")
            for n in range(envelopes_each):
                kernel.deliver(handle, Envelope.new("agent:peer", f"{handle} note {n}"))
        state = kernel.state.root
    fake.reply = lambda text: "ok"
    return state


async def restart(make_kernel):
    """A kernel that restores; returns ``{handle: [envelope bodies it was sent]}`` and the problems."""
    async with make_kernel() as kernel:
        restored = await kernel.sessions.restore()
        got = {}
        for session in restored:
            await session.wait_idle()
            got[session.handle] = [e.body for e in session.history if type(e).__name__ == "EnvelopeReceived"]
        return got, list(kernel.sessions.restore_problems)


@pytest.mark.trio
async def test_a_bad_inbox_record_costs_only_itself(fake, make_kernel, caplog):
    state = await busy_sessions(make_kernel, fake, ["alpha"], envelopes_each=3)
    inbox = state / "inboxes" / "alpha.jsonl"
    lines = inbox.read_text().splitlines()
    queued = [i for i, line in enumerate(lines) if '"op":"queued"' in line and "alpha note" in line]
    first = json.loads(lines[queued[1]])
    first["envelope"]["flavour"] = "from a newer aegis"  # an unknown key: the envelope is kept
    lines[queued[1]] = json.dumps(first)
    second = json.loads(lines[queued[2]])
    second["envelope"]["body"] = 42  # a wrong type: only this envelope is skipped
    lines[queued[2]] = json.dumps(second)
    lines.insert(queued[2], '{"v":1,"op":"queu')  # a torn record in the middle
    inbox.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        got, _ = await restart(make_kernel)
    assert got == {"alpha": ["alpha note 0", "alpha note 1"]}
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"alpha.jsonl:{queued[1] + 1}:" in m and "flavour" in m for m in messages)
    assert any(f"alpha.jsonl:{queued[2] + 2}:" in m and "'body'" in m for m in messages)
    assert any(f"alpha.jsonl:{queued[2] + 1}:" in m for m in messages)


@pytest.mark.trio
async def test_an_inbox_replaced_by_a_folder_costs_the_envelopes_not_the_session(fake, make_kernel):
    state = await busy_sessions(make_kernel, fake, ["alpha", "beta"])
    inbox = state / "inboxes" / "alpha.jsonl"
    inbox.unlink()
    inbox.mkdir()
    got, problems = await restart(make_kernel)
    assert got == {"alpha": [], "beta": ["beta note 0", "beta note 1"]}
    assert any(p.startswith("alpha: restored without its pending envelopes") for p in problems)


@pytest.mark.trio
async def test_a_garbled_snapshot_falls_back_to_the_previous_one_and_is_kept(fake, make_kernel):
    state = await busy_sessions(make_kernel, fake, ["alpha", "beta"])
    snapshot = state / "sessions.json"
    assert (state / "sessions.json.bak").exists()  # the snapshot before the last write
    garbled = snapshot.read_bytes()[:-20] + b"\x00\xff garbage"
    snapshot.write_bytes(garbled)
    async with make_kernel() as kernel:
        restored = await kernel.sessions.restore()
        # the .bak predates the last write: it knows alpha for sure (beta's spawn wrote it)
        assert "alpha" in {s.handle for s in restored}
        assert any("sessions.json" in p and "corrupt" in p for p in kernel.sessions.restore_problems)
        await kernel.sessions.spawn(handle="gamma")
        await kernel.state.writer.flush().wait()
    kept = [p for p in state.iterdir() if p.name.startswith("sessions.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes() == garbled  # the next spawn did not overwrite it
    assert json.loads(snapshot.read_text())["sessions"]  # and a good snapshot is back


@pytest.mark.trio
async def test_a_snapshot_record_of_the_wrong_type_costs_only_that_session(fake, make_kernel):
    state = await busy_sessions(make_kernel, fake, ["alpha", "beta"])
    snapshot = state / "sessions.json"
    data = json.loads(snapshot.read_text())
    for rec in data["sessions"]:
        if rec["handle"] == "alpha":
            rec["agent"] = ["fake"]
    data["sessions"].append("not a record")
    snapshot.write_text(json.dumps(data))
    got, problems = await restart(make_kernel)
    assert got == {"beta": ["beta note 0", "beta note 1"]}
    assert any("sessions[0]" in p and "'agent' must be a string" in p for p in problems)
    assert any("sessions[2]" in p and "not an object" in p for p in problems)
