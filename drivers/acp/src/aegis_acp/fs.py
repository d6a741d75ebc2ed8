"""The client's file-system methods (``fs/read_text_file``, ``fs/write_text_file``), confined to the
session's working directory.

Every path is resolved (symlinks followed) and must lie inside the resolved cwd; anything else is
refused with a JSON-RPC error. A read returns at most :data:`READ_MAX_CHARS` characters (a bigger
file, or slice of one, is refused rather than loaded whole). These functions block: run them in a
worker thread.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, RESOURCE_NOT_FOUND

READ_MAX_CHARS = 32 * 1024 * 1024  # one fs/read_text_file answer (the reply is one frame for the agent)


class FsError(Exception):
    """A refusal or failure, carrying the JSON-RPC error code to answer with."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def confine(root: Path, path: str) -> Path:
    """``path`` resolved, if it lies inside ``root`` (relative paths are taken from ``root``)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise FsError(INVALID_PARAMS, "path must be a non-empty string")
    base = Path(os.path.realpath(root))
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = base / candidate
    resolved = Path(os.path.realpath(candidate))
    if resolved != base and base not in resolved.parents:
        raise FsError(INVALID_PARAMS, f"refused: {path} is outside the session directory {base}")
    return resolved


def locate(root: Path, path: str, private: Path | None = None) -> tuple[Path, str]:
    """:func:`confine`, and the resolved path relative to the resolved ``root`` (what a person is asked about).

    A path inside ``private`` (Aegis's state folder: other agents' MCP configs, transcripts, inboxes,
    ledgers), reached directly or through a link, is refused whatever the agent's permission."""
    target = confine(root, path)
    if private is not None:
        state = Path(os.path.realpath(private))
        if target == state or state in target.parents:
            raise FsError(INVALID_PARAMS, f"refused: {path} is inside Aegis's private state {state}")
    return target, os.path.relpath(target, os.path.realpath(root))


def read_text(root: Path, path: str, line: int | None = None, limit: int | None = None) -> str:
    """The text of a file inside ``root``; ``line`` is 1-based, ``limit`` a number of lines."""
    target = confine(root, path)
    too_big = FsError(INVALID_PARAMS, f"refused: reading {path} would return more than {READ_MAX_CHARS} "
                                      "characters; ask for fewer lines (line, limit)")
    try:
        with open(target, encoding="utf-8", errors="replace", newline="") as fh:
            if not line and not limit:
                content = fh.read(READ_MAX_CHARS + 1)
                if len(content) > READ_MAX_CHARS:
                    raise too_big
                return content
            start = max(int(line or 1), 1) - 1
            out: list[str] = []
            size = 0
            for i, text in enumerate(fh):
                if i < start:
                    continue
                if limit is not None and len(out) >= int(limit):
                    break
                size += len(text)
                if size > READ_MAX_CHARS:
                    raise too_big
                out.append(text)
            return "".join(out)
    except FileNotFoundError:
        raise FsError(RESOURCE_NOT_FOUND, f"file not found: {path}") from None
    except IsADirectoryError:
        raise FsError(INVALID_PARAMS, f"not a file: {path}") from None
    except OSError as exc:
        raise FsError(INTERNAL_ERROR, f"cannot read {path}: {exc.strerror or exc}") from None


def write_text(root: Path, path: str, content: str) -> None:
    """Atomically write ``content`` to a file inside ``root`` (parent folders are created)."""
    if not isinstance(content, str):
        raise FsError(INVALID_PARAMS, "content must be a string")
    target = confine(root, path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o7777 if target.exists() else None
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(content)
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except IsADirectoryError:
        raise FsError(INVALID_PARAMS, f"not a file: {path}") from None
    except OSError as exc:
        raise FsError(INTERNAL_ERROR, f"cannot write {path}: {exc.strerror or exc}") from None
