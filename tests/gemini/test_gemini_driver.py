"""aegis_gemini: argv/env, registration, import weight, and the session/load minute-boundary workaround."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import trio
from aegis_gemini import driver as gemini
from aegis_gemini.driver import GeminiDriver, chat_files, chat_stamp, gemini_home, unclobber
from aegis_kernel.drivers import SpawnSpec
from aegis_kernel.profiles import AgentProfile

SID = "d5367809-bd7d-4b75-8362-4955a3c1e35e"


def spec(tmp_path: Path, **profile) -> SpawnSpec:
    return SpawnSpec(handle="brisk-curie", profile_name="gem", profile=AgentProfile(provider="gemini", **profile),
                     cwd=tmp_path, state_dir=tmp_path)


# --- launch --------------------------------------------------------------------------------------------


def test_default_argv_and_env(tmp_path):
    launch = GeminiDriver().build_launch(spec(tmp_path))
    assert launch.argv == ("gemini", "--acp")
    assert launch.env == {"GEMINI_CLI_NO_RELAUNCH": "true"}  # else gemini re-spawns itself as a child
    assert launch.cwd == tmp_path


def test_model_and_command_override(tmp_path):
    launch = GeminiDriver().build_launch(spec(tmp_path, model="gemini-2.5-pro", command=("/opt/g/bin/gemini",)))
    assert launch.argv == ("/opt/g/bin/gemini", "--acp", "-m", "gemini-2.5-pro")


@pytest.mark.parametrize("command", [("npx", "@google/gemini-cli", "--experimental-acp"), ("gemini", "--acp")])
def test_acp_flag_not_doubled(tmp_path, command):
    assert GeminiDriver().build_launch(spec(tmp_path, command=command)).argv == command


def test_model_flag_in_the_command_wins(tmp_path):
    launch = GeminiDriver().build_launch(spec(tmp_path, model="x", command=("gemini", "-m", "y")))
    assert launch.argv == ("gemini", "-m", "y", "--acp")


def test_profile_env_goes_on_top(tmp_path):
    launch = GeminiDriver().build_launch(spec(tmp_path, env={"GEMINI_API_KEY": "k", "GEMINI_CLI_NO_RELAUNCH": "0"}))
    assert launch.env == {"GEMINI_CLI_NO_RELAUNCH": "0", "GEMINI_API_KEY": "k"}


def test_registered_through_the_entry_point(tmp_path):
    from aegis_kernel.kernel import build_kernel

    (tmp_path / ".aegis.yaml").write_text("agents:\n  g:\n    provider: gemini\n")
    drivers = build_kernel(tmp_path).plugins.registry.objects("drivers")
    assert isinstance(drivers["gemini"], GeminiDriver) and drivers["gemini"].supports_resume


def test_plugin_and_driver_modules_do_not_import_trio():
    code = "import sys, aegis_gemini.plugin, aegis_gemini.driver; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the session/load minute-boundary workaround -----------------------------------------------------------


def chat(home: Path, stamp: str, sid: str, project: str = "proj") -> Path:
    path = home / ".gemini" / "tmp" / project / "chats" / f"session-{stamp}-{sid[:8]}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sessionId": sid, "projectHash": "h", "kind": "main"}) + "\n"
                    + json.dumps({"id": "m1", "type": "user", "content": [{"text": "hello"}]}) + "\n")
    return path


def test_chat_stamp_is_gemini_utc_minute():
    assert chat_stamp(1_795_502_761.9) == "2026-11-24T06-46"  # node: new Date().toISOString().slice(0,16)
    assert chat_stamp(1_795_502_760.0) != chat_stamp(1_795_502_759.999)


def test_gemini_home(monkeypatch, tmp_path):
    monkeypatch.delenv("GEMINI_CLI_HOME", raising=False)
    assert gemini_home({}) == Path.home()
    monkeypatch.setenv("GEMINI_CLI_HOME", str(tmp_path / "a"))
    assert gemini_home({}) == tmp_path / "a"
    assert gemini_home({"GEMINI_CLI_HOME": str(tmp_path / "b")}) == tmp_path / "b"


def test_unclobber_moves_only_the_file_a_load_would_write_into(tmp_path):
    now = 1_795_502_761.0
    current = chat(tmp_path, chat_stamp(now), SID)
    older = chat(tmp_path, chat_stamp(now - 120), SID, project="other")
    same_prefix = chat(tmp_path, chat_stamp(now), SID[:8] + "-ffff-4fff-8fff-ffffffffffff", project="third")
    assert sorted(chat_files(tmp_path, SID)) == sorted([current, older])

    [moved] = unclobber(tmp_path, SID, now)
    assert moved.name == f"session-{chat_stamp(now)}-aegis-{SID[:8]}.jsonl"
    assert not current.exists() and older.exists() and same_prefix.exists()
    # still Gemini's pattern (session-*-<id8>.jsonl) and the same content: Gemini finds it by id
    assert moved.name.startswith("session-") and moved.name.endswith(f"-{SID[:8]}.jsonl")
    assert sorted(chat_files(tmp_path, SID)) == sorted([moved, older])
    # a second load in the same minute: the stray file the first load created is moved too, no clash
    chat(tmp_path, chat_stamp(now), SID)
    [again] = unclobber(tmp_path, SID, now)
    assert again.name == f"session-{chat_stamp(now)}-aegis2-{SID[:8]}.jsonl" and moved.exists()
    assert unclobber(tmp_path, SID, now + 60) == []


@pytest.mark.trio
async def test_prepare_load_moves_the_file_instead_of_waiting(tmp_path, autojump_clock):
    current = chat(tmp_path, chat_stamp(), SID)
    launch = GeminiDriver().build_launch(spec(tmp_path, env={"GEMINI_CLI_HOME": str(tmp_path)}))
    before = trio.current_time()
    await GeminiDriver().prepare_load(SID, launch)
    assert trio.current_time() - before < 1
    assert not current.exists() and len(chat_files(tmp_path, SID)) == 1


@pytest.mark.trio
async def test_prepare_load_waits_past_the_minute_when_the_files_are_out_of_sight(tmp_path, monkeypatch,
                                                                                    autojump_clock):
    fake_now = 1_795_502_730.0  # 30 s into a minute
    monkeypatch.setattr(gemini, "time", types.SimpleNamespace(time=lambda: fake_now))
    driver = GeminiDriver()
    launch = driver.build_launch(spec(tmp_path, env={"GEMINI_CLI_HOME": str(tmp_path / "elsewhere")}))
    driver._created[SID] = {chat_stamp(fake_now)}  # this driver created it, in this very minute
    before = trio.current_time()
    await driver.prepare_load(SID, launch)
    assert trio.current_time() - before == pytest.approx(30.5)

    driver._created[SID] = {chat_stamp(fake_now - 60)}  # created a minute ago: no wait
    before = trio.current_time()
    await driver.prepare_load(SID, launch)
    assert trio.current_time() - before == 0
