"""Plugin discovery, disable lists, broken plugins and duplicate registrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aegis_kernel import hookimpl
from aegis_kernel.plugins import load_plugins

WORKSPACE_PLUGINS = {"mcp": "aegis-mcp", "inbox": "aegis-inbox", "hello": "aegis-hello"}


def fake_site(tmp_path: Path, dist: str, module: str, source: str, entry: str | None = None) -> Path:
    """A folder importlib.metadata treats as an installed distribution with an aegis entry point."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    info = site / f"{dist.replace('-', '_')}-0.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3.1\n")
    (info / "entry_points.txt").write_text(f"[aegis]\n{entry or module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def run_aegis(*args: str, cwd: Path, extra_path: Path | None = None, env: dict | None = None):
    environ = {**os.environ, **(env or {})}
    if extra_path is not None:
        environ["PYTHONPATH"] = str(extra_path)
    return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=60)


def test_discovery_lists_workspace_plugins_with_their_distribution(tmp_path):
    host = load_plugins()
    for name, dist in WORKSPACE_PLUGINS.items():
        assert host.infos[name].dist == dist
        assert host.infos[name].status == "enabled"
    assert "aegis_register_operations" in host.infos["inbox"].hooks
    assert "aegis_handoff" in host.registry["operations"]
    assert host.registry["operations"]["aegis_handoff"].owner == "inbox"


def test_disable_by_env_blocks_plugin_before_import(monkeypatch):
    monkeypatch.setenv("AEGIS_DISABLE_PLUGINS", "inbox, hello")
    host = load_plugins()
    assert host.infos["inbox"].status == "disabled"
    assert host.infos["hello"].status == "disabled"
    assert "aegis_handoff" not in host.registry["operations"]
    assert "hello" not in host.registry["config_sections"]
    assert host.pm.is_blocked("inbox")


def test_disable_by_config_hides_its_hooks(aegis_project):
    (aegis_project / ".aegis.yaml").write_text("plugins:\n  disabled: [hello]\n")
    out = run_aegis("plugins", "list", "--json", cwd=aegis_project)
    assert out.returncode == 0, out.stderr
    infos = {i["name"]: i for i in json.loads(out.stdout)}
    assert infos["hello"]["status"] == "disabled"
    assert infos["hello"]["hooks"] == []
    assert "hello" not in run_aegis("--help", cwd=aegis_project).stdout.split("plugins list")[0]


def test_broken_plugin_is_recorded_and_the_rest_work(tmp_path, aegis_project):
    site = fake_site(tmp_path, "aegis-broken", "aegis_broken", "raise RuntimeError('boom at import')\n")
    out = run_aegis("plugins", "list", cwd=aegis_project, extra_path=site)
    assert out.returncode == 0, out.stderr
    assert "aegis_broken" in out.stdout
    assert "failed" in out.stdout and "RuntimeError: boom at import" in out.stdout
    assert "inbox" in out.stdout and "enabled" in out.stdout
    assert run_aegis("config", "validate", cwd=aegis_project, extra_path=site).returncode == 0


def test_plugin_whose_registration_raises_is_skipped_with_nothing_kept():
    class Half:
        @hookimpl
        def aegis_register_operations(self, register):
            register("aegis_half_ok", _noop, "kept only if the plugin succeeds")
            raise ValueError("cannot finish registering")

    host = load_plugins(extra=[("half", Half())])
    assert host.infos["half"].status == "failed"
    assert "cannot finish registering" in host.infos["half"].error
    assert "aegis_half_ok" not in host.registry["operations"]
    assert host.infos["inbox"].status == "enabled"


def test_unknown_hook_is_a_failed_plugin_not_a_crash():
    class Typo:
        @hookimpl
        def aegis_register_driverz(self, register):
            pass

    host = load_plugins(extra=[("typo", Typo())])
    assert host.infos["typo"].status == "failed"
    assert "aegis_register_driverz" in host.infos["typo"].error


async def _noop(ctx):
    return None


def test_duplicate_registration_is_refused_naming_both_owners():
    class Impostor:
        @hookimpl
        def aegis_register_operations(self, register):
            register("aegis_handoff", _noop, "a second handoff")

    host = load_plugins(extra=[("impostor", Impostor())])
    info = host.infos["impostor"]
    assert info.status == "failed"
    assert "'aegis_handoff' is already registered by plugin 'inbox' (aegis-inbox)" in info.error
    assert "impostor" in info.error
    assert host.registry["operations"]["aegis_handoff"].owner == "inbox"


@pytest.mark.parametrize("name", ["Bad Name", "handoff", "aegis-x", ""])
def test_invalid_operation_names_are_refused(name):
    class Bad:
        @hookimpl
        def aegis_register_operations(self, register):
            register(name, _noop, "x")

    host = load_plugins(extra=[("bad", Bad())])
    assert host.infos["bad"].status == "failed"
    assert "invalid operation name" in host.infos["bad"].error


def test_third_party_dist_outside_workspace_appears_and_works(tmp_path):
    """A dist installed into the same environment (not a workspace member): list, config, op, verb."""
    source = '''
        from attrs import frozen
        from aegis_kernel import hookimpl

        @frozen
        class Section:
            word: str = "hi"

        @hookimpl
        def aegis_register_config_sections(register):
            register("thirdparty", Section)

        async def op(ctx):
            return ctx.kernel.config.get("thirdparty").word

        @hookimpl
        def aegis_register_operations(register):
            register("aegis_thirdparty_word", op, "returns the configured word")

        def run(args):
            from aegis_kernel.kernel import build_kernel
            print("word:", build_kernel(args.project).config.get("thirdparty").word)
            return 0

        @hookimpl
        def aegis_register_cli(register):
            register("thirdparty", "print the word", None, run)
    '''
    site = fake_site(tmp_path, "aegis-thirdparty", "aegis_thirdparty", source, entry="thirdparty")
    project = tmp_path / "p"
    project.mkdir()
    (project / ".aegis.yaml").write_text("thirdparty:\n  word: bonjour\n")
    listing = run_aegis("plugins", "list", "--json", cwd=project, extra_path=site)
    info = {i["name"]: i for i in json.loads(listing.stdout)}["thirdparty"]
    assert (info["dist"], info["version"], info["status"]) == ("aegis-thirdparty", "0.3.1", "enabled")
    verb = run_aegis("thirdparty", cwd=project, extra_path=site)
    assert verb.stdout.strip() == "word: bonjour", verb.stderr
    (project / ".aegis.yaml").write_text("thirdparty:\n  word: 3\n")
    bad = run_aegis("config", "validate", cwd=project, extra_path=site)
    assert bad.returncode == 2
    assert ".aegis.yaml:2:" in bad.stderr and "thirdparty.word" in bad.stderr
