"""10 agents × 20 writes to different sections of one canvas at once: every write is in the file and
the ledger, and every subscriber gets every other writer's notification exactly once."""

from __future__ import annotations

from collections import Counter

import pytest
import trio
import trio.testing
from canvas_testkit import agent, call, summaries, wait_until, wakeups

from aegis_canvas.sections import body
from aegis_kernel import Ledger

AGENTS, WRITES = 10, 20


@pytest.mark.trio
async def test_ten_agents_writing_twenty_times_at_once_lose_nothing_and_wake_each_other_once(
        fake, kernel, aegis_project):
    agents = [await agent(kernel) for _ in range(AGENTS)]
    await call(kernel, "aegis_canvas_open", agents[0].handle, name="board", file="board.md")
    for a in agents:
        await call(kernel, "aegis_canvas_subscribe", a.handle, name="board")

    async def writer(i: int) -> None:
        for j in range(WRITES):
            out = await call(kernel, "aegis_canvas_append_to_section", agents[i].handle, name="board",
                             section=f"part-{i}", content=f"agent {i} write {j}")
            assert (out["added"], out["removed"]) == (1, 0)

    async with trio.open_nursery() as nursery:
        for i in range(AGENTS):
            nursery.start_soon(writer, i)

    text = (aegis_project / "board.md").read_text()
    for i in range(AGENTS):
        assert body(text, f"part-{i}") == "".join(f"agent {i} write {j}\n" for j in range(WRITES))
    records = [r for r in Ledger.replay(kernel.state.root / "canvases/board/ledger.jsonl").records
               if r["event"] == "write"]
    assert sorted(r["version"] for r in records) == list(range(1, AGENTS * WRITES + 1))
    assert Counter(r["writer"] for r in records) == {f"agent:{a.handle}": WRITES for a in agents}

    def lines_seen(session):
        return [env.body.split("\n──\n", 1)[1] for env in wakeups(session, "board")]

    expected = AGENTS * WRITES - WRITES
    await wait_until(lambda: all(len(wakeups(a, "board")) >= expected for a in agents), timeout=60)
    await trio.testing.wait_all_tasks_blocked()  # nothing more is on its way
    for i, a in enumerate(agents):
        seen = lines_seen(a)
        others = {f"agent {k} write {j}" for k in range(AGENTS) if k != i for j in range(WRITES)}
        assert len(seen) == expected and set(seen) == others  # each once, none of its own
        for env in wakeups(a, "board"):
            [head] = summaries(env)
            assert head["writer"] != f"agent:{a.handle}" and (head["added"], head["removed"]) == (1, 0)
