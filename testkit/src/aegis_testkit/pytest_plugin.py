"""The Aegis pytest plugin for plugin authors (entry point ``pytest11: aegis`` of ``aegis-testkit``).

pytest loads it only where ``aegis-testkit`` is installed; the kernel wheel has no pytest plugin.

Fixtures:
- ``aegis_project``: a temp project folder with a ``.aegis.yaml`` using the scripted agent
  (:data:`DEFAULT_CONFIG`).
- ``write_config(text, path=".aegis.yaml")`` / ``write_overlay(section, name, text)``: write config files
  (text is dedented); return the path written.
- ``register_plugin(obj, name=None)``: add a plugin object (module or instance with ``@hookimpl``
  methods) to the kernels built in this test only.
- ``kernel``: a running kernel (trio) on ``aegis_project`` with every installed plugin + registered ones.
- ``make_kernel``: ``async with make_kernel(**build) as kernel`` for tests that need several.
- ``fake_model``: the fake model server (:mod:`aegis_testkit.fakemodel`) on 127.0.0.1, ``.url``.

The in-memory driver for unit tests of one layer is :class:`aegis_kernel.testing.FakeDriver`.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

DEFAULT_CONFIG = """\
# test project
default_agent: helper
agents:
  helper:
    provider: scripted
  other:
    provider: scripted
"""


@pytest.fixture
def aegis_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(DEFAULT_CONFIG)
    return project


@pytest.fixture
def write_config(aegis_project: Path) -> Callable[..., Path]:
    def write(text: str, path: str = ".aegis.yaml") -> Path:
        target = aegis_project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    return write


@pytest.fixture
def write_overlay(write_config: Callable[..., Path]) -> Callable[..., Path]:
    def write(section: str, name: str, text: str) -> Path:
        return write_config(text, f".aegis/{section}/{name}.yaml")

    return write


@pytest.fixture
def fake_model() -> Iterator[Any]:
    """The fake model server (Anthropic, Gemini, OpenAI wire formats) on 127.0.0.1, for this test."""
    from .fakemodel import FakeModelServer

    with FakeModelServer() as server:
        yield server


@pytest.fixture
def aegis_plugins() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def register_plugin(aegis_plugins: list[tuple[str, Any]]) -> Callable[..., Any]:
    def register(obj: Any, name: str | None = None) -> Any:
        aegis_plugins.append((name or f"test-{len(aegis_plugins)}-{type(obj).__name__.lower()}", obj))
        return obj

    return register


@pytest.fixture
def make_kernel(aegis_project: Path, aegis_plugins: list[tuple[str, Any]]) -> Callable[..., Any]:
    from aegis_kernel import open_kernel

    @asynccontextmanager
    async def make(project: Path | None = None, **build: Any) -> AsyncIterator[Any]:
        build.setdefault("extra_plugins", list(aegis_plugins))
        async with open_kernel(project or aegis_project, **build) as kernel:
            yield kernel

    return make


@pytest.fixture
async def kernel(make_kernel: Callable[..., Any]) -> AsyncIterator[Any]:
    async with make_kernel() as k:
        yield k
