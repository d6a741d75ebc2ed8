"""docs/hooks.md documents every hookspec with its exact signature."""

import inspect
from pathlib import Path

import pytest

from aegis_kernel import hookspecs

DOCS = Path(__file__).parents[2] / "docs" / "hooks.md"
HOOKS = [(n, f) for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("aegis_")]


def test_there_are_hooks():
    assert len(HOOKS) >= 17


@pytest.mark.parametrize("name,fn", HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_documented_with_exact_signature(name, fn):
    signature = f"{name}({', '.join(inspect.signature(fn).parameters)})"
    assert f"`{signature}`" in DOCS.read_text(), f"add {signature} to docs/hooks.md"


@pytest.mark.parametrize("name,fn", HOOKS, ids=[n for n, _ in HOOKS])
def test_hookspec_has_a_contract(name, fn):
    assert fn.__doc__ and len(fn.__doc__.strip()) > 40
