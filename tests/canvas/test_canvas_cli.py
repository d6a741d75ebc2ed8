"""``aegis canvas list|show|read|write|log`` (and ``--json``) against a real ``aegis serve``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")

from canvas_testkit import Serve, reap_orphans  # noqa: E402

pytestmark = pytest.mark.e2e


def aegis(project, *args, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=project, input=stdin,
                         capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"aegis {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text("default_agent: helper\nagents:\n  helper:\n    provider: scripted\n")
    yield project
    reap_orphans(project / ".aegis" / "state")


def test_the_canvas_verbs_are_thin_clients_of_the_operations(project):
    out = aegis(project, "canvas", "list", check=False)
    assert out.returncode == 1 and "no running Aegis" in out.stderr
    serve = Serve(project)
    serve.start()
    try:
        serve.call("aegis_canvas_open", name="plan", file="docs/plan.md")
        assert "no canvases" not in aegis(project, "canvas", "list").stdout
        listed = json.loads(aegis(project, "canvas", "list", "--json").stdout)
        assert [(c["canvas"], c["file"], c["version"]) for c in listed["canvases"]] == [("plan", "docs/plan.md", 0)]

        written = json.loads(aegis(project, "canvas", "write", "plan", "goals", "--json", stdin="ship it\nsoon\n").stdout)
        assert (written["version"], written["added"], written["removed"]) == (1, 2, 0)
        assert aegis(project, "canvas", "write", "plan", "goals", stdin="ship it\n").stdout.strip() == \
            'plan · section "goals" · version 2 (+0 / -1 lines)'
        assert (project / "docs/plan.md").read_text() == "## goals\nship it\n"
        assert aegis(project, "canvas", "read", "plan", "goals").stdout == "ship it\n"
        assert aegis(project, "canvas", "read", "plan").stdout == "## goals\nship it\n"

        stale = aegis(project, "canvas", "write", "plan", "goals", "--if-version", "0", stdin="x", check=False)
        assert stale.returncode == 1 and "conflict" in stale.stderr and "+ship it" in stale.stderr

        show = aegis(project, "canvas", "show", "plan").stdout
        assert "version 2" in show and "## goals" in show and "last written by user" in show
        assert json.loads(aegis(project, "canvas", "show", "plan", "--json").stdout)["last"]["goals"]["writer"] == "user"
        log = json.loads(aegis(project, "canvas", "log", "plan", "--json").stdout)
        assert [(w["writer"], w["section"], w["added"], w["removed"], w["version"]) for w in log["writes"]] == [
            ("user", "goals", 2, 0, 1), ("user", "goals", 0, 1, 2)]
        assert "+0 / -1" in aegis(project, "canvas", "log", "plan").stdout

        missing = aegis(project, "canvas", "read", "nope", check=False)
        assert missing.returncode == 1 and "no canvas 'nope'" in missing.stderr
    finally:
        serve.stop()
