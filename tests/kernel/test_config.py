"""aegis_kernel.config: discovery, overlays, strict structuring, error locations, the edit path."""

from __future__ import annotations

import os
import stat
import textwrap

import pytest
from attrs import field, frozen

from aegis_kernel.config import (
    ConfigError,
    config_validator,
    edit_config,
    find_config,
    load_config,
    raw_plugins_disabled,
    remove_key,
    set_key,
)
from aegis_kernel.profiles import AgentProfile, PluginsSection


@frozen
class Budget:
    usd: float = 0.0
    hard: bool = False


@frozen
class Queue:
    agent: str
    max_parallel: int = 1
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(factory=dict)
    budget: Budget | None = None
    note: str | None = None


SECTIONS = {
    "default_agent": str | None,
    "agents": dict[str, AgentProfile],
    "plugins": PluginsSection,
    "queues": dict[str, Queue],
    "budget": Budget,
}


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems(project, text=None):
    if text is not None:
        write(project / ".aegis.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(project, SECTIONS)
    return [str(p) for p in info.value.problems]


# --- discovery and loading ---------------------------------------------------------------------------


def test_find_config_walks_up(tmp_path):
    config = write(tmp_path / ".aegis.yaml", "agents: {}\n")
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_config(deep) == config.resolve()
    assert find_config(tmp_path) == config.resolve()
    (deep / "f.txt").write_text("")
    assert find_config(deep / "f.txt") == config.resolve()


def test_find_config_none(tmp_path):
    if any((folder / ".aegis.yaml").exists() for folder in tmp_path.parents):
        pytest.skip("a .aegis.yaml above the temp folder")
    assert find_config(tmp_path) is None


def test_find_config_defaults_to_cwd(tmp_path, monkeypatch):
    write(tmp_path / ".aegis.yaml", "{}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_config() == (tmp_path / ".aegis.yaml").resolve()


def test_load_structures_sections_and_overlays(tmp_path):
    write(tmp_path / ".aegis.yaml", """\
        default_agent: coder
        agents:
          coder:
            provider: claude-code
            command: [claude, --verbose]
            env: {BASE: "http://x"}
        queues:
          review: {agent: coder, max_parallel: 2, budget: {usd: 3}}
        """)
    write(tmp_path / ".aegis" / "agents" / "reviewer.yaml", "provider: gemini\npermission: read\n")
    write(tmp_path / ".aegis" / "state" / "junk.yaml", "not: [valid")  # not an overlay folder
    write(tmp_path / ".aegis" / "worktrees" / "x.yaml", "nope: 1\n")
    write(tmp_path / ".aegis" / "agents" / ".hidden.yaml", "{broken")
    write(tmp_path / ".aegis" / "agents" / "notes.txt", "ignored")
    config = load_config(tmp_path, SECTIONS)
    assert config.path == (tmp_path / ".aegis.yaml").resolve()
    assert config.project_dir == tmp_path.resolve()
    assert config.get("default_agent") == "coder"
    agents = config.get("agents")
    assert agents["coder"] == AgentProfile(provider="claude-code", command=("claude", "--verbose"),
                                           env={"BASE": "http://x"})
    assert agents["reviewer"] == AgentProfile(provider="gemini", permission="read")
    assert config.get("queues")["review"] == Queue(agent="coder", max_parallel=2, budget=Budget(usd=3.0))
    assert isinstance(config.get("queues")["review"].budget.usd, float)  # int accepted for float
    assert config.get("plugins") == PluginsSection()  # absent, all defaults
    assert config.get("budget") == Budget()
    assert config.raw["agents"]["reviewer"] == {"provider": "gemini", "permission": "read"}
    assert config.overlays == {"agents.reviewer": (tmp_path / ".aegis/agents/reviewer.yaml").resolve()}
    assert config.get("unknown", "d") == "d"


def test_missing_config_gives_defaults(tmp_path):
    config = load_config(tmp_path, SECTIONS)
    assert config.path is None
    assert config.sections == {"default_agent": None, "agents": {}, "plugins": PluginsSection(),
                               "queues": {}, "budget": Budget()}


def test_section_with_required_fields_absent_is_none(tmp_path):
    config = load_config(tmp_path, {"q": Queue, "word": str})
    assert config.sections == {"q": None, "word": None}


def test_load_from_config_file_path(tmp_path):
    path = write(tmp_path / ".aegis.yaml", "default_agent: x\n")
    assert load_config(path, SECTIONS).get("default_agent") == "x"


# --- errors ------------------------------------------------------------------------------------------


def test_overlay_collision_names_both_files(tmp_path):
    write(tmp_path / ".aegis.yaml", """\
        agents:
          coder:
            provider: x
          reviewer:
            provider: y
        """)
    write(tmp_path / ".aegis" / "agents" / "reviewer.yaml", "# the reviewer\nprovider: z\n")
    assert problems(tmp_path) == [
        ".aegis/agents/reviewer.yaml:2: agents.reviewer is defined twice: here and in .aegis.yaml:4"
        " @ agents.reviewer"]


def test_two_overlays_collide(tmp_path):
    write(tmp_path / ".aegis" / "queues" / "q.yaml", "agent: a\n")
    write(tmp_path / ".aegis" / "queues" / "q.yml", "agent: b\n")
    assert problems(tmp_path) == [
        ".aegis/queues/q.yml:1: queues.q is defined twice: here and in .aegis/queues/q.yaml:1 @ queues.q"]


@pytest.mark.parametrize(("text", "expected"), [
    ("budget:\n  hard: no\n", ".aegis.yaml:2: expected bool, got str 'no' @ budget.hard"),
    ("queues:\n  q:\n    agent: a\n    max_parallel: 2.7\n",
     ".aegis.yaml:4: expected int, got float 2.7 @ queues.q.max_parallel"),
    ("queues:\n  q:\n    agent: a\n    max_parallel: \"3\"\n",
     ".aegis.yaml:4: expected int, got str '3' @ queues.q.max_parallel"),
    ("queues:\n  q:\n    agent: a\n    max_parallel: true\n",
     ".aegis.yaml:4: expected int, got bool True @ queues.q.max_parallel"),
    ("budget: {}\nbogus: 1\n",
     ".aegis.yaml:2: unknown section 'bogus' (known: agents, budget, default_agent, plugins, queues);"
     " is the plugin that owns it installed and enabled?"),
    ("queues:\n  q:\n    agent: a\n    colour: red\n",
     ".aegis.yaml:4: unknown key 'colour' (known: agent, max_parallel, tags, labels, budget, note)"
     " @ queues.q.colour"),
    ("agents:\n  a:\n    provider:\n      - x\n      - y\n",
     ".aegis.yaml:3: expected str, got list @ agents.a.provider"),
    ("queues:\n  q:\n    agent: a\n    labels:\n      team: core\n      size: 3\n",
     ".aegis.yaml:6: expected str, got int 3 @ queues.q.labels.size"),
    ("agents:\n  a:\n    provider: x\n    permission: admin\n",
     ".aegis.yaml:4: permission must be one of read, write, full, auto, got 'admin' @ agents.a.permission"),
    ("agents:\n  a:\n    provider: x\n  b: [1\n",
     ".aegis.yaml:5: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"),
    ("queues:\n  q:\n    max_parallel: 1\n", ".aegis.yaml:2: missing required key 'agent' @ queues.q.agent"),
    ("queues:\n  q: {agent: a, tags: solo}\n", ".aegis.yaml:2: expected list, got str 'solo' @ queues.q.tags"),
    ("queues:\n  q:\n    agent: a\n    tags: [x, 2]\n",
     ".aegis.yaml:4: expected str, got int 2 @ queues.q.tags[1]"),
    ("queues:\n  q:\n    agent: a\n    budget: {usd: cheap}\n",
     ".aegis.yaml:4: expected float, got str 'cheap' @ queues.q.budget.usd"),
    ("default_agent: [a]\n", ".aegis.yaml:1: expected str or null, got list @ default_agent"),
    ("queues:\n  7: {agent: a}\n", ".aegis.yaml:2: invalid key: expected str, got int 7 @ queues[7]"),
    ("agents: 3\n", ".aegis.yaml:1: expected mapping, got int 3 @ agents"),
    ("a: 1\na: 2\n", ".aegis.yaml:2: invalid YAML: found duplicate key \"a\" with value \"2\""
                     " (original value: \"1\") (while constructing a mapping)"),
])
def test_bad_values_report_file_line_and_key_path(tmp_path, text, expected):
    assert problems(tmp_path, text) == [expected]


def test_null_is_accepted_for_optional_fields_only(tmp_path):
    write(tmp_path / ".aegis.yaml", "queues:\n  q:\n    agent: a\n    note: null\n    budget:\n")
    assert load_config(tmp_path, SECTIONS).get("queues")["q"] == Queue(agent="a")
    assert problems(tmp_path, "queues:\n  q:\n    agent:\n") == [
        ".aegis.yaml:3: expected str, got null @ queues.q.agent"]


def test_null_section_is_absent(tmp_path):
    write(tmp_path / ".aegis.yaml", "agents:\nplugins:\n")
    config = load_config(tmp_path, SECTIONS)
    assert config.get("agents") == {} and config.get("plugins") == PluginsSection()


def test_every_problem_in_every_file_is_collected(tmp_path):
    write(tmp_path / ".aegis.yaml", """\
        default_agent: 1
        agents:
          a:
            provider: x
            worktree: "yes"
            extra: 1
        nope: {}
        """)
    write(tmp_path / ".aegis" / "queues" / "q.yaml", "agent: a\nmax_parallel: many\n")
    write(tmp_path / ".aegis" / "budget" / "usd.yaml", "'ten'\n")
    assert problems(tmp_path) == [
        ".aegis.yaml:1: expected str or null, got int 1 @ default_agent",
        ".aegis.yaml:5: expected bool, got str 'yes' @ agents.a.worktree",
        ".aegis.yaml:6: unknown key 'extra' (known: provider, model, effort, permission, prompt, cwd, command,"
        " env, allow, deny, worktree, description) @ agents.a.extra",
        ".aegis.yaml:7: unknown section 'nope' (known: agents, budget, default_agent, plugins, queues);"
        " is the plugin that owns it installed and enabled?",
        ".aegis/budget/usd.yaml:1: expected float, got str 'ten' @ budget.usd",
        ".aegis/queues/q.yaml:2: expected int, got str 'many' @ queues.q.max_parallel",
    ]


def test_syntax_errors_in_several_files_are_collected(tmp_path):
    write(tmp_path / ".aegis.yaml", "agents:\n  a: {provider: x\n")
    write(tmp_path / ".aegis" / "agents" / "b.yaml", "provider: [\n")
    found = problems(tmp_path)
    assert [p.split(": invalid YAML")[0] for p in found] == [".aegis.yaml:3", ".aegis/agents/b.yaml:2"]


def test_problem_outside_project_shows_absolute_path(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(project, SECTIONS, substitute={project / ".aegis.yaml": write(tmp_path / "x.yaml", "x: 1\n")})
    assert str(info.value).startswith(".aegis.yaml:1: unknown section 'x'")  # shown under its real name


def test_raw_plugins_disabled(tmp_path):
    assert raw_plugins_disabled(tmp_path) == ()
    write(tmp_path / ".aegis.yaml", "plugins:\n  disabled: [hello, 3, tui]\nunknown: {}\n")
    assert raw_plugins_disabled(tmp_path) == ("hello", "tui")
    write(tmp_path / ".aegis.yaml", "plugins: [\n")
    assert raw_plugins_disabled(tmp_path) == ()
    write(tmp_path / ".aegis.yaml", "plugins: 3\n")
    assert raw_plugins_disabled(tmp_path) == ()


# --- the edit path -----------------------------------------------------------------------------------

ORIGINAL = """\
# Aegis project config
default_agent: coder   # used by `aegis spawn`

agents:
  # the main one
  coder:
    provider: 'claude-code'
    model: "opus"
    allow:
      - Read
      - Bash(git *)
queues: {}
"""


def validator(path):
    return config_validator(path, SECTIONS)


def test_edit_adds_agent_preserving_comments_quotes_order(tmp_path):
    path = write(tmp_path / ".aegis.yaml", ORIGINAL)
    changed = set_key(path, ["agents", "reviewer"], {"provider": "gemini", "permission": "read"},
                      validate=validator(path))
    assert changed is True
    assert path.read_text() == ORIGINAL.replace("queues: {}", """\
  reviewer:
    provider: gemini
    permission: read
queues: {}""")
    assert load_config(tmp_path, SECTIONS).get("agents")["reviewer"].permission == "read"


def test_noop_edit_leaves_bytes_identical(tmp_path):
    path = write(tmp_path / ".aegis.yaml", ORIGINAL + "odd:   {a:  1}\n")
    before = path.read_bytes()
    os.utime(path, ns=(1, 1))
    fail = pytest.fail  # validation must not even run
    assert edit_config(path, lambda doc: None, lambda p: fail("validated")) is False
    assert set_key(path, ["agents", "coder"], {"provider": "claude-code", "model": "opus",
                                              "allow": ["Read", "Bash(git *)"]},
                   validate=lambda p: fail("validated")) is False
    assert remove_key(path, ["agents", "nobody"], validate=lambda p: fail("validated")) is False
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == 1


def test_failed_validation_leaves_file_untouched(tmp_path):
    path = write(tmp_path / ".aegis.yaml", ORIGINAL)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        set_key(path, ["agents", "bad"], {"provider": "x", "permission": "admin"}, validate=validator(path))
    assert str(info.value) == (".aegis.yaml:14: permission must be one of read, write, full, auto, got 'admin'"
                               " @ agents.bad.permission")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".aegis.yaml"]  # no temp file left


def test_edit_keeps_file_mode(tmp_path):
    path = write(tmp_path / ".aegis.yaml", ORIGINAL)
    path.chmod(0o600)
    assert remove_key(path, ["queues"], validate=validator(path)) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "queues" not in path.read_text() and "# the main one" in path.read_text()


def test_edit_creates_a_new_config(tmp_path):
    path = tmp_path / ".aegis.yaml"
    assert set_key(path, ["queues", "review"], {"agent": "coder", "tags": ["a", "b"]},
                   validate=validator(path)) is True
    assert path.read_text() == "queues:\n  review:\n    agent: coder\n    tags:\n      - a\n      - b\n"
    assert load_config(tmp_path, SECTIONS).get("queues")["review"].tags == ("a", "b")


def test_edit_keeps_the_files_sequence_style(tmp_path):
    path = write(tmp_path / ".aegis.yaml", "plugins:\n  disabled:\n  - hello\n")
    set_key(path, ["default_agent"], "x", validate=validator(path))
    assert path.read_text() == "plugins:\n  disabled:\n  - hello\ndefault_agent: x\n"


def test_edit_overlay_validates_under_its_real_name(tmp_path):
    write(tmp_path / ".aegis.yaml", ORIGINAL)
    overlay = tmp_path / ".aegis" / "agents" / "reviewer.yaml"
    with pytest.raises(ConfigError) as info:
        set_key(overlay, ["worktree"], "no", validate=validator(overlay))
    assert str(info.value) == ".aegis/agents/reviewer.yaml:1: missing required key 'provider'" \
                              " @ agents.reviewer.provider\n" \
                              ".aegis/agents/reviewer.yaml:1: expected bool, got str 'no'" \
                              " @ agents.reviewer.worktree"
    assert not overlay.exists()
    assert set_key(overlay, ["provider"], "gemini", validate=validator(overlay)) is True
    assert load_config(tmp_path, SECTIONS).get("agents")["reviewer"].provider == "gemini"


def test_edit_of_invalid_yaml_reports_it(tmp_path):
    path = write(tmp_path / ".aegis.yaml", "agents: [\n")
    with pytest.raises(ConfigError, match=r"\.aegis\.yaml:2: invalid YAML"):
        set_key(path, ["default_agent"], "x", validate=validator(path))
