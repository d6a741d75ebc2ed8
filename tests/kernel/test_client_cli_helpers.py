"""The CLI helpers of ``aegis_kernel.client`` every plugin's verbs share: the project a verb names,
one call on its Aegis (an operation may take a ``timeout`` of its own), ``--json`` vs the human form."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import trio

from aegis_kernel import CallContext, hookimpl, params
from aegis_kernel.client import NotRunning, call_from_cli, print_out, state_dir_of
from aegis_kernel.control import ControlServer
from aegis_kernel.testing import DriverPlugin, FakeDriver


async def echo(ctx: CallContext, timeout: float = 0.0, name: str = "") -> dict[str, Any]:
    return {"timeout": timeout, "name": name}


class Echo:
    @hookimpl
    def aegis_register_operations(self, register):
        register("aegis_echo_timeout", echo, "answers its parameters",
                 params(timeout={"type": "number", "default": 0.0}, name={"type": "string", "default": ""}))


def test_a_verb_names_its_project_with_project_else_the_folder_around(tmp_path, monkeypatch):
    (tmp_path / ".aegis.yaml").write_text("{}\n")
    assert state_dir_of(argparse.Namespace(project=str(tmp_path))) == tmp_path.resolve() / ".aegis" / "state"
    monkeypatch.chdir(tmp_path)
    assert state_dir_of(argparse.Namespace()).resolve() == tmp_path.resolve() / ".aegis" / "state"


def test_without_a_running_aegis_a_verb_gets_the_typed_error_with_the_way_out(tmp_path):
    with pytest.raises(NotRunning, match="aegis serve"):
        call_from_cli(argparse.Namespace(project=str(tmp_path)), "aegis_ping")


@pytest.fixture
def echo_plugin(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver()))
    register_plugin(Echo())


@pytest.mark.trio
async def test_an_operation_parameter_called_timeout_reaches_the_operation(echo_plugin, aegis_project, kernel):
    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)
    args = argparse.Namespace(project=str(aegis_project))
    out = await trio.to_thread.run_sync(
        lambda: call_from_cli(args, "aegis_echo_timeout", _timeout=60, timeout=5, name="g"))
    assert (out["timeout"], out["name"]) == (5, "g")


def test_json_prints_the_answer_as_is_else_the_human_form(capsys):
    data = {"text": "é ✓", "n": 1}
    assert print_out(argparse.Namespace(json=True), data, lambda d: print("human")) == 0
    assert json.loads(capsys.readouterr().out) == data
    print_out(argparse.Namespace(json=True), data, print)
    assert "é ✓" in capsys.readouterr().out  # non-ASCII text stays readable
    assert print_out(argparse.Namespace(json=False), data, lambda d: print(f"n={d['n']}")) == 0
    assert capsys.readouterr().out == "n=1\n"
    print_out(argparse.Namespace(), data, lambda d: print("no --json flag"))
    assert capsys.readouterr().out == "no --json flag\n"

