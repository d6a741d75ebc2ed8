"""Path confinement: a canvas file is a file inside the project, named relative to its root.

:func:`resolve` turns what a caller passed (relative to the project root, or absolute) into the file's
real path (every symlink resolved) and refuses, with a message naming the rule, anything whose real path
is outside the project root, inside Aegis's own ``.aegis/`` folder or ``.git/``, or is a folder. The check
is made again before every write (a symlink swapped after ``open`` is caught then).
"""

from __future__ import annotations

import os
from pathlib import Path

from attrs import frozen

PRIVATE = (".aegis", ".git")


class ConfinementError(ValueError):
    """A path a canvas may not use; the message says why and names the project root."""


@frozen
class CanvasPath:
    """A confined canvas file: ``real`` (absolute, symlinks resolved) and ``rel`` (POSIX, from the root)."""

    real: Path
    rel: str


def resolve(root: Path | str, file: str) -> CanvasPath:
    """The confined path of ``file`` (see the module docstring); raises :class:`ConfinementError`."""
    if not isinstance(file, str) or not file.strip():
        raise ConfinementError("a canvas file must be a non-empty path")
    if "\x00" in file or "\n" in file:
        raise ConfinementError("a canvas file path must not contain NUL or line breaks")
    real_root = Path(os.path.realpath(root))
    given = Path(file)
    candidate = given if given.is_absolute() else real_root / given
    real = Path(os.path.realpath(candidate))
    try:
        rel = real.relative_to(real_root)
    except ValueError:
        how = "through a symlink " if os.path.realpath(candidate) != os.path.abspath(candidate) else ""
        raise ConfinementError(f"'{file}' resolves {how}to {real}, outside the project root {real_root}; "
                               "a canvas file must be inside the project") from None
    if not rel.parts:
        raise ConfinementError(f"'{file}' is the project root itself, not a file")
    if rel.parts[0] in PRIVATE:
        raise ConfinementError(f"'{file}' is inside {rel.parts[0]}/, which a canvas may not use")
    if real.is_dir():
        raise ConfinementError(f"'{file}' is a folder, not a file")
    return CanvasPath(real, rel.as_posix())
