"""Fixtures for the MCP plane tests (helpers live in ``mcp_testkit``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio

from mcp_testkit import TOKEN, StubKernel, add_default_operations, start_plane


@pytest.fixture
def kernel(tmp_path: Path) -> StubKernel:
    k = StubKernel(tmp_path)
    add_default_operations(k)
    return k


@pytest.fixture
async def plane(kernel: StubKernel):
    async with trio.open_nursery() as nursery:
        p, base = await start_plane(nursery, kernel)
        yield SimpleNamespace(plane=p, base=base, url=base + TOKEN, kernel=kernel)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c
