"""Live config: a running kernel applies valid edits of .aegis.yaml and overlays, refuses invalid ones."""

from __future__ import annotations

import logging

import pytest
import trio

from aegis_kernel import hookimpl
from aegis_kernel.testing import DriverPlugin, FakeDriver

BASE = """\
default_agent: fake
agents:
  fake:
    provider: fake
"""


class Observer:
    def __init__(self) -> None:
        self.calls: list[tuple[object, object]] = []

    @hookimpl
    def aegis_config_changed(self, config, old):  # a subset of the arguments is enough
        self.calls.append((config, old))


@pytest.fixture
def observer(write_config, register_plugin):
    write_config(BASE)
    register_plugin(DriverPlugin(FakeDriver()))
    return register_plugin(Observer())


async def until(predicate, what: str, timeout: float = 30):
    with trio.fail_after(timeout):  # generous: only a broken watcher ever waits this long
        while not predicate():
            await trio.sleep(0.02)


@pytest.mark.trio
async def test_a_new_agent_is_spawnable_without_restart(observer, kernel, write_config):
    old = kernel.config
    write_config(BASE + "  reviewer:\n    provider: fake\n    permission: read\n")
    await until(lambda: "reviewer" in kernel.config.get("agents"), "the edit applied")
    session = await kernel.sessions.spawn("reviewer", prompt="hi")
    await session.wait_for(lambda s: s.metrics.turns == 1)
    assert session.final_text == "fake reply to: hi"
    assert observer.calls == [(kernel.config, old)]
    assert kernel.config_error is None


@pytest.mark.trio
async def test_an_overlay_in_a_new_folder_is_picked_up(observer, kernel, write_overlay):
    write_overlay("agents", "critic", "provider: fake\n")
    await until(lambda: "critic" in kernel.config.get("agents"), "the overlay applied")
    assert kernel.config.overlays["agents.critic"].name == "critic.yaml"


@pytest.mark.trio
async def test_an_invalid_edit_keeps_the_last_good_config_and_says_where(observer, kernel, write_config, caplog):
    caplog.set_level(logging.ERROR, logger="aegis.config")
    good = kernel.config
    write_config(BASE + "  reviewer:\n    provider: fake\n    permission: admin\n")
    await until(lambda: kernel.config_error is not None, "the edit refused")
    message = ".aegis.yaml:7: permission must be one of read, write, full, auto, got 'admin' @ agents.reviewer.permission"
    assert str(kernel.config_error) == message
    assert kernel.config is good and observer.calls == []
    assert any(message in r.getMessage() and "keeping the last good config" in r.getMessage() for r in caplog.records)
    write_config(BASE + "  reviewer:\n    provider: nosuch\n")  # semantic errors are refused the same way
    await until(lambda: "nosuch" in str(kernel.config_error), "the second edit refused")
    assert kernel.config is good
    write_config(BASE + "  reviewer:\n    provider: fake\n")
    await until(lambda: "reviewer" in kernel.config.get("agents"), "the fixed edit applied")
    assert kernel.config_error is None and len(observer.calls) == 1


@pytest.mark.trio
async def test_the_edit_api_reload_tells_the_plugins_too(observer, kernel, write_config):
    from aegis_kernel.config import config_validator, set_key

    path = kernel.config.path
    set_key(path, ["agents", "helper"], {"provider": "fake"},
            validate=config_validator(path, kernel.plugins.registry.objects("config_sections")))
    kernel.reload_config()
    assert "helper" in kernel.config.get("agents")
    assert observer.calls and observer.calls[0][0] is kernel.config


@pytest.mark.trio
async def test_a_running_kernel_remembers_who_owns_each_section(observer, kernel, aegis_project):
    from aegis_kernel.config_sections import recorded_sections

    recorded = recorded_sections(aegis_project)
    assert recorded["queues"] == {"plugin": "queue", "dist": "aegis-queue"}
    assert "agents" not in recorded  # the kernel's own sections are always there


@pytest.mark.trio
async def test_edits_are_validated_with_the_running_kernels_rules(observer, kernel):
    from aegis_kernel import ConfigError, validator_for
    from aegis_kernel.config import set_key

    path = kernel.config.path
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"\.aegis\.yaml:\d+: unknown provider 'nosuch' .* @ agents\.x\.provider"):
        set_key(path, ["agents", "x"], {"provider": "nosuch"}, validate=validator_for(kernel, path))
    assert path.read_bytes() == before


def test_only_config_files_and_overlay_folders_count_as_config_changes(tmp_path):
    from aegis_kernel.config_watch import _relevant

    project = tmp_path
    (project / ".aegis" / "agents").mkdir(parents=True)
    (project / ".aegis" / "prices.json").write_text("{}")
    relevant = lambda *paths: _relevant(project, {(2, str(project / p)) for p in paths})  # noqa: E731
    assert relevant(".aegis.yaml") == (True, False)
    assert relevant(".aegis/agents/r.yaml", ".aegis/agents/r.yml") == (True, False)
    assert relevant(".aegis/agents") == (True, True)  # a section folder: watch it too
    assert relevant(".aegis/gone") == (True, True)  # a folder that went away
    assert relevant("README.md", ".aegis/prices.json", ".aegis/state", ".aegis/state/aegis.log",
                    ".aegis/worktrees/t1", ".aegis/agents/.r.yaml.swp", ".aegis/agents/notes.txt") == (False, False)
