"""docs/hooks.md documents every installed hookspec (the kernel's and the plugins') with its exact
signature under its owner, and every hookspec is a full contract."""

import re
from pathlib import Path

import pytest

from aegis_kernel.plugins import load_plugins

DOCS = Path(__file__).parents[2] / "docs" / "hooks.md"
HOST = load_plugins()
HOOKS = sorted((name, caller.spec) for name, caller in vars(HOST.pm.hook).items()
               if getattr(caller, "spec", None) is not None and name.startswith("aegis_"))


def test_there_are_hooks():
    assert len(HOOKS) >= 15
    assert {"aegis_add_hookspecs", "aegis_register_panels", "aegis_config_changed"} <= {n for n, _ in HOOKS}


@pytest.mark.parametrize("name,spec", HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_documented_with_exact_signature_under_its_owner(name, spec):
    text = DOCS.read_text()
    signature = f"`{name}({', '.join(spec.argnames)})`"
    assert signature in text, f"run contrib/tools/gen_hooks_doc.py: {signature} is missing from docs/hooks.md"
    owner = HOST.spec_owners[name]
    section = text.split(f"\n## {owner}\n", 1)[1].split("\n## ", 1)[0]
    assert signature in section, f"{name} is not under its owner {owner}"


@pytest.mark.parametrize("name,spec", HOOKS, ids=[n for n, _ in HOOKS])
def test_hookspec_is_a_contract(name, spec):
    doc = spec.function.__doc__ or ""
    for arg in spec.argnames:
        assert f":param {arg}:" in doc, f"{name} does not document its parameter {arg}"
    for word in ("When:", "Raises:"):
        assert word in doc, f"{name} does not say {word!r}"
    assert re.search(r"Results?:|Chained", doc), f"{name} does not say whether results are collected or chained"


@pytest.mark.parametrize("name,spec", HOOKS, ids=[n for n, _ in HOOKS])
def test_register_callbacks_are_typed(name, spec):
    if "register" in spec.argnames:
        annotation = spec.function.__annotations__["register"]
        assert annotation not in ("Any", "typing.Any"), f"{name}'s register is untyped"
