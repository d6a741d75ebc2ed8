"""Plugin folders (``plugins.dirs``): every ``*.py`` is a plugin, listed with its file; a broken one
fails with file:line and the rest keep working; a changed, new or deleted file is loaded again."""

from __future__ import annotations

import json
import os

from aegis_kernel.cli import main
from aegis_kernel.plugins import load_plugins

OP = """\
from aegis_kernel import hookimpl


async def run(ctx):
    return {TEXT!r}


@hookimpl
def aegis_register_operations(register):
    register({NAME!r}, run, "a folder plugin's operation")
"""


def write(folder, stem, name, text):
    path = folder / f"{stem}.py"
    path.write_text(OP.replace("{TEXT!r}", repr(text)).replace("{NAME!r}", repr(name)))
    return path


def test_each_module_is_a_plugin_and_a_syntax_error_names_file_and_line(tmp_path, capsys):
    plug = tmp_path / "plug"
    plug.mkdir()
    write(plug, "good", "aegis_good", "ok")
    (plug / "bad.py").write_text("x = 1\n\ndef f(:\n")
    (plug / "_private.py").write_text("raise SystemExit")  # not a plugin
    (tmp_path / ".aegis.yaml").write_text("plugins:\n  dirs: [plug]\n")
    assert main(["-C", str(tmp_path), "plugins", "list", "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["good"]["status"] == "enabled" and infos["good"]["file"] == str(plug / "good.py")
    assert infos["good"]["registered"] == {"operations": ["aegis_good"]}
    assert infos["bad"]["status"] == "failed" and infos["bad"]["error"].startswith(f"{plug / 'bad.py'}:3: SyntaxError")
    assert "_private" not in infos
    assert main(["-C", str(tmp_path), "plugins", "list"]) == 0
    assert f"failed: {plug / 'bad.py'}:3: SyntaxError" in capsys.readouterr().out


def test_a_changed_new_or_deleted_module_is_loaded_again(tmp_path):
    plug = tmp_path / "plug"
    plug.mkdir()
    first = write(plug, "one", "aegis_one", "v1")
    host = load_plugins(entry_points=False, dirs=[plug])
    assert host.reload_folders([plug]) == []  # nothing changed
    write(plug, "one", "aegis_one_renamed", "v2")
    os.utime(first, ns=(1, 1))  # a different stamp even within the filesystem's timestamp granularity
    write(plug, "two", "aegis_two", "x")
    assert host.reload_folders([plug]) == ["one", "two"]
    assert {"aegis_one_renamed", "aegis_two"} <= set(host.registry.objects("operations"))
    assert "aegis_one" not in host.registry.objects("operations")
    first.unlink()
    assert host.reload_folders([plug]) == ["one"]
    assert "one" not in host.infos and "aegis_one_renamed" not in host.registry.objects("operations")


def test_a_module_named_like_an_installed_plugin_fails_alone_and_is_not_reloaded_for_nothing(tmp_path):
    plug = tmp_path / "plug"
    plug.mkdir()
    write(plug, "builtin", "aegis_shadow", "x")  # the kernel's own plugin is called builtin
    host = load_plugins(entry_points=False, dirs=[plug])
    failed = host.infos["builtin@(folder)"]
    assert failed.status == "failed" and "already used" in failed.error and failed.file == str(plug / "builtin.py")
    assert host.infos["builtin"].status == "enabled" and "aegis_shadow" not in host.registry.objects("operations")
    assert host.reload_folders([plug]) == []

