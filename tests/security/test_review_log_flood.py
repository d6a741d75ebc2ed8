"""Review of issue 12 (findings 2 and 5 together): a local user who knows nothing but the MCP port
must not be able to write to ``aegis.log`` at will. Every refused request (unknown token, wrong Host,
wrong Origin) logged a warning line: one keep-alive connection looping bad tokens grew the log by
~250 KB/s on this machine — a full disk in hours, which then refuses envelopes. Refusals are now
logged at most once a minute per kind, with the count refused in between."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("aegis_mcp", reason="the MCP plane (plugins/mcp) is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mcp"))

from aegis_mcp.front import RefusalLog  # noqa: E402


def refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aegis_mcp" and "refused" in r.getMessage()]


@pytest.mark.trio
async def test_a_flood_of_bad_tokens_writes_one_log_line_not_one_per_request(tmp_path, caplog):
    import httpx
    import trio
    from mcp_testkit import HEADERS, StubKernel, add_default_operations, start_plane

    caplog.set_level(logging.INFO)
    kernel = StubKernel(tmp_path)
    add_default_operations(kernel)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=30) as client:
        _plane, base = await start_plane(nursery, kernel)
        for i in range(200):
            r = await client.post(base + f"not-a-token-{i}", headers=HEADERS,
                                  json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert r.status_code == 403  # every one still refused
        for i in range(50):
            r = await client.post(base + "x", headers={**HEADERS, "Host": "evil.example"}, content=b"{}")
            assert r.status_code == 421
        nursery.cancel_scope.cancel()
    lines = refusal_lines(caplog)
    assert sum("unknown token" in line for line in lines) == 1, lines
    assert sum("Host" in line for line in lines) == 1, lines


def test_the_next_line_after_the_interval_says_how_many_were_refused_meanwhile(caplog):
    now = [0.0]
    refusals = RefusalLog(interval=60.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO)
    for _ in range(5):
        refusals.warning("token", "mcp: refused a request with an unknown token")
    now[0] = 61.0
    refusals.warning("token", "mcp: refused a request with an unknown token")
    assert refusal_lines(caplog) == [
        "mcp: refused a request with an unknown token",
        "mcp: refused a request with an unknown token (and 4 more since the last such line)",
    ]
