"""The `aegis` command as a user runs it: a real subprocess in a temp project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def aegis(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_version(tmp_path):
    out = aegis("--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("aegis 0.")


def test_plugins_list_table_and_json(aegis_project):
    table = aegis("plugins", "list", cwd=aegis_project)
    assert table.returncode == 0
    header = table.stdout.splitlines()[0].split()
    assert header == ["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS"]
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:] if line.strip()}
    assert "aegis-inbox" in rows["inbox"] and "enabled" in rows["inbox"]
    data = json.loads(aegis("plugins", "list", "--json", cwd=aegis_project).stdout)
    assert {"name", "dist", "version", "status", "error", "hooks"} <= set(data[0])


def test_config_show_json_is_the_validated_config(aegis_project):
    out = aegis("config", "show", "--json", cwd=aegis_project)
    data = json.loads(out.stdout)
    assert data["path"].endswith(".aegis.yaml")
    assert data["sections"]["default_agent"] == "helper"
    assert data["sections"]["agents"]["helper"]["provider"] == "scripted"
    assert data["sections"]["agents"]["helper"]["permission"] == "write"  # default filled


@pytest.mark.parametrize("yaml_text,expected", [
    ("agents:\n  a:\n    provider: scripted\n    permission: admin\n",
     ".aegis.yaml:4: permission must be one of read, write, full, auto, got 'admin' @ agents.a.permission"),
    ("agents:\n  a:\n    provider: scripted\n    worktree: \"no\"\n",
     ".aegis.yaml:4: expected bool, got str 'no' @ agents.a.worktree"),
    ("agents:\n  a:\n    provdier: scripted\n", "@ agents.a"),
    ("nosuchsection: 1\n", "unknown section 'nosuchsection'"),
    ("agents: [\n", ".aegis.yaml:"),
])
def test_bad_config_exits_2_with_file_line_and_no_traceback(aegis_project, yaml_text, expected):
    (aegis_project / ".aegis.yaml").write_text(yaml_text)
    for verb in (("config", "validate"), ("config", "show")):
        out = aegis(*verb, cwd=aegis_project)
        assert out.returncode == 2, out
        assert expected in out.stderr
        assert "Traceback" not in out.stderr


def test_config_found_by_walking_up(aegis_project):
    deep = aegis_project / "src" / "pkg"
    deep.mkdir(parents=True)
    out = aegis("config", "show", "--json", cwd=deep)
    assert json.loads(out.stdout)["path"] == str(aegis_project / ".aegis.yaml")


def test_doctor_reports_each_check(aegis_project):
    out = aegis("doctor", cwd=aegis_project, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout
    assert "✓ python 3." in out.stdout
    assert "✓ config:" in out.stdout and "✓ state dir writable" in out.stdout
    assert "claude: not on PATH" in out.stdout


def test_doctor_fails_on_bad_config(aegis_project):
    (aegis_project / ".aegis.yaml").write_text("agents: 3\n")
    out = aegis("doctor", cwd=aegis_project)
    assert out.returncode == 1 and "✗ config:" in out.stdout


def test_example_plugin_verb_and_section(aegis_project):
    (aegis_project / ".aegis.yaml").write_text("hello:\n  greeting: Ahoy\n  shout: true\n")
    out = aegis("hello", "crew", cwd=aegis_project)
    assert out.stdout.strip() == "AHOY, CREW!"


def test_overlay_collision_is_reported_with_both_files(aegis_project):
    (aegis_project / ".aegis.yaml").write_text("agents:\n  rev:\n    provider: scripted\n")
    overlay = aegis_project / ".aegis" / "agents"
    overlay.mkdir(parents=True)
    (overlay / "rev.yaml").write_text("provider: scripted\n")
    out = aegis("config", "validate", cwd=aegis_project)
    assert out.returncode == 2
    assert ".aegis.yaml" in out.stderr and ".aegis/agents/rev.yaml" in out.stderr
