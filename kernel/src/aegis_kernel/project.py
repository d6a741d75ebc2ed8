"""Finding the project: light (pathlib only) so every CLI verb can call it before heavy imports."""

from __future__ import annotations

from pathlib import Path

CONFIG_NAME = ".aegis.yaml"


def find_config(start: Path | str | None = None) -> Path | None:
    """The nearest ``.aegis.yaml`` in ``start`` (default: the cwd) or its ancestors, else None."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def resolve_project_dir(project_dir: Path | str | None) -> Path:
    """``project_dir`` if given, else the folder of the nearest ``.aegis.yaml``, else the cwd."""
    if project_dir is not None:
        return Path(project_dir).resolve()
    found = find_config(Path.cwd())
    return found.parent if found is not None else Path.cwd().resolve()


def plugins_disabled(project_dir: Path) -> tuple[str, ...]:
    """``plugins.disabled`` before plugins load; the YAML parser is imported only if it can matter."""
    candidates = [project_dir / CONFIG_NAME, *sorted((project_dir / ".aegis" / "plugins").glob("*.y*ml"))]
    for path in candidates:
        try:
            if "disabled" in path.read_text(errors="replace"):
                from .config import raw_plugins_disabled

                return raw_plugins_disabled(project_dir)
        except OSError:
            continue
    return ()
