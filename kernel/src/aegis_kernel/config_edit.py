"""Safe, attributed config edits: the one edit path (:func:`~aegis_kernel.config.edit_config`) made
safe for concurrent writers and recorded in a ledger.

- **Serialized.** Every edit holds an ``flock`` on the project folder (the folder of ``.aegis.yaml``:
  :class:`~aegis_kernel.config.edit_lock`; no lock file) for its whole read → mutate → validate → replace, so the
  CLI, the TUI and agents (in any number of processes) never lose each other's edits. The file is
  re-read under the lock: an edit is always applied on top of what is on disk, including a change
  made by hand in the meantime.
- **Never a silent overwrite.** An edit may carry ``expect`` — the value the caller believes the key
  has (what it showed the person, or :data:`ABSENT` for "must not exist yet", which a null value
  also satisfies). If the key holds
  something else under the lock, :class:`ConfigConflict` is raised and nothing is written.
- **Attributed.** Every edit that changed the file appends one record to
  ``.aegis/state/config_edits.jsonl``: ``{"v": 1, "at", "who", "op", "key", "file", "before", "after"}``
  (``before``/``after`` are the key's plain values, ``None`` when absent, secrets redacted:
  :func:`redact_value`).

Blocking (file locks, file IO, validation): call from a worker thread in trio code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from attrs import frozen

from .config import (ConfigError, ConfigProblem, _plain, _project_of, _yaml, edit_lock, format_key_path, remove_key,
                     set_key)

__all__ = ["ABSENT", "EDITS_LEDGER", "REMOVE", "ConfigConflict", "Edit", "apply_edit", "edit_lock", "read_key",
           "redact_value"]

EDITS_LEDGER = "config_edits.jsonl"


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


#: the value of a key that is not in the file (``expect=ABSENT``: the key must not exist yet)
ABSENT: Any = _Absent()
#: ``value=REMOVE`` in :func:`apply_edit` removes the key
REMOVE: Any = _Absent()


class ConfigConflict(ConfigError):
    """The key changed since the caller read it (by hand, or by another writer): nothing was written."""

    def __init__(self, path: Path, keys: Sequence[str], expected: Any, found: Any) -> None:
        def show(v: Any) -> str:
            return "absent" if v is ABSENT else repr(v)

        super().__init__([ConfigProblem(path, None, f"changed meanwhile: expected {show(expected)}, found "
                                                    f"{show(found)}; re-read and edit again", format_key_path(keys))])
        self.found = found


@frozen
class Edit:
    """What :func:`apply_edit` did: ``changed`` (False: the file already said so), and the key's
    plain value ``before`` and ``after`` (``None`` when absent)."""

    key: str
    changed: bool
    before: Any
    after: Any


def read_key(path: Path | str, keys: Sequence[str]) -> Any:
    """The plain value at ``keys`` in the file ``path`` (:data:`ABSENT` when missing). Raises
    :class:`ConfigError` for a file that is not YAML."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return ABSENT
    try:
        node: Any = _yaml().load(text) if text.strip() else None
    except Exception as exc:  # noqa: BLE001 - any parse failure is a config problem
        raise ConfigError([ConfigProblem(path, None, f"invalid YAML: {exc}")]) from None
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return ABSENT
        node = node[key]
    return _plain(node)


def apply_edit(path: Path | str, keys: Sequence[str], value: Any, *, validate: Callable[[Path], object],
               who: str, op: str, expect: Any = None, check: Callable[[Any], None] | None = None,
               prune: bool = False) -> Edit:
    """Set ``keys`` to ``value`` (or remove them: ``value=REMOVE``; or ``value(current)``'s result when
    it is a function of the current plain value) in ``path``, under the edit lock.

    Under the lock the file is re-read; ``expect`` (when not None) must equal the key's current plain
    value (or be :data:`ABSENT`), else :class:`ConfigConflict`. ``check(current)`` (optional) may raise
    (an :class:`~aegis_kernel.operations.OperationError`, say) to refuse given what is there now.
    Validation and the atomic replace are :func:`~aegis_kernel.config.set_key`'s (``prune``: a removal
    also removes the mappings it leaves empty, see :func:`~aegis_kernel.config.remove_key`). A change is
    recorded in the ledger as ``who`` doing ``op``. Raises :class:`ConfigError` when invalid.
    """
    path = Path(path)
    with edit_lock(path):
        before = read_key(path, keys)
        if expect is not None and not _same(expect, before):
            raise ConfigConflict(path, keys, expect, before)
        if check is not None:
            check(before)
        if callable(value):
            value = value(before)
        if value is REMOVE:
            changed = remove_key(path, keys, validate=validate, prune=prune)
        else:
            changed = set_key(path, keys, value, validate=validate)
        after = read_key(path, keys)
        edit = Edit(format_key_path(keys), changed, None if before is ABSENT else before,
                    None if after is ABSENT else after)
        if changed:
            _record(path, who, op, edit)
    return edit


_SECRET_WORDS = ("token", "secret", "password", "passwd", "api_key", "apikey", "credential")


def redact_value(value: Any, key: str = "") -> Any:
    """A config value with its secrets replaced by ``«redacted»``: every value of an ``env`` mapping
    and every string under a key named like a token, secret, password or API key. ``key`` is the
    name ``value`` sits under."""
    from .redact import REDACTED

    if isinstance(value, dict):
        if key == "env":
            return {k: REDACTED for k in value}
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, key) for v in value]
    if isinstance(value, str) and (any(w in key.lower() for w in _SECRET_WORDS) or key.isupper()):
        return REDACTED
    return value


def _same(expect: Any, found: Any) -> bool:
    if expect is ABSENT:
        return found is ABSENT or found is None  # ``key:`` with no value is as good as absent
    if found is ABSENT:
        return False
    return bool(_plain(expect) == found)


def _record(path: Path, who: str, op: str, edit: Edit) -> None:
    from .state import Ledger, StateDir

    ledger = Ledger(StateDir.for_project(_project_of(path)).path(EDITS_LEDGER))
    try:
        last = edit.key.rsplit(".", 1)[-1]
        ledger.append({"v": 1, "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "who": who,
                       "op": op, "key": edit.key, "file": str(path), "before": redact_value(edit.before, last),
                       "after": redact_value(edit.after, last)})
    finally:
        ledger.close()
