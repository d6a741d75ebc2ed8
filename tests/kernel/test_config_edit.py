"""The config edit verbs: comments survive, the Quickstart works verbatim, every edit is locked,
re-read, attributed; concurrent writers never lose an edit."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aegis_kernel.cli import main
from aegis_kernel.config import load_config
from aegis_kernel.config_edit import ABSENT, ConfigConflict, apply_edit, read_key

COMMENTED = """\
# team config — hand-written
default_agent: helper   # who answers bare `aegis spawn`

agents:
  # the everyday agent
  helper:
    provider: scripted    # no account needed
    model: "quoted"
  # a second one
  critic: {provider: scripted, permission: read}

# plugins last, on purpose
plugins:
  disabled: []
"""


def aegis(project: Path, *args: str) -> int:
    return main(["-C", str(project), *args])


def edits(project: Path) -> list[dict]:
    ledger = project / ".aegis" / "state" / "config_edits.jsonl"
    return [json.loads(line) for line in ledger.read_text().splitlines()]


def test_edits_keep_every_comment_and_the_key_order_byte_for_byte(tmp_path, capsys):
    (tmp_path / ".aegis.yaml").write_text(COMMENTED)
    assert aegis(tmp_path, "config", "agent", "add", "reviewer", "--provider", "scripted", "--effort", "high") == 0
    assert aegis(tmp_path, "config", "set", "agents.helper.model", "other") == 0
    assert aegis(tmp_path, "config", "plugin-dir", "add", "plug") == 0
    assert (tmp_path / ".aegis.yaml").read_text() == """\
# team config — hand-written
default_agent: helper   # who answers bare `aegis spawn`

agents:
  # the everyday agent
  helper:
    provider: scripted    # no account needed
    model: "other"
  # a second one
  critic: {provider: scripted, permission: read}
  reviewer:
    provider: scripted
    effort: high

# plugins last, on purpose
plugins:
  disabled: []
  dirs:
    - plug
"""
    assert aegis(tmp_path, "config", "agent", "remove", "reviewer") == 0
    assert aegis(tmp_path, "config", "plugin-dir", "remove", "plug") == 0
    assert aegis(tmp_path, "config", "set", "agents.helper.model", "quoted") == 0
    assert (tmp_path / ".aegis.yaml").read_text() == COMMENTED  # every removal gave its lines back
    assert aegis(tmp_path, "config", "validate") == 0
    assert "added agents.reviewer" in capsys.readouterr().out


#: the product page's Quickstart, as printed there
QUICKSTART = """\
aegis config agent add main --provider claude-code \\
                            --model opus --effort high
"""


@pytest.mark.parametrize("provider", ["scripted", "claude-code"])
def test_the_quickstart_works_verbatim_in_an_empty_folder(tmp_path, provider):
    bin_dir = Path(sys.executable).parent  # the aegis script; no claude CLI installed on this PATH
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    script = QUICKSTART.replace("claude-code", provider)
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / ".aegis.yaml").read_text() == (
        f"agents:\n  main:\n    provider: {provider}\n    model: opus\n    effort: high\ndefault_agent: main\n")
    assert "default_agent: main (the first agent)" in run.stdout
    check = subprocess.run(["bash", "-c", "aegis config validate && aegis config agent list --json"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    listing = json.loads(check.stdout[check.stdout.index("{"):])
    assert listing == {"default_agent": "main",
                       "agents": {"main": {"provider": provider, "model": "opus", "effort": "high"}}}


def test_listings_read_without_creating_anything(tmp_path, capsys):
    assert aegis(tmp_path, "config", "agent", "list") == 0
    assert aegis(tmp_path, "config", "plugin-dir", "list", "--json") == 0
    assert capsys.readouterr().out.startswith("no agents (add one: aegis config agent add NAME")
    assert list(tmp_path.iterdir()) == []


def test_removing_an_agent_a_queue_uses_is_refused_naming_the_queue(tmp_path, capsys):
    (tmp_path / ".aegis.yaml").write_text("agents:\n  w:\n    provider: scripted\n")
    assert aegis(tmp_path, "config", "queue", "add", "tests", "--agent", "w", "--budget", "usd=1.5,window=1h") == 0
    before = (tmp_path / ".aegis.yaml").read_text()
    assert aegis(tmp_path, "config", "agent", "remove", "w") == 1
    assert "agent 'w' is used by queue 'tests'" in capsys.readouterr().err
    assert (tmp_path / ".aegis.yaml").read_text() == before
    assert aegis(tmp_path, "config", "queue", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "tests": {"agent": "w", "max_parallel": 1, "budgets": [{"usd": 1.5, "window": "1h"}]}}


def test_an_invalid_edit_is_refused_with_the_loaders_own_error_and_nothing_written(tmp_path, capsys):
    (tmp_path / ".aegis.yaml").write_text(COMMENTED)
    assert aegis(tmp_path, "config", "agent", "add", "x", "--provider", "nosuch") == 1
    err = capsys.readouterr().err
    assert "nothing was written" in err and "unknown provider 'nosuch'" in err and "@ agents.x.provider" in err
    assert aegis(tmp_path, "config", "set", "config_edits", "sometimes") == 1
    assert "expected one of 'allow', 'ask', 'deny' or mapping or null" in capsys.readouterr().err
    assert (tmp_path / ".aegis.yaml").read_text() == COMMENTED
    assert not (tmp_path / ".aegis" / "state" / "config_edits.jsonl").exists()


def test_every_edit_is_attributed_in_the_ledger(tmp_path):
    (tmp_path / ".aegis.yaml").write_text(COMMENTED)
    assert aegis(tmp_path, "config", "default-agent", "set", "critic") == 0
    assert aegis(tmp_path, "config", "default-agent", "set", "critic") == 0  # unchanged: not recorded
    assert aegis(tmp_path, "config", "unset", "agents.helper.model") == 0
    assert [(r["who"], r["op"], r["key"], r["before"], r["after"]) for r in edits(tmp_path)] == [
        ("user", "set", "default_agent", "helper", "critic"),
        ("user", "unset", "agents.helper.model", "quoted", None),
    ]


def test_an_edit_expecting_a_value_that_changed_by_hand_is_refused(tmp_path):
    path = tmp_path / ".aegis.yaml"
    path.write_text(COMMENTED)
    shown = read_key(path, ["agents", "helper"])  # what a panel showed
    path.write_text(COMMENTED.replace('model: "quoted"', "model: by-hand"))  # edited by hand meanwhile
    with pytest.raises(ConfigConflict, match="changed meanwhile"):
        apply_edit(path, ["agents", "helper"], {**shown, "effort": "low"}, validate=lambda p: None, who="user",
                   op="edit", expect=shown)
    assert "by-hand" in path.read_text() and "effort" not in path.read_text()
    with pytest.raises(ConfigConflict):
        apply_edit(path, ["agents", "critic"], {"provider": "x"}, validate=lambda p: None, who="user", op="add",
                   expect=ABSENT)
    edit = apply_edit(path, ["agents", "helper", "effort"], "low", validate=lambda p: None, who="user", op="set")
    assert edit.changed and "by-hand" in path.read_text()  # applied on top of the hand edit


WRITER = """
import sys
from pathlib import Path
from aegis_kernel.config import config_validator, set_key
from aegis_kernel.config_edit import apply_edit
from aegis_kernel.config_sections import schema_of
from aegis_kernel.plugins import load_plugins

path, n = Path(sys.argv[1]), sys.argv[2]
validate = config_validator(path, **schema_of(load_plugins(), path.parent))
print("ready", flush=True)
sys.stdin.readline()
for i in range(50):
    if n == "2":  # the plain edit helper, as the TUI's config panel uses it: locked too, not recorded
        set_key(path, ["agents", f"w{n}-{i}"], {"provider": "scripted"}, validate=validate)
    else:
        apply_edit(path, ["agents", f"w{n}-{i}"], {"provider": "scripted"}, validate=validate, who=f"proc{n}",
                   op="add_agent")
"""


def test_three_processes_times_fifty_concurrent_edits_all_land(tmp_path):
    path = tmp_path / ".aegis.yaml"
    path.write_text(textwrap.dedent(COMMENTED))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for n in range(3)]
    for proc in procs:  # all loaded, then all released at once
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    from aegis_kernel.config_sections import schema_of
    from aegis_kernel.plugins import load_plugins

    config = load_config(tmp_path, **schema_of(load_plugins(), tmp_path))
    agents = config.get("agents")
    assert {f"w{n}-{i}" for n in range(3) for i in range(50)} <= set(agents) and len(agents) == 152
    assert sorted({r["who"] for r in edits(tmp_path)}) == ["proc0", "proc1"] and len(edits(tmp_path)) == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == [".aegis", ".aegis.yaml"]  # no lock file left behind
    assert path.read_text().startswith(COMMENTED.split("  # a second one")[0])
