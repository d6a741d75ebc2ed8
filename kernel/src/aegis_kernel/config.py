"""Configuration: ``.aegis.yaml`` plus overlays, structured strictly into frozen attrs records.

Files:

- ``.aegis.yaml``, found by walking up from the cwd (:func:`find_config`); its folder is the project.
- overlays ``<project>/.aegis/<section>/<name>.yaml`` (or ``.yml``): each file is the body of key
  ``<name>`` inside section ``<section>`` (``.aegis/agents/reviewer.yaml`` → ``agents.reviewer``).
  ``.aegis/state/``, ``.aegis/worktrees/`` and hidden files are not overlays. A key defined twice
  (file + overlay, or two overlays) is an error naming both places.

Sections are declared by plugins (``aegis_register_config_sections``): ``{name: type}`` where the
type is a frozen attrs class, a container of them (``dict[str, AgentProfile]``) or a plain type
(``str | None``). A top-level key no section declares is an error. Structuring is strict (no
coercion: ``"no"`` is not a bool, ``2.7``/``"3"``/``true`` are not ints; ints are accepted for
floats; unknown keys are errors; a YAML list fills a tuple). Every problem of every file and
section is collected into one :class:`ConfigError`, each formatted ``file:line: message @ key.path``.

One edit path (:func:`edit_config`, :func:`set_key`, :func:`remove_key`): under the edit lock
(:class:`edit_lock`), round-trip load (comments, quotes and key order survive), mutate the
``CommentedMap``, validate the new text with the real loader from a temp file beside the target, then
atomically replace it keeping its mode. Nothing is written when the document did not change.
:mod:`aegis_kernel.config_edit` adds conflict checks and the edits ledger on top.

Import-light: ruamel.yaml, cattrs and attrs, never trio.
"""

from __future__ import annotations

import io
import os
import re
import threading
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, MutableSequence, Sequence
from pathlib import Path
from typing import Any

from .project import find_config

import attrs
import cattrs
from attrs import field, frozen
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.cols import list_structure_factory
from cattrs.gen import make_mapping_structure_fn
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from .config_sections import Section, section_of
from .state import write_text_atomic

__all__ = [
    "Section",
    "CONFIG_NAME",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "config_validator",
    "edit_config",
    "edit_lock",
    "find_config",
    "load_config",
    "raw_plugin_dirs",
    "raw_plugins_disabled",
    "remove_key",
    "set_key",
    "strict_converter",
]

CONFIG_NAME = ".aegis.yaml"
OVERLAY_DIR = ".aegis"
OVERLAY_SUFFIXES = (".yaml", ".yml")
NOT_OVERLAYS = frozenset({"state", "worktrees"})

Key = str | int
KeyPath = tuple[Key, ...]


# --- errors ------------------------------------------------------------------------------------------


@frozen
class ConfigProblem:
    """One problem: ``file``, 1-based ``line`` (of the offending value, or of its key for unknown
    keys and block mappings/lists; ``None`` when unknown), ``message`` and dotted ``key_path``.

    ``str()`` gives ``.aegis.yaml:12: expected int, got str 'x' @ queues.review.max_parallel``, the
    file shown relative to ``project_dir`` when inside it.
    """

    file: Path
    line: int | None
    message: str
    key_path: str = ""
    project_dir: Path | None = field(default=None, eq=False, repr=False)

    def __str__(self) -> str:
        where = _display(self.file, self.project_dir)
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}" + (f" @ {self.key_path}" if self.key_path else "")


class ConfigError(Exception):
    """The configuration is invalid. ``problems`` lists every problem found (at least one)."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _display(file: Path, project_dir: Path | None) -> str:
    if project_dir is not None:
        try:
            return str(file.relative_to(project_dir))
        except ValueError:
            pass
    return str(file)


def format_key_path(path: Iterable[Key]) -> str:
    """``("agents", "r", "command", 1)`` → ``agents.r.command[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part and re.fullmatch(r"[^.\[\]\s]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


# --- strict converter --------------------------------------------------------------------------------


class _Mismatch(TypeError):
    """A value of the wrong YAML type (raised by the strict hooks; message is user-facing)."""


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    for kind, name in ((int, "int"), (float, "float"), (str, "str"), (Mapping, "mapping"), (list, "list"),
                       (tuple, "list")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _got(value: Any) -> str:
    name = _yaml_type(value)
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return name
    text = repr(value)
    return f"{name} {text[:57] + '...' if len(text) > 60 else text}"


def _type_name(tp: Any) -> str:
    if attrs.has(tp) or _origin(tp) in (dict, Mapping, MutableMapping):
        return "mapping"
    if _origin(tp) in (list, tuple, set, frozenset, Sequence, MutableSequence):
        return "list"
    if _is_union(tp):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if tp is Path:
        return "str (a path)"
    return getattr(tp, "__name__", repr(tp))


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp) or tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _mismatch(tp: Any, value: Any) -> _Mismatch:
    return _Mismatch(f"expected {_type_name(tp)}, got {_got(value)}")


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return str(value)
    raise _mismatch(str, value)


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise _mismatch(int, value)


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _mismatch(float, value)


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _mismatch(bool, value)


def _structure_path(value: Any, _: Any) -> Path:
    if isinstance(value, str):
        return Path(value)
    raise _mismatch(Path, value)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for tp, hook in ((str, _structure_str), (int, _structure_int), (float, _structure_float),
                     (bool, _structure_bool), (Path, _structure_path)):
        conv.register_structure_hook(tp, hook)

    def attrs_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = conv.gen_structure_attrs_fromdict(tp)

        def structure_attrs(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _mismatch(tp, value)
            return inner(value, tp)
        return structure_attrs

    def mapping_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = make_mapping_structure_fn(tp, conv, dict, detailed_validation=True)

        def structure_mapping(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _mismatch(tp, value)
            return inner(value, tp)
        return structure_mapping

    def sequence_factory(tp: Any) -> Callable[[Any, Any], Any]:
        origin, args = _origin(tp), typing.get_args(tp)
        elem = args[0] if args else Any
        inner = list_structure_factory(list[elem], conv)  # type: ignore[valid-type]
        build = {list: list, MutableSequence: list, set: set, frozenset: frozenset}.get(origin, tuple)

        def structure_sequence(value: Any, _: Any) -> Any:
            if not isinstance(value, (list, tuple)):
                raise _mismatch(tp, value)
            return build(inner(list(value), tp))
        return structure_sequence

    def union_factory(tp: Any) -> Callable[[Any, Any], Any]:
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(tp))
        hooks = [(m, conv.get_structure_hook(m)) for m in members]

        def structure_union(value: Any, _: Any) -> Any:
            if value is None and nullable:
                return None
            if len(hooks) == 1:  # Optional[X]: X's detailed errors pass through
                member, hook = hooks[0]
                try:
                    return hook(value, member)
                except _Mismatch:  # wrong shape at this level: name the whole union
                    raise _mismatch(tp, value) from None
            for member, hook in hooks:
                try:
                    return hook(value, member)
                except Exception:  # noqa: BLE001 - try the next member
                    continue
            raise _mismatch(tp, value)
        return structure_union

    def literal_factory(tp: Any) -> Callable[[Any, Any], Any]:
        allowed = typing.get_args(tp)

        def structure_literal(value: Any, _: Any) -> Any:
            for option in allowed:
                if type(option) is type(value) and option == value:
                    return option
            raise _Mismatch(f"expected one of {', '.join(map(repr, allowed))}, got {_got(value)}")
        return structure_literal

    is_mapping = lambda tp: _origin(tp) in (dict, Mapping, MutableMapping)  # noqa: E731
    is_sequence = lambda tp: (  # noqa: E731
        _origin(tp) in (list, set, frozenset, Sequence, MutableSequence)
        or (_origin(tp) is tuple and (not typing.get_args(tp) or typing.get_args(tp)[-1] is Ellipsis)))
    conv.register_structure_hook_factory(lambda tp: isinstance(tp, type) and attrs.has(tp), attrs_factory)
    conv.register_structure_hook_factory(is_mapping, mapping_factory)
    conv.register_structure_hook_factory(is_sequence, sequence_factory)
    conv.register_structure_hook_factory(_is_union, union_factory)
    literal: Any = typing.Literal
    conv.register_structure_hook_factory(lambda tp: typing.get_origin(tp) is literal, literal_factory)
    return conv


_converter: cattrs.Converter | None = None


def strict_converter() -> cattrs.Converter:
    """The shared strict converter (built on first use). Plugins may use it for sub-values."""
    global _converter
    if _converter is None:
        _converter = _make_converter()
    return _converter


# --- discovery and parsing ---------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long strings on edit
    return yaml


def _lc_line(node: Any) -> int | None:
    try:
        return int(node.lc.line)
    except (AttributeError, TypeError):
        return None


def _plain(node: Any) -> Any:
    """ruamel round-trip nodes → plain dict/list/str/int/float/bool/None (other scalars as loaded)."""
    if isinstance(node, Mapping):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, (bool, ScalarBoolean)):
        return bool(node)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


@attrs.define
class _Source:
    file: Path
    node: Any
    first_line: int | None = None  # 0-based; the line a problem about the whole node points at


class _Loader:
    """Reads the files of one project into a merged raw dict, remembering where each key lives."""

    def __init__(self, project_dir: Path, path: Path | None, substitute: Mapping[Path, Path]) -> None:
        self.project_dir = project_dir
        self.path = path
        self.substitute = dict(substitute)
        self.problems: list[ConfigProblem] = []
        self.main: _Source | None = None
        self.overlays: dict[tuple[str, str], _Source] = {}
        self.raw: dict[Any, Any] = {}

    def problem(self, file: Path, line: int | None, message: str, key_path: Iterable[Key] = ()) -> None:
        self.problems.append(ConfigProblem(file, line, message, format_key_path(key_path), self.project_dir))

    def parse(self, file: Path) -> tuple[bool, Any]:
        source = self.substitute.get(file, file)
        try:
            text = source.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(file, None, f"not UTF-8 ({exc.reason} at byte {exc.start})")
            return False, None
        except OSError as exc:
            self.problem(file, None, f"cannot read: {exc.strerror or exc}")
            return False, None
        try:
            return True, _yaml().load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = " ".join(str(p) for p in (exc.problem, f"({exc.context})" if exc.context else None) if p)
            self.problem(file, mark.line + 1 if mark is not None else None, f"invalid YAML: {message}")
        except YAMLError as exc:
            self.problem(file, None, f"invalid YAML: {exc}")
        return False, None

    def overlay_files(self) -> list[tuple[str, str, Path]]:
        root = self.project_dir / OVERLAY_DIR
        found: set[Path] = set()
        if root.is_dir():
            for folder in root.iterdir():
                if folder.name in NOT_OVERLAYS or folder.name.startswith(".") or not folder.is_dir():
                    continue
                found.update(f for f in folder.iterdir() if f.is_file())
        found.update(p for p in self.substitute if p.parent.parent == root and p.parent.name not in NOT_OVERLAYS)
        return sorted((f.parent.name, f.stem, f) for f in found
                      if f.suffix in OVERLAY_SUFFIXES and not f.name.startswith("."))

    def load(self) -> None:
        if self.path is not None:
            ok, doc = self.parse(self.path)
            if ok and doc is not None and not isinstance(doc, CommentedMap):
                self.problem(self.path, 1,
                             f"the top level must be a mapping of sections, got {_yaml_type(doc)}")
            elif ok:
                self.main = _Source(self.path, doc if doc is not None else CommentedMap())
                self.raw = _plain(self.main.node)
        for section, name, file in self.overlay_files():
            ok, body = self.parse(file)
            if not ok:
                continue
            first = _lc_line(body) if isinstance(body, (CommentedMap, CommentedSeq)) else 0
            source = _Source(file, body, first)
            existing = self.raw.get(section)
            if existing is None:
                existing = self.raw[section] = {}
            if not isinstance(existing, dict):
                self.problem(file, first + 1 if first is not None else None,
                             f"cannot merge this overlay: section {section!r} is a {_yaml_type(existing)}, "
                             f"not a mapping", (section, name))
                continue
            if name in existing:
                other_file, other_line = self.where((section, name))
                also = _display(other_file, self.project_dir) + (f":{other_line}" if other_line else "")
                self.problem(file, first + 1 if first is not None else None,
                             f"{format_key_path((section, name))} is defined twice: here and in {also}",
                             (section, name))
                continue
            existing[name] = _plain(body)
            self.overlays[(section, name)] = source

    def where(self, path: KeyPath, *, at_key: bool = False) -> tuple[Path, int | None]:
        """The file and 1-based line of ``path``: its value (its key for containers or ``at_key``),
        or the deepest existing ancestor when ``path`` does not exist in the files."""
        fallback = self.path or self.project_dir / CONFIG_NAME
        overlay = (path[0], path[1]) if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], str) \
            else None
        if overlay is not None and overlay in self.overlays:
            source, rest = self.overlays[overlay], path[2:]
        elif self.main is not None and (not path or path[0] in self.main.node):
            source, rest = self.main, path
        else:  # a section that only overlays define
            files = [s for (sec, _), s in self.overlays.items() if path and sec == path[0]]
            return (files[0].file, 1) if files else (fallback, None)
        node, line = source.node, source.first_line
        for i, part in enumerate(rest):
            last = i == len(rest) - 1
            try:
                if isinstance(node, CommentedMap) and part in node:
                    key_line, _, value_line, _ = node.lc.data[part]
                    node = node[part]
                    # a container's "value" starts on a later line and an empty value has none
                    keyish = node is None or isinstance(node, (CommentedMap, CommentedSeq))
                    line = key_line if (at_key and last) or keyish else value_line
                elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                    line = node.lc.data[part][0]
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                break
        return source.file, (line + 1 if line is not None else None)


def _resolve_target(target: Path | str) -> tuple[Path, Path]:
    """``(project_dir, config_path)`` for a project folder or a config file path."""
    target = Path(target)
    if target.is_dir():
        project = target.resolve()
        return project, project / CONFIG_NAME
    project = target.parent.resolve()
    return project, project / target.name


# --- loading -----------------------------------------------------------------------------------------


@frozen(eq=False)
class Config:
    """A loaded configuration.

    ``path`` is the ``.aegis.yaml`` (None when the project has none); ``sections`` holds one
    structured value per declared section (an absent or null section is structured from ``None``,
    ``{}`` or ``[]``, the first that the type accepts, else it is None); ``raw`` is the merged plain
    dict of all files; ``overlays`` maps ``"section.name"`` to the overlay file that defines it.
    ``warnings`` are problems that do not make the config invalid (a dormant section, a failing
    check); ``drivers`` maps provider names to the registered drivers (None: loaded without plugins,
    provider checks skipped).
    """

    path: Path | None
    project_dir: Path
    sections: dict[str, Any] = field(factory=dict)
    raw: dict[str, Any] = field(factory=dict)
    overlays: dict[str, Path] = field(factory=dict)
    warnings: tuple[ConfigProblem, ...] = ()
    drivers: Mapping[str, Any] | None = field(default=None, repr=False)

    def get(self, name: str, default: Any = None) -> Any:
        """The structured section ``name``; ``default`` when it is None or not declared."""
        value = self.sections.get(name)
        return default if value is None else value


def load_config(target: Path | str, sections: Mapping[str, Any], *,
                substitute: Mapping[Path, Path] | None = None, drivers: Mapping[str, Any] | None = None,
                dormant: Mapping[str, str] | None = None) -> Config:
    """Load the configuration of a project.

    ``target`` is a project folder (its ``.aegis.yaml`` is used if present: no walking up; see
    :func:`find_config`) or a config file (its folder is the project). ``sections`` maps each
    declared top-level key to its type or to a :class:`~aegis_kernel.config_sections.Section`
    (type + semantic check). ``substitute`` maps a config or overlay path (which may not exist yet)
    to a file to read in its place, so a candidate edit is validated under its real name.
    ``drivers`` (provider name → driver) lets the kernel's checks validate ``provider``;
    ``dormant`` maps sections of installed plugins that are not loaded to a description of the
    plugin (:func:`~aegis_kernel.config_sections.dormant_sections`): such a section is kept in
    ``raw`` and reported in ``warnings``, not an error.

    Semantic checks run once every section structured cleanly (a check never sees half a config).

    Raises :class:`ConfigError` listing every problem in every file.
    """
    specs = {name: section_of(value) for name, value in sections.items()}
    sections = {name: spec.type for name, spec in specs.items()}
    dormant = dict(dormant or {})
    warnings: list[ConfigProblem] = []
    project_dir, path = _resolve_target(target)
    substitute = {Path(k).parent.resolve() / Path(k).name: Path(v) for k, v in (substitute or {}).items()}
    loader = _Loader(project_dir, path if path.is_file() or path in substitute else None, substitute)
    loader.load()
    if loader.problems:  # syntax errors and collisions: structuring the rest would only add noise
        raise ConfigError(loader.problems)

    for name in loader.raw:
        if name in sections:
            continue
        file, line = loader.where((name,), at_key=True)
        if name in dormant:
            warnings.append(ConfigProblem(file, line, f"section {name!r} belongs to {dormant[name]}: kept, "
                                          "not applied while that plugin is not loaded", name, project_dir))
            continue
        known = ", ".join(sorted(sections)) or "none"
        loader.problem(file, line, f"unknown section {name!r} (known: {known}); "
                                   "is the plugin that owns it installed and enabled?")
    conv = strict_converter()
    structured: dict[str, Any] = {}
    for name, tp in sections.items():
        value = loader.raw.get(name)
        if value is None:
            structured[name] = _empty(conv, tp)
            continue
        try:
            structured[name] = conv.structure(value, tp)
        except Exception as exc:  # noqa: BLE001 - every structuring failure becomes a problem
            for key_path, message, at_key in _walk(exc, (name,), loader.raw):
                file, line = loader.where(key_path, at_key=at_key)
                loader.problem(file, line, message, key_path)
    config = Config(path=loader.path, project_dir=project_dir, sections=structured, raw=loader.raw,
                    overlays={format_key_path(k): s.file for k, s in loader.overlays.items()},
                    warnings=tuple(warnings), drivers=drivers)
    if not loader.problems:
        _run_checks(config, specs, loader, warnings)
        config = attrs.evolve(config, warnings=tuple(warnings))
    if loader.problems:
        order = {f: i for i, f in enumerate([loader.path, *(s.file for s in loader.overlays.values())])}
        raise ConfigError(sorted(loader.problems, key=lambda p: (order.get(p.file, len(order)), p.line or 0)))
    return config


def _run_checks(config: Config, specs: Mapping[str, Section], loader: _Loader,
                warnings: list[ConfigProblem]) -> None:
    """Each section's semantic check → problems located like structuring errors; a raising check → a warning."""
    for name, spec in specs.items():
        if spec.check is None:
            continue
        try:
            issues = list(spec.check(config))
        except Exception as exc:  # noqa: BLE001 - a plugin's buggy check must not invalidate the config
            file, line = loader.where((name,), at_key=True)
            warnings.append(ConfigProblem(file, line, f"the check of section {name!r} failed (a plugin bug): "
                                          f"{type(exc).__name__}: {exc}", name, config.project_dir))
            continue
        for key_path, message in issues:
            file, line = loader.where(tuple(key_path))
            loader.problem(file, line, message, key_path)


def _empty(conv: cattrs.Converter, tp: Any) -> Any:
    candidates: tuple[Any, ...] = (None, {}, [])
    for candidate in candidates:
        try:
            return conv.structure(candidate, tp)
        except Exception:  # noqa: BLE001
            continue
    return None


def _note(exc: BaseException) -> Any:
    for note in reversed(getattr(exc, "__notes__", None) or []):
        if isinstance(note, (AttributeValidationNote, IterableValidationNote)):
            return note
    return None


def _lookup(raw: Any, path: KeyPath) -> Any:
    for part in path:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _walk(exc: BaseException, path: KeyPath, raw: Any) -> Iterator[tuple[KeyPath, str, bool]]:
    """Flatten a cattrs exception tree into ``(key_path, message, points_at_key)`` leaves."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub in exc.exceptions:
            note = _note(sub)
            if isinstance(note, AttributeValidationNote):
                yield from _walk(sub, (*path, note.name), raw)
            elif isinstance(note, IterableValidationNote) and str(note).startswith("Structuring mapping key"):
                for sub_path, message, _ in _walk(sub, (*path, note.index), raw):
                    yield sub_path, f"invalid key: {message}", True
            elif isinstance(note, IterableValidationNote):
                yield from _walk(sub, (*path, note.index), raw)
            else:  # the constructor raised (validators, __attrs_post_init__) or unknown keys
                yield from _walk_leaf(sub, path, raw, constructor=True)
        return
    yield from _walk_leaf(exc, path, raw, constructor=False)


def _walk_leaf(exc: BaseException, path: KeyPath, raw: Any, *,
               constructor: bool) -> Iterator[tuple[KeyPath, str, bool]]:
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        yield from _walk(exc, path, raw)
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = ", ".join(a.name for a in attrs.fields(exc.cl))
        for key in sorted(exc.extra_fields, key=str):
            yield (*path, key), f"unknown key {key!r} (known: {known})", True
    elif isinstance(exc, _Mismatch):
        yield path, str(exc), False
    elif isinstance(exc, KeyError) and not constructor:
        yield path, f"missing required key {path[-1]!r}", False
    elif isinstance(exc, (ValueError, TypeError)):
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        if len(exc.args) > 1 and isinstance(exc.args[1], attrs.Attribute):  # attrs.validators
            yield (*path, exc.args[1].name), message, False
            return
        value = _lookup(raw, path)
        if constructor and isinstance(value, dict):  # point at the one key the message names, if any
            named = [k for k in value if isinstance(k, str) and re.search(rf"\b{re.escape(k)}\b", message)]
            if len(named) == 1:
                path = (*path, named[0])
        yield path, message, False
    else:
        yield path, f"{type(exc).__name__}: {exc}", False


# --- cheap pre-read ----------------------------------------------------------------------------------


def raw_plugins_disabled(project_dir: Path | str) -> tuple[str, ...]:
    """``plugins.disabled`` read before plugins are loaded (from ``.aegis.yaml`` and overlays).

    Tolerant: any problem (no file, bad YAML, wrong shape) gives ``()``; non-string items are
    dropped. The full loader reports those problems later.
    """
    try:
        project, path = _resolve_target(project_dir)
        loader = _Loader(project, path if path.is_file() else None, {})
        loader.load()
        plugins = loader.raw.get("plugins")
        disabled = plugins.get("disabled") if isinstance(plugins, dict) else None
        if isinstance(disabled, list):
            return tuple(d for d in disabled if isinstance(d, str))
    except Exception:  # noqa: BLE001 - a pre-read never fails; load_config reports problems
        pass
    return ()


def raw_plugin_dirs(project_dir: Path | str) -> tuple[Path, ...]:
    """``plugins.dirs`` read before plugins are loaded (from ``.aegis.yaml`` and overlays), each
    resolved against the project folder. Tolerant like :func:`raw_plugins_disabled`."""
    try:
        project, path = _resolve_target(project_dir)
        if "dirs" not in (path.read_text("utf-8", errors="replace") if path.is_file() else "") \
                and not (project / OVERLAY_DIR / "plugins").is_dir():
            return ()  # the cheap answer for nearly every project
        loader = _Loader(project, path if path.is_file() else None, {})
        loader.load()
        plugins = loader.raw.get("plugins")
        dirs = plugins.get("dirs") if isinstance(plugins, dict) else None
        if isinstance(dirs, list):
            return tuple((project / Path(d).expanduser()).resolve() for d in dirs if isinstance(d, str))
    except Exception:  # noqa: BLE001 - a pre-read never fails; load_config reports problems
        pass
    return ()


# --- the one edit path -------------------------------------------------------------------------------


def _guess_indent(text: str) -> tuple[int, int, int]:
    """``(mapping, sequence, offset)`` indents used by ``text``; defaults 2, 4, 2."""
    mapping = sequence = offset = None
    previous: tuple[int, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if previous is not None and previous[1].endswith(":") and indent == previous[0] \
                and stripped.startswith("- ") and sequence is None:
            offset = 0
            sequence = 2 + len(stripped[2:]) - len(stripped[2:].lstrip(" "))
        elif previous is not None and previous[1].endswith(":") and indent > previous[0]:
            if stripped.startswith("- ") and sequence is None:
                offset = indent - previous[0]
                sequence = offset + 2 + len(stripped[2:]) - len(stripped[2:].lstrip(" "))
            elif not stripped.startswith("-") and mapping is None:
                mapping = indent - previous[0]
        previous = (indent, stripped.split(" #")[0].rstrip())
        if mapping is not None and sequence is not None:
            break
    mapping = mapping or 2
    if sequence is None:
        sequence, offset = mapping + 2, mapping
    return mapping, sequence, offset or 0


def _dump(yaml: YAML, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


_held = threading.local()  # lock paths this thread holds, with their depth (edit_lock is re-entrant per thread)


def _project_of(path: Path) -> Path:
    """The project folder of ``.aegis.yaml`` or of an overlay ``<project>/.aegis/<section>/<name>.yaml``."""
    path = path.parent.resolve() / path.name
    if path.name != CONFIG_NAME and path.parent.parent.name == OVERLAY_DIR:
        return path.parent.parent.parent
    return path.parent  # .aegis.yaml (or a config file of another name: its folder)


class edit_lock:  # noqa: N801 - used as a context manager, like open()
    """``with edit_lock(config_path):`` — the exclusive, cross-process config edit lock (blocking): an
    ``flock`` on the project folder itself (the folder of ``.aegis.yaml``), so no lock file is left in
    the user's tree. Re-entrant within a thread (an edit helper inside a locked edit does not wait for
    itself); other threads and processes wait."""

    def __init__(self, path: Path | str) -> None:
        self.lock_path = _project_of(Path(path))
        self._fd: int | None = None

    def __enter__(self) -> edit_lock:
        import fcntl

        held: dict[Path, int] = _held.__dict__.setdefault("depth", {})
        if held.get(self.lock_path):
            held[self.lock_path] += 1
            return self
        fd = os.open(self.lock_path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        held[self.lock_path] = 1
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        held: dict[Path, int] = _held.__dict__.setdefault("depth", {})
        held[self.lock_path] -= 1
        if held[self.lock_path] == 0 and self._fd is not None:
            del held[self.lock_path]
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def edit_config(path: Path | str, mutate: Callable[[CommentedMap], object],
                validate: Callable[[Path], object]) -> bool:
    """Apply ``mutate`` to the round-trip document of ``path`` and save it, validated and atomically.

    ``path`` is ``.aegis.yaml`` or an overlay; a missing file starts as an empty mapping (and is
    created). ``mutate`` edits the ``CommentedMap`` in place. If the document is unchanged nothing
    is written and False is returned (the bytes stay identical). Otherwise the new text is written
    to a temp file beside ``path``, ``validate(temp_path)`` runs (use :func:`config_validator`;
    it should raise :class:`ConfigError`), and only then the temp file replaces ``path``, keeping
    its mode. A failing validation leaves ``path`` untouched and propagates. Returns True.

    The whole read → replace holds :class:`edit_lock`, so concurrent edits (threads, processes) are
    serialized and each applies on top of the others.
    """
    path = Path(path)
    with edit_lock(path):
        return _edit_config(path, mutate, validate)


def _edit_config(path: Path, mutate: Callable[[CommentedMap], object], validate: Callable[[Path], object]) -> bool:
    text = path.read_text("utf-8") if path.exists() else ""
    yaml = _yaml()
    mapping, sequence, offset = _guess_indent(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    try:
        doc = yaml.load(text) if text.strip() else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError([ConfigProblem(path, mark.line + 1 if mark else None,
                                         f"invalid YAML: {exc.problem or exc}")]) from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ConfigError([ConfigProblem(path, 1, f"the document must be a mapping, got {_yaml_type(doc)}")])
    before = _dump(yaml, doc)
    mutate(doc)
    after = _dump(yaml, doc)
    if after == before:
        return False
    write_text_atomic(path, after, before_replace=validate)
    return True


def config_validator(path: Path | str, sections: Mapping[str, Any], *, drivers: Mapping[str, Any] | None = None,
                     dormant: Mapping[str, str] | None = None) -> Callable[[Path], Config]:
    """A ``validate`` for :func:`edit_config` of ``path`` (``.aegis.yaml`` or an overlay): loads the
    whole project with the candidate file in ``path``'s place, so errors name ``path``. ``drivers``
    and ``dormant`` are passed to :func:`load_config` (the kernel's ``config_validator`` fills them)."""
    target = Path(path).parent.resolve() / Path(path).name
    if target.name == CONFIG_NAME:
        project = target.parent
    else:  # <project>/.aegis/<section>/<name>.yaml
        project = target.parent.parent.parent
    return lambda candidate: load_config(project, sections, substitute={target: candidate}, drivers=drivers,
                                         dormant=dormant)


def _to_yaml(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, CommentedMap):
        return CommentedMap((k, _to_yaml(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not isinstance(value, CommentedSeq):
        return CommentedSeq(_to_yaml(v) for v in value)
    return value


def set_key(path: Path | str, keys: Sequence[str], value: Any, *, validate: Callable[[Path], object]) -> bool:
    """Set ``keys`` (e.g. ``["agents", "reviewer"]``) to ``value`` in ``path`` via :func:`edit_config`.

    Missing (or null) intermediate mappings are created; an existing key keeps its position, and an
    equal value is left alone (its comments survive). Returns whether the file changed.
    """
    if not keys:
        raise ValueError("set_key needs at least one key")

    def mutate(doc: CommentedMap) -> None:
        node = doc
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = CommentedMap()
            elif not isinstance(child, CommentedMap):
                raise ConfigError([ConfigProblem(Path(path), None, f"not a mapping ({_yaml_type(child)})",
                                                 format_key_path(keys[: i + 1]))])
            node = child
        if keys[-1] in node and _plain(node[keys[-1]]) == _plain(value):
            return
        node[keys[-1]] = _to_yaml(value)

    return edit_config(path, mutate, validate)


def remove_key(path: Path | str, keys: Sequence[str], *, validate: Callable[[Path], object],
               prune: bool = False) -> bool:
    """Remove ``keys`` from ``path`` via :func:`edit_config`. Returns False (and writes nothing)
    when the key is not there. ``prune``: also remove the mappings on the path that this leaves empty
    (removing the last queue removes ``queues:``)."""
    if not keys:
        raise ValueError("remove_key needs at least one key")

    def mutate(doc: CommentedMap) -> None:
        nodes: list[Any] = [doc]
        for key in keys[:-1]:
            nodes.append(nodes[-1].get(key) if isinstance(nodes[-1], CommentedMap) else None)
        depth = len(keys) - 1
        if not (isinstance(nodes[depth], CommentedMap) and keys[depth] in nodes[depth]):
            return
        _remove_keeping_trailing_comments(nodes[depth], keys[depth])
        while prune and depth > 0 and not nodes[depth]:
            depth -= 1
            _remove_keeping_trailing_comments(nodes[depth], keys[depth])

    return edit_config(path, mutate, validate)


def _last_leaf(node: Any) -> tuple[Any, Key] | None:
    """``(container, key)`` whose comment slot holds what follows ``node``'s last line (block style)."""
    holder = None
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node) and not node.fa.flow_style():
        key: Key = list(node.keys())[-1] if isinstance(node, CommentedMap) else len(node) - 1
        holder, node = (node, key), node[key]
    return holder


def _comment_slot(container: Any) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def _remove_keeping_trailing_comments(parent: CommentedMap, key: str) -> None:
    """``del parent[key]``, keeping the lines that follow the removed entry (ruamel stores a blank
    line and comments after a block's last entry on that entry: deleting it would drop them)."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    trailing = ""
    if list(parent.keys())[-1] == key:
        leaf = _last_leaf(parent[key]) or (parent, key)
        if leaf[0] is not parent or leaf[1] != key:  # inside the removed value: also check the parent's slot
            slots = [leaf, (parent, key)]
        else:
            slots = [leaf]
        for container, k in slots:
            item = container.ca.items.get(k)
            token = item[_comment_slot(container)] if item else None
            if token is not None and "\n" in token.value:
                trailing = token.value.split("\n", 1)[1]
                break
    del parent[key]
    target = _last_leaf(parent) if trailing else None
    if target is None:
        return
    container, k = target
    item = container.ca.items.setdefault(k, [None, None, None, None] if isinstance(container, CommentedMap)
                                         else [None, None])
    slot = _comment_slot(container)
    if item[slot] is None:
        item[slot] = CommentToken("\n" + trailing, CommentMark(0), None)
    else:
        item[slot].value += trailing
