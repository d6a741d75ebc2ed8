"""aegis_opencode: argv, the model through OPENCODE_CONFIG_CONTENT, registration, import weight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aegis_acp.driver import AcpConfigError
from aegis_kernel.drivers import SpawnSpec
from aegis_kernel.profiles import AgentProfile
from aegis_opencode.driver import CONFIG_ENV, OpenCodeDriver, config_content


def spec(tmp_path: Path, **profile) -> SpawnSpec:
    return SpawnSpec(handle="brisk-curie", profile_name="oc", profile=AgentProfile(provider="opencode", **profile),
                     cwd=tmp_path, state_dir=tmp_path)


@pytest.fixture(autouse=True)
def no_inherited_config(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)


def test_default_argv_and_no_env(tmp_path):
    launch = OpenCodeDriver().build_launch(spec(tmp_path))
    assert (launch.argv, dict(launch.env), launch.cwd) == (("opencode", "acp"), {}, tmp_path)


@pytest.mark.parametrize("command, argv", [
    (("/opt/oc/bin/opencode",), ("/opt/oc/bin/opencode", "acp")),
    (("opencode", "acp", "--port", "4096"), ("opencode", "acp", "--port", "4096")),
    (("npx", "opencode-ai"), ("npx", "opencode-ai", "acp")),
])
def test_command_override(tmp_path, command, argv):
    assert OpenCodeDriver().build_launch(spec(tmp_path, command=command)).argv == argv


def test_model_goes_through_config_content(tmp_path):
    launch = OpenCodeDriver().build_launch(spec(tmp_path, model="anthropic/claude-sonnet-4-5"))
    assert json.loads(launch.env[CONFIG_ENV]) == {"model": "anthropic/claude-sonnet-4-5"}
    assert launch.argv == ("opencode", "acp")


def test_model_is_merged_into_the_profile_config(tmp_path):
    existing = json.dumps({"$schema": "https://opencode.ai/config.json", "model": "old/one", "share": "disabled"})
    profile = spec(tmp_path, model="fake/fake-model", env={CONFIG_ENV: existing, "K": "v"})
    launch = OpenCodeDriver().build_launch(profile)
    assert json.loads(launch.env[CONFIG_ENV]) == {"$schema": "https://opencode.ai/config.json",
                                                  "model": "fake/fake-model", "share": "disabled"}
    assert launch.env["K"] == "v"


def test_model_is_merged_into_the_inherited_config(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, '{"autoupdate": false}')
    launch = OpenCodeDriver().build_launch(spec(tmp_path, model="m/x"))
    assert json.loads(launch.env[CONFIG_ENV]) == {"autoupdate": False, "model": "m/x"}
    # without a model the inherited variable is left alone (not copied into the launch)
    assert CONFIG_ENV not in OpenCodeDriver().build_launch(spec(tmp_path)).env


def test_unmergeable_config_is_a_clear_error(tmp_path):
    with pytest.raises(AcpConfigError, match="agent 'oc': cannot set model 'm/x'"):
        OpenCodeDriver().build_launch(spec(tmp_path, model="m/x", env={CONFIG_ENV: "[1, 2]"}))
    with pytest.raises(AcpConfigError, match="cannot set model"):
        OpenCodeDriver().build_launch(spec(tmp_path, model="m/x", env={CONFIG_ENV: "{nope"}))


def test_config_content():
    assert config_content(None, "anything") == "anything"
    assert config_content(None, None) is None
    assert json.loads(config_content("a/b", "  ")) == {"model": "a/b"}


def test_registered_through_the_entry_point(tmp_path):
    from aegis_kernel.kernel import build_kernel

    (tmp_path / ".aegis.yaml").write_text("agents:\n  o:\n    provider: opencode\n")
    drivers = build_kernel(tmp_path).plugins.registry.objects("drivers")
    assert isinstance(drivers["opencode"], OpenCodeDriver) and drivers["opencode"].supports_resume


def test_plugin_and_driver_modules_do_not_import_trio():
    code = "import sys, aegis_opencode.plugin, aegis_opencode.driver; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
