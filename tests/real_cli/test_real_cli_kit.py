"""The real-CLI kit itself: binary discovery, skip-or-fail, PATH set-up (no CLI needed)."""

from __future__ import annotations

import os

import pytest

import real_cli_kit as kit


def test_missing_binary_skips_with_a_visible_reason(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv(kit.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="real `gemini` CLI not found .*.ci/run installs"):
        kit.require_cli("gemini")


def test_missing_binary_fails_when_required(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv(kit.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="AEGIS_REQUIRE_REAL_CLIS=1 but real `opencode` CLI not found"):
        kit.require_cli("opencode")


def test_cached_clis_go_first_on_path(monkeypatch, tmp_path):
    for name in ("claude", "opencode"):
        (tmp_path / name / "node_modules" / ".bin").mkdir(parents=True)
    monkeypatch.setenv("AEGIS_CLI_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin")
    added = kit.add_cached_clis_to_path()
    assert added == [str(tmp_path / n / "node_modules" / ".bin") for n in ("claude", "opencode")]
    assert os.environ["PATH"].split(os.pathsep) == [*added, "/usr/bin"]
    assert kit.add_cached_clis_to_path() == []  # idempotent


def test_cli_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("AEGIS_CLI_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kit.cli_cache() == tmp_path / "aegis-ci" / "clis"
