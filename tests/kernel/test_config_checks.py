"""Semantic config checks (each section's ``check``) and dormant sections of disabled plugins,
through ``aegis config validate`` / ``aegis serve`` as a user runs them (in-process ``main``)."""

from __future__ import annotations

import textwrap

import pytest

from aegis_kernel.cli import main
from aegis_kernel.config import ConfigError, load_config
from aegis_kernel.config_sections import Section, check_safe_name, dormant_sections, is_safe_name


def run(project, *argv, capsys):
    code = main(["-C", str(project), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "proj"
    path.mkdir()
    return path


def write(project, text):
    (project / ".aegis.yaml").write_text(textwrap.dedent(text))


@pytest.mark.parametrize("text,expected", [
    ("""\
     agents:
       a:
         provider: nosuch
     """, ".aegis.yaml:3: unknown provider 'nosuch' (installed: acp, claude-code, gemini, opencode, scripted); "
          "is the driver plugin installed and enabled? @ agents.a.provider"),
    ("""\
     agents:
       a:
         provider: acp
         model: m
     """, ".aegis.yaml:2: agent 'a' uses provider 'acp' but has no command: set `command: [my-agent, --acp]` "
          "under agents.a in .aegis.yaml @ agents.a"),
    ("""\
     default_agent: ghost
     agents:
       a:
         provider: scripted
     """, ".aegis.yaml:1: unknown agent 'ghost' (configured: a) @ default_agent"),
])
def test_semantic_errors_fail_validate_with_file_line_and_key_path(project, capsys, text, expected):
    write(project, text)
    code, out, err = run(project, "config", "validate", capsys=capsys)
    assert code == 2 and out == ""
    assert expected in err.splitlines()


def test_serve_refuses_to_start_on_a_semantic_error(project, capsys):
    write(project, "default_agent: ghost\n")
    code, out, err = run(project, "serve", capsys=capsys)
    assert code == 2 and "unknown agent 'ghost' (configured: none) @ default_agent" in err
    assert "ready in" not in out
    assert not (project / ".aegis" / "state").exists()  # nothing started


def test_every_semantic_problem_is_reported_at_once(project, capsys):
    write(project, """\
        default_agent: ghost
        agents:
          a:
            provider: nosuch
          b:
            provider: acp
        """)
    code, _, err = run(project, "config", "validate", capsys=capsys)
    assert code == 2
    assert [line.split(": ", 1)[0] for line in err.splitlines()[1:]] == [
        ".aegis.yaml:1", ".aegis.yaml:4", ".aegis.yaml:5"]


def test_an_overlay_problem_names_the_overlay(project, capsys):
    write(project, "agents: {}\n")
    overlay = project / ".aegis" / "agents" / "rev.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("# a reviewer\nprovider: nosuch\n")
    code, _, err = run(project, "config", "validate", capsys=capsys)
    assert code == 2 and ".aegis/agents/rev.yaml:2: unknown provider 'nosuch'" in err


def test_a_valid_config_still_validates(project, capsys):
    write(project, """\
        default_agent: a
        agents:
          a:
            provider: scripted
          custom:
            provider: acp
            command: [my-agent, --acp]
        """)
    code, out, err = run(project, "config", "validate", capsys=capsys)
    assert (code, err) == (0, "") and out.startswith("ok: ")


# --- the check seam (load_config) --------------------------------------------------------------------


def test_checks_run_only_once_every_section_structured(project):
    calls = []

    def check(config):
        calls.append(config)
        yield ("word",), "never reached"

    write(project, "word: hi\nnumber: nope\n")
    with pytest.raises(ConfigError) as info:
        load_config(project, {"word": Section(str, check), "number": int})
    assert [str(p) for p in info.value.problems] == [".aegis.yaml:2: expected int, got str 'nope' @ number"]
    assert calls == []


def test_a_raising_check_is_a_warning_naming_the_section_not_an_error(project):
    def check(config):
        raise RuntimeError("plugin bug")

    write(project, "word: hi\n")
    config = load_config(project, {"word": Section(str, check)})
    assert config.get("word") == "hi"
    assert [str(w) for w in config.warnings] == [
        ".aegis.yaml:1: the check of section 'word' failed (a plugin bug): RuntimeError: plugin bug @ word"]


def test_provider_checks_need_the_drivers(project):
    write(project, "agents:\n  a:\n    provider: nosuch\n")
    from aegis_kernel.profiles import AgentProfile, check_agents

    load_config(project, {"agents": Section(dict[str, AgentProfile], check_agents)})  # no drivers: skipped
    with pytest.raises(ConfigError, match="unknown provider 'nosuch' \\(installed: none\\)"):
        load_config(project, {"agents": Section(dict[str, AgentProfile], check_agents)}, drivers={})


@pytest.mark.parametrize("name", ["../../evil", "a/b", ".hidden", "Up", "x" * 65, "", "a.b", "-a", 3])
def test_unsafe_names(name):
    assert not is_safe_name(name)
    assert "lowercase letters, digits" in check_safe_name(name, "queue")


@pytest.mark.parametrize("name", ["review", "r2-d2", "a_b", "x" * 64])
def test_safe_names(name):
    assert is_safe_name(name) and check_safe_name(name, "queue") is None


# --- dormant sections: a disabled plugin's section is kept -------------------------------------------


QUEUED = """\
    plugins:
      disabled: [queue]
    agents:
      a:
        provider: scripted
    queues:
      review:
        agent: a
    """


def test_a_disabled_plugins_section_is_kept_with_a_warning(project, capsys):
    write(project, QUEUED)
    code, out, err = run(project, "config", "validate", capsys=capsys)
    assert code == 0 and out.startswith("ok: ")
    assert err == ("warning: .aegis.yaml:6: section 'queues' belongs to plugin 'queue' (disabled): kept, "
                   "not applied while that plugin is not loaded @ queues\n")


def test_a_disabled_plugins_section_is_not_checked_or_applied(project, capsys):
    write(project, QUEUED.replace("agent: a", "agent: nobody\n        max_parallel: nope"))
    code, out, _ = run(project, "config", "show", "--json", capsys=capsys)
    assert code == 0 and '"queues"' not in out  # kept in the file, not a section of the running config


def test_a_section_no_installed_plugin_declares_is_still_an_error(project, capsys):
    write(project, QUEUED + "queus: {}\n")
    code, _, err = run(project, "config", "validate", capsys=capsys)
    assert code == 2 and ".aegis.yaml:9: unknown section 'queus'" in err


def test_dormant_sections_name_the_plugin_and_its_status():
    class Info:
        def __init__(self, name, module, dist, status):
            self.name, self.module, self.dist, self.status = name, module, dist, status

    declared = {"queues": ("aegis-queue", "aegis_queue.plugin"), "hello": ("aegis-hello", "aegis_hello.plugin"),
                "loaded": ("aegis-x", "aegis_x.plugin")}
    infos = [Info("queue", "aegis_queue.plugin", "aegis-queue", "disabled"),
             Info("x", "aegis_x.plugin", "aegis-x", "enabled")]
    dormant = dormant_sections(infos, ["loaded"], declared)
    # hello's plugin was never considered (entry points not loaded): its section stays unknown
    assert dormant == {"queues": "plugin 'queue' (disabled)"}


def test_every_plugin_declares_its_sections_statically():
    """The static declaration (``aegis.sections`` entry points) matches what each plugin registers."""
    from aegis_kernel.config_sections import declared_sections
    from aegis_kernel.plugins import load_plugins

    host = load_plugins()
    declared = declared_sections()
    for name, reg in host.registry["config_sections"].items():
        info = host.infos[reg.owner]
        if info.dist == "aegis-kernel":
            continue  # the kernel's own sections are always loaded
        assert declared.get(name) == (info.dist, info.module), f"{info.dist}: declare section {name!r}"


def test_an_uninstalled_plugins_recorded_section_is_kept_with_a_warning(project, capsys):
    record = project / ".aegis" / "state" / "config_sections.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"v": 1, "sections": {"telegram": {"plugin": "telegram", "dist": "aegis-telegram"}}}')
    write(project, "telegram:\n  chat: 42\ntelegramm: {}\n")
    code, _, err = run(project, "config", "validate", capsys=capsys)
    assert code == 2 and "unknown section 'telegramm'" in err  # a typo is still caught
    write(project, "telegram:\n  chat: 42\n")
    code, out, err = run(project, "config", "validate", capsys=capsys)
    assert code == 0 and out.startswith("ok: ")
    assert err == ("warning: .aegis.yaml:1: section 'telegram' belongs to plugin 'telegram' (not installed: "
                   "aegis-telegram declared it when Aegis last ran here): kept, not applied while that plugin is "
                   "not loaded @ telegram\n")


def test_a_damaged_record_only_forgets(project, capsys):
    record = project / ".aegis" / "state" / "config_sections.json"
    record.parent.mkdir(parents=True)
    record.write_text("{not json")
    write(project, "telegram: {}\n")
    code, _, err = run(project, "config", "validate", capsys=capsys)
    assert code == 2 and "unknown section 'telegram'" in err
