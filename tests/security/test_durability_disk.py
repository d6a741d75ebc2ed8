"""Issue 12, finding 5: a full disk never loses an acknowledged envelope.

On a real 2 MB tmpfs (needs root to mount; skipped with the reason otherwise): fill the disk, send
envelopes until one is refused ("disk full writing …"), free space, send again, and replay the inbox
ledger as a restart would: every acknowledged envelope is there, the refused one is not, and the
ledger has no torn line. The root-free twin with a simulated short write is in
``tests/kernel/test_state.py`` and ``tests/kernel/test_delivery.py``.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
import trio

from aegis_kernel.delivery import Delivery, DeliveryError, Envelope
from aegis_kernel.state import Ledger
from aegis_kernel.testing import DriverPlugin, FakeDriver

CONFIG = "default_agent: fake\nagents:\n  fake:\n    provider: fake\n"


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a 2 MB tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                if len(block) == 1:
                    return
                block = block[: len(block) // 2]
    finally:
        os.close(fd)


async def never_answers(text: str) -> str:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


@pytest.mark.trio
async def test_full_disk_refuses_the_envelope_and_loses_none_acknowledged(small_disk, make_kernel,
                                                                          register_plugin):
    project = small_disk / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    driver = FakeDriver()
    driver.reply = never_answers  # the session stays busy: every envelope waits in its inbox
    register_plugin(DriverPlugin(driver))
    acknowledged: list[str] = []
    async with make_kernel(project) as kernel:
        session = await kernel.sessions.spawn(prompt="work")
        await session.wait_for(lambda s: s.state == "working")
        kernel.deliver(session.handle, Envelope.new("agent:x", "before the disk fills"))  # ledger open
        filler = small_disk / "filler"
        fill(filler)
        refused = None
        for n in range(10_000):
            envelope = Envelope.new("agent:x", f"envelope {n} " + "x" * 700)
            try:
                receipt = kernel.deliver(session.handle, envelope)
            except DeliveryError as exc:
                refused = (envelope.id, str(exc))
                break
            acknowledged.append(receipt.envelope_id)
        assert refused is not None, "the disk never filled"
        assert "disk full writing" in refused[1] and f"{session.handle}.jsonl" in refused[1]
        filler.unlink()
        for n in range(3):
            acknowledged.append(kernel.deliver(session.handle, Envelope.new("agent:x", f"after {n}")).envelope_id)
        handle, inbox_dir = session.handle, kernel.delivery.inbox_dir
    replay = Ledger.replay(inbox_dir / f"{handle}.jsonl")
    assert replay.problems == []
    pending = [e.id for e in Delivery(inbox_dir).pending(handle)]
    assert set(acknowledged) <= set(pending)
    assert refused[0] not in pending
