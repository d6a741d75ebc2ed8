"""Real-CLI tests: the pinned ``claude``, ``gemini`` and ``opencode`` binaries against the fake model.

``.ci/run`` installs them into ``${XDG_CACHE_HOME:-~/.cache}/aegis-ci/clis/<cli>/node_modules/.bin``;
those folders are put on ``PATH`` here when present. A missing binary skips its tests with the reason
shown (``-ra``), or fails them when ``AEGIS_REQUIRE_REAL_CLIS=1`` (set by ``.ci/run``).

One fake model server per test module (``fake_model``, overriding the kit's per-test fixture): the
CLIs' start-up dominates the run time, the server costs nothing to share. Tests look only at the
requests made after a mark (``len(fake_model.requests)``).
"""

from __future__ import annotations

import pytest
from aegis_testkit.fakemodel import FakeModelServer

from real_cli_kit import add_cached_clis_to_path

add_cached_clis_to_path()


@pytest.fixture(scope="module")
def fake_model():
    with FakeModelServer(slow_interval=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def cli_root(tmp_path_factory):
    """Per-module home/config folders for the CLI under test: shared by the module's tests, so each
    CLI sets up its own state (OpenCode's database, Gemini's project registry) once per module."""
    return tmp_path_factory.mktemp("cli-home")
