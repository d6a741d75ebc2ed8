"""The workflows a kernel knows: the plugins' (``registry["workflows"]``) and the project's files.

Project files are ``<project>/.aegis/workflows/*.py``; every function decorated with
``@workflow(name)`` at a file's top level is registered, its source being the file's path relative
to the project. The files are (re)loaded when :meth:`Catalog.refresh` sees their names or
modification times change (the runtime refreshes at start and before every lookup, so an edited
file is picked up without a restart). A file that fails to import is reported in
:attr:`Catalog.problems` with its error and the others still load; a name that a plugin or an
earlier file already registered is refused, the problem naming both places, and the first keeps it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import attrs

from .decorator import WorkflowDef, definition_of
from .errors import WorkflowError

log = logging.getLogger("aegis.workflow")

FOLDER = (".aegis", "workflows")


class Catalog:
    """Workflow name → :class:`WorkflowDef` for one kernel."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.folder = Path(kernel.project_dir).joinpath(*FOLDER)
        self.problems: list[str] = []
        self._files: dict[str, WorkflowDef] = {}
        self._stamp: tuple[tuple[str, int], ...] | None = None

    def plugins(self) -> dict[str, WorkflowDef]:
        out = {}
        for name, reg in self.kernel.plugins.registry["workflows"].items():
            out[name] = attrs.evolve(reg.obj, source=f"plugin {reg.owner}")
        return out

    def all(self) -> dict[str, WorkflowDef]:
        self.refresh()
        return {**self._files, **self.plugins()}

    def get(self, name: str) -> WorkflowDef:
        """The workflow ``name``, or :class:`WorkflowError` listing the known ones."""
        found = self.all().get(name)
        if found is None:
            known = ", ".join(sorted(self.all())) or "none"
            raise WorkflowError(f"unknown workflow '{name}' (registered: {known})")
        return found

    # --- project files ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the project's workflow files when they changed since the last look."""
        try:
            files = sorted(self.folder.glob("*.py")) if self.folder.is_dir() else []
            stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
        except OSError as exc:
            self.problems = [f"{self.folder}: {exc.strerror or exc}"]
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self._load(files)

    def _load(self, files: list[Path]) -> None:
        problems: list[str] = []
        found: dict[str, WorkflowDef] = {}
        plugins = self.plugins()
        for path in files:
            rel = _rel(path, Path(self.kernel.project_dir))
            try:
                module = _import(path)
            except Exception as exc:  # noqa: BLE001 - one broken file must not hide the others
                tb = traceback.extract_tb(exc.__traceback__)
                where = next((f"{rel}:{fr.lineno}" for fr in reversed(tb) if fr.filename == str(path)), rel)
                problems.append(f"{where}: cannot load workflows: {type(exc).__name__}: {exc}")
                continue
            for obj in vars(module).values():
                wf = definition_of(obj)
                if wf is None or getattr(obj, "__module__", None) != module.__name__:
                    continue
                if wf.name in plugins:
                    problems.append(f"{rel}: workflow '{wf.name}' is already registered by "
                                    f"{plugins[wf.name].source}; this one is refused")
                elif wf.name in found:
                    problems.append(f"{rel}: workflow '{wf.name}' is already registered by {found[wf.name].source}; "
                                    "this one is refused")
                else:
                    found[wf.name] = attrs.evolve(wf, source=rel)
        for problem in problems:
            log.error("%s", problem)
        self._files, self.problems = found, problems


def _import(path: Path) -> Any:
    """Import one project file under a private module name (a fresh module on every reload)."""
    name = f"aegis_project_workflows.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
