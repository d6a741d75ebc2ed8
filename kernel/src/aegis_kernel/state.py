"""Durable state under ``<project>/.aegis/state/``: JSONL ledgers and atomic JSON snapshots.

Layout (ARCHITECTURE §5): ``sessions/<log_id>.jsonl``, ``inboxes/<handle>.jsonl``, ``queues/<q>.jsonl``,
``schedules.snapshot.json``, ``workspace.json``, … Every JSONL record carries ``"v": 1``.

Contracts:

- :class:`Ledger` appends one whole line per record with a single ``os.write`` on an ``O_APPEND`` fd,
  so a crash leaves at most a torn *last* line; a failed write (disk full) is cut off again and
  raised as :class:`LedgerWriteError`. :meth:`Ledger.replay` parses line by line, skips and reports
  torn or corrupt lines (a torn line costs only itself, even with a record glued to it) and never
  raises on bad content.
- :func:`write_bytes_atomic` / :func:`write_text_atomic` / :func:`write_json_atomic` replace a file
  atomically (temp file in the same folder, fsync, ``os.replace``, fsync of the folder) and keep the
  replaced file's permission bits. Readers see the old or the new content, never a mix.
- Owner-only: :class:`StateDir` creates its folders 0700, ledgers are created 0600, an atomic file new in
  an owner-only folder is created 0600, and :func:`secure_tree` (run by the kernel at start) fixes the
  modes of what an older version or another tool left readable (other users learn nothing: transcripts,
  inboxes and logs quote what agents and people said).

Single trio thread: nothing here is thread-safe, and nothing here imports trio.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from attrs import field, frozen

__all__ = [
    "LEDGER_VERSION",
    "Ledger",
    "LedgerWriteError",
    "Problem",
    "ReplayResult",
    "StateDir",
    "StateError",
    "read_json",
    "secure_tree",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

_encode_line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one, not one per append
_SURROGATES = re.compile("[\ud800-\udfff]")  # what UTF-8 cannot hold; a ledger never raises on it

LEDGER_VERSION = 1
FsyncPolicy = Literal["always", "batch", "never"]
FSYNC_POLICIES: tuple[str, ...] = ("always", "batch", "never")
BATCH_INTERVAL = 1.0  # seconds between fsyncs under the "batch" policy
EXCERPT_CHARS = 80


class StateError(Exception):
    """A state file cannot be read or written; the message names the file."""


class LedgerWriteError(StateError, OSError):
    """An append failed (disk full, quota, I/O error): the record was **not** written and must not be
    acknowledged. The ledger is left appendable. Also an ``OSError`` (``errno`` is the cause's)."""

    @classmethod
    def of(cls, path: Path, exc: OSError) -> LedgerWriteError:
        what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "I/O error"
        err = cls(f"{what} writing {path}: {exc.strerror or exc}")
        err.errno = exc.errno
        return err


# --- layout ------------------------------------------------------------------------------------------


class StateDir:
    """The ``.aegis/state/`` folder of one project.

    ``StateDir(root)`` takes the state folder itself (``<project>/.aegis/state``); use
    :meth:`for_project` to derive it from a project folder. Nothing is created until asked:
    :meth:`path` creates the parents of the returned path, :meth:`ensure` the root.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._made: set[Path] = set()  # folders path() already created (a mkdir per call costs)
        self._owned = False  # ensure() checked the root and its parent are ours
        self._writer: Any = None

    @classmethod
    def for_project(cls, project_dir: Path | str) -> StateDir:
        return cls(Path(project_dir) / ".aegis" / "state")

    def ensure(self) -> Path:
        """Create the root folder (and its parents; the root itself 0700) if missing; return it.

        The root and its parent (``.aegis``) must belong to us: one another user created first (in a
        project they can write to) raises :class:`StateError` naming it — nothing is written there."""
        if not self.root.is_dir():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir(mode=0o700, exist_ok=True)
        if not self._owned:
            for folder in (self.root.parent, self.root):
                uid = folder.stat().st_uid
                if uid != os.geteuid():
                    raise StateError(f"refusing the state folder {folder}: it belongs to uid {uid}, not to you "
                                     f"(uid {os.geteuid()}); another user may read and rearrange what Aegis "
                                     "keeps there — remove it, or use a project folder only you can write to")
            self._owned = True
        return self.root

    def path(self, *parts: str) -> Path:
        """``root/part/...``, creating its parent folders. Parts may not escape the root."""
        for part in parts:
            if os.path.isabs(part) or ".." in part.split(os.sep):
                raise ValueError(f"state path part {part!r} escapes {self.root}")
        result = self.root.joinpath(*parts)
        if result.parent not in self._made:
            folder = self.ensure()
            for part in result.parent.relative_to(self.root).parts:  # each new level owner-only
                folder = folder / part
                folder.mkdir(mode=0o700, exist_ok=True)
            self._made.add(result.parent)
        return result

    @property
    def writer(self) -> Any:
        """This state folder's :class:`~aegis_kernel.writer.StateWriter`: one thread (started on its
        first job) for the blocking half of durable writes. The kernel closes it when it stops."""
        if self._writer is None:
            from .writer import StateWriter

            self._writer = StateWriter()
        return self._writer

    def __repr__(self) -> str:
        return f"StateDir({str(self.root)!r})"


# --- JSONL ledger ------------------------------------------------------------------------------------


@frozen
class Problem:
    """One line :meth:`Ledger.replay` skipped: 1-based ``line_no``, why, and the line's start."""

    line_no: int
    reason: str
    text_excerpt: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}: {self.text_excerpt!r}"


@frozen
class ReplayResult:
    """The valid records of a ledger, the problems met, and ``line_nos[i]``: the 1-based line of
    ``records[i]`` (for warnings naming ``file:line``; empty when the records were not read from a file)."""

    records: list[dict[str, Any]] = field(factory=list)
    problems: list[Problem] = field(factory=list)
    line_nos: list[int] = field(factory=list)


class Ledger:
    """An append-only JSONL file; every record is written as ``{"v": 1, **record}`` on one line.

    The file is opened on the first :meth:`append` (``O_APPEND``, created with mode 0o600: owner
    only) and kept open until :meth:`close`. If the file's last byte is not a newline (a previous
    writer died mid-line), the first append starts with a newline so the new record is a whole line
    (replay then reports the torn line as corrupt and keeps the new record).

    ``fsync``: ``"always"`` (default) fsyncs after every append; ``"batch"`` at most once per
    :data:`BATCH_INTERVAL` seconds from :meth:`append`, and on :meth:`sync` / :meth:`close`;
    ``"never"`` leaves it to the OS (except an explicit :meth:`sync`).

    ``writer`` (a kernel's :class:`~aegis_kernel.writer.StateWriter`): the policy's fsyncs, and the
    final one at :meth:`close`, run on the writer thread instead of the caller's (the line itself is
    still written before :meth:`append` returns, so a killed process loses nothing); :meth:`durable`
    gives the ticket to await for "on disk".
    """

    def __init__(self, path: Path | str, fsync: FsyncPolicy = "always", *, writer: Any = None) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.path = Path(path)
        self.fsync: FsyncPolicy = fsync
        self._fd: int | None = None
        self._needs_newline = False
        self._dirty = False
        self._last_sync = 0.0
        self._writer = writer
        self._ticket: Any = None  # the writer's ticket for the latest fsync handed over

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        size = os.fstat(fd).st_size
        self._needs_newline = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        self._fd = fd
        self._last_sync = time.monotonic()  # "batch": the first interval starts at open
        return fd

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` (JSON-serialisable; ``"v"`` if present must be 1) as one line.

        Text UTF-8 cannot hold (lone surrogates) is written as U+FFFD, never raised.
        Serialisation errors (``TypeError``/``ValueError``) are raised before anything is written. A
        write that fails (disk full…) raises :class:`LedgerWriteError` ("disk full writing <file>: …")
        after cutting off what it wrote: the record is not in the ledger, must not be acknowledged, and
        the ledger stays appendable (the next append is a whole line of its own).
        """
        if "v" in record and (type(record["v"]) is not int or record["v"] != LEDGER_VERSION):
            raise ValueError(f"ledger records are version {LEDGER_VERSION}, got v={record['v']!r}")
        line = _encode_line({"v": LEDGER_VERSION, **record})
        try:
            data = line.encode("utf-8") + b"\n"
        except UnicodeEncodeError:  # lone surrogates (valid JSON escapes, undecodable argv bytes): U+FFFD
            data = _SURROGATES.sub("\ufffd", line).encode("utf-8") + b"\n"
        fd = self._fd if self._fd is not None else self._open()
        if self._needs_newline:
            data = b"\n" + data
        view, written = memoryview(data), 0
        try:
            while view:  # one write in practice; a short write is finished, not duplicated
                n = os.write(fd, view)
                written += n
                view = view[n:]
        except OSError as exc:
            self._undo_partial(fd, written)
            raise LedgerWriteError.of(self.path, exc) from exc
        self._needs_newline = False
        self._dirty = True
        if self.fsync == "always" or (self.fsync == "batch" and time.monotonic() - self._last_sync >= BATCH_INTERVAL):
            if self._writer is None:
                self.sync()
            else:
                self._sync_on_writer(fd)

    def _undo_partial(self, fd: int, written: int) -> None:
        """A failed append wrote ``written`` bytes of its line: cut them off again, so the ledger ends
        where the last good record ended. If that fails too, the next append starts on a fresh line
        (replay then skips only the torn bytes)."""
        if not written:
            return
        try:
            os.ftruncate(fd, os.fstat(fd).st_size - written)
        except OSError:
            self._needs_newline = True

    def _sync_on_writer(self, fd: int, *, close: bool = False) -> None:
        """Hand the fsync of what is written so far to the writer thread (on a duplicate of ``fd``, so
        closing ours never races it); ``close``: then close ``fd`` here."""
        self._dirty = False
        self._last_sync = time.monotonic()
        key = (self, "fsync")
        # an fsync still waiting to run covers this write too: no second one (and no duplicate fd)
        self._ticket = self._writer.waiting(key) or self._writer.submit(_fsync_closing(os.dup(fd)), key=key)
        if close:
            os.close(fd)

    def durable(self) -> Any:
        """With a writer: a ticket (``await ticket.wait()``) done once every record appended so far is
        on disk (it fsyncs now if the policy has not yet). Without one: None, after an inline
        :meth:`sync`."""
        if self._writer is None:
            self.sync()
            return None
        if self._fd is not None and self._dirty:
            self._sync_on_writer(self._fd)
        return self._ticket if self._ticket is not None else self._writer.flush()

    def sync(self) -> None:
        """fsync pending appends now (any policy)."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
            self._last_sync = time.monotonic()

    def close(self) -> None:
        """Flush per policy (``batch`` syncs here) and close the fd. Idempotent; append reopens."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if self._writer is not None and self.fsync != "never" and self._dirty:
            self._sync_on_writer(fd, close=True)
            return
        try:
            if self.fsync != "never" and self._dirty:
                os.fsync(fd)
                self._dirty = False
        finally:
            os.close(fd)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)  # type: ignore[arg-type]
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, fsync={self.fsync!r})"

    @staticmethod
    def replay(path: Path | str) -> ReplayResult:
        """Read every valid record of ``path``; skip and report the rest.

        A record is a line holding a JSON object with ``"v": 1``. Skipped (each reported as a
        :class:`Problem`): a torn last line (no trailing newline and not a valid record), bad UTF-8,
        bad JSON, a non-object, a missing or other ``"v"``. Blank lines are ignored silently. A
        missing file is empty. Never raises on bad content; an unreadable file raises
        :class:`StateError`.
        """
        result = ReplayResult()
        for no, item in Ledger.iter_numbered(path):
            if isinstance(item, Problem):
                result.problems.append(item)
            else:
                result.records.append(item)
                result.line_nos.append(no)
        return result

    @staticmethod
    def iter_replay(path: Path | str) -> Iterator[dict[str, Any] | Problem]:
        """Like :meth:`replay`, yielding records and problems in file order."""
        return (item for _, item in Ledger.iter_numbered(path))

    @staticmethod
    def iter_numbered(path: Path | str) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
        """Like :meth:`iter_replay`, each item with its 1-based line number."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"{path}: cannot read ledger: {exc}") from exc
        lines = data.split(b"\n")
        torn = lines.pop()  # b"" when the file ends with a newline
        for no, raw in enumerate(lines, 1):
            if raw.strip():
                for item in _parse_salvaging(no, raw):
                    yield no, item
        if torn.strip():
            no = len(lines) + 1
            for item in _parse_salvaging(no, torn):
                if isinstance(item, Problem) and not item.reason.startswith("torn record"):
                    item = Problem(item.line_no, f"torn last line ({item.reason})", item.text_excerpt)
                yield no, item

    @staticmethod
    def records(path: Path | str) -> Iterator[dict[str, Any]]:
        """The valid records of ``path`` only (problems are dropped)."""
        return (item for item in Ledger.iter_replay(path) if not isinstance(item, Problem))


def _fsync_closing(fd: int) -> Callable[[], None]:
    def job() -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    return job


_RECORD_START = b'{"v":1,'  # how every record Ledger.append writes begins


def _parse_salvaging(no: int, raw: bytes) -> Iterator[dict[str, Any] | Problem]:
    """Line ``no``: its record, or its problem. A bad line that holds, after torn bytes, the start of
    a whole record (an older writer glued a record to a torn one) yields the torn part as a problem
    and the record: a torn record costs only itself."""
    item = _parse_line(no, raw)
    if not isinstance(item, Problem):
        yield item
        return
    at = raw.find(_RECORD_START, 1)
    while at > 0:
        rest = _parse_line(no, raw[at:])
        if not isinstance(rest, Problem):
            yield Problem(no, "torn record (a whole record follows it on the same line)", _excerpt(raw[:at]))
            yield rest
            return
        at = raw.find(_RECORD_START, at + 1)
    yield item


def _excerpt(raw: bytes) -> str:
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


def _parse_line(no: int, raw: bytes) -> dict[str, Any] | Problem:
    excerpt = _excerpt(raw)
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return Problem(no, "not UTF-8", excerpt)
    except ValueError as exc:
        return Problem(no, f"bad JSON: {exc}", excerpt)
    except RecursionError:
        return Problem(no, "bad JSON: nested too deeply", excerpt)
    if not isinstance(obj, dict):
        return Problem(no, f"not a JSON object ({type(obj).__name__})", excerpt)
    version = obj.get("v")
    if "v" not in obj:
        return Problem(no, 'missing "v"', excerpt)
    if type(version) is not int or version != LEDGER_VERSION:
        return Problem(no, f'unsupported "v": {version!r}', excerpt)
    return obj


# --- owner-only tree ---------------------------------------------------------------------------------


def secure_tree(root: Path | str) -> int:
    """Make ``root`` (created 0700 if missing) and everything under it owner-only: group and other
    permission bits are cleared (a 0755 folder becomes 0700, a 0644 file 0600). Symlinks are neither
    followed nor changed; entries another user owns are left alone (we could not change them).
    Returns how many modes were fixed. Never raises for a single entry (it is skipped)."""
    root = Path(root)
    StateDir(root).ensure()
    fixed = 0
    uid = os.geteuid()

    def fix(path: str, is_dir: bool) -> None:
        nonlocal fixed
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or not st.st_mode & 0o077:
                return
            os.chmod(path, (stat.S_IMODE(st.st_mode) & 0o700) | (0o700 if is_dir else 0))
            fixed += 1
        except OSError:
            pass

    fix(str(root), True)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            fix(os.path.join(folder, name), True)
        for name in files:
            fix(os.path.join(folder, name), False)
    return fixed


# --- atomic files ------------------------------------------------------------------------------------


def write_bytes_atomic(path: Path | str, data: bytes, *,
                       before_replace: Callable[[Path], object] | None = None) -> None:
    """Atomically make ``path`` contain ``data``.

    Writes a hidden temp file in the same folder (created with the existing file's permission bits;
    a new file 0o600 in an owner-only folder — one no other user may enter — else 0o666 minus the umask), fsyncs it, calls ``before_replace(temp_path)`` if given (an
    exception there removes the temp file, leaves ``path`` untouched and propagates), then
    ``os.replace`` and fsync of the folder. A symlink at ``path`` is followed (its target is
    replaced). Parent folders are created.
    """
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    private = mode is None and os.stat(target.parent).st_mode & 0o077 == 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600 if private else 0o666)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_text_atomic(path: Path | str, text: str, *,
                      before_replace: Callable[[Path], object] | None = None) -> None:
    """:func:`write_bytes_atomic` of ``text`` encoded as UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"), before_replace=before_replace)


def write_json_atomic(path: Path | str, data: Any, *, indent: int | None = 2) -> None:
    """:func:`write_bytes_atomic` of ``data`` as UTF-8 JSON (serialised before writing); ``indent=None``
    for compact output (much faster for state rewritten often)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent) + "\n"
    write_text_atomic(path, text)


def read_json(path: Path | str, default: Any = None) -> Any:
    """The JSON value in ``path``; ``default`` if the file does not exist.

    Raises :class:`StateError` naming the file when it cannot be read or is not valid JSON.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {exc}") from exc
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise StateError(f"{path}: corrupt JSON (not UTF-8: {exc})") from exc
    except ValueError as exc:
        raise StateError(f"{path}: corrupt JSON ({exc})") from exc


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the replace itself already happened
    finally:
        os.close(fd)
