"""The ``groups:`` config section (owned by aegis-groups).

.. code-block:: yaml

    groups:
      defaults:
        timeout: 10m             # a broadcast closes after this long (s/m/h; default 10m)
        reducer: join_by_handle  # the reducer of callbacks and of wait_all without one
      presets:
        audit:
          profiles: [sec_reviewer, style_reviewer, logic_reviewer]
          description: three lenses on one PR

A preset may also live in its own overlay file, ``.aegis/groups/<name>.yaml`` (its body is the
preset: ``profiles: [...]``): every key of the section other than ``defaults`` and ``presets`` is a
preset. :func:`parse_groups` turns the raw section into a :class:`GroupsConfig`; the section's check
(:func:`check_groups`) reports each problem at its key path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import field, frozen

DEFAULT_TIMEOUT = 600.0
DEFAULT_REDUCER = "join_by_handle"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


class GroupsConfigError(ValueError):
    """A bad ``groups:`` section: ``path`` is the key path the message is about."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(path)}: {message}")
        self.path = path
        self.message = message


def parse_duration(value: Any, path: tuple[str, ...]) -> float:
    """``90``, ``"90s"``, ``"10m"``, ``"1h"`` → seconds (positive)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GroupsConfigError(path, f"must be a duration like 90s, 10m or 1h, got {value!r}")
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise GroupsConfigError(path, f"must be a duration like 90s, 10m or 1h, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        seconds = float(value)
    if seconds <= 0:
        raise GroupsConfigError(path, f"must be positive, got {value!r}")
    return seconds


@frozen
class Preset:
    """A named list of agent profiles: ``aegis_group_spawn(name, preset=...)`` spawns one member each."""

    profiles: tuple[str, ...]
    description: str = ""


@frozen
class Defaults:
    timeout: float = DEFAULT_TIMEOUT
    reducer: str = DEFAULT_REDUCER


@frozen
class GroupsConfig:
    presets: Mapping[str, Preset] = field(factory=dict)
    defaults: Defaults = field(factory=Defaults)
    paths: Mapping[str, tuple[str, ...]] = field(factory=dict)  # preset → where it is defined (key path)


def _preset(value: Any, path: tuple[str, ...]) -> Preset:
    if not isinstance(value, Mapping):
        raise GroupsConfigError(path, "a preset is a mapping with 'profiles: [...]'")
    unknown = sorted(set(value) - {"profiles", "description"})
    if unknown:
        raise GroupsConfigError((*path, str(unknown[0])), "unknown key (a preset has profiles, description)")
    profiles = value.get("profiles")
    if not isinstance(profiles, (list, tuple)) or not profiles or not all(isinstance(p, str) and p for p in profiles):
        raise GroupsConfigError((*path, "profiles"), "must be a non-empty list of agent profile names")
    description = value.get("description", "")
    if not isinstance(description, str):
        raise GroupsConfigError((*path, "description"), "must be a string")
    return Preset(profiles=tuple(profiles), description=description)


def parse_groups(raw: Any) -> GroupsConfig:
    """The raw ``groups`` section (None when absent) as a :class:`GroupsConfig`; raises
    :class:`GroupsConfigError` naming the key path of the first problem."""
    if raw is None:
        return GroupsConfig()
    if not isinstance(raw, Mapping):
        raise GroupsConfigError(("groups",), "must be a mapping (defaults, presets)")
    presets: dict[str, Preset] = {}
    paths: dict[str, tuple[str, ...]] = {}
    defaults = Defaults()
    for key, value in raw.items():
        path = ("groups", str(key))
        if key == "defaults":
            if not isinstance(value, Mapping):
                raise GroupsConfigError(path, "must be a mapping (timeout, reducer)")
            unknown = sorted(set(value) - {"timeout", "reducer"})
            if unknown:
                raise GroupsConfigError((*path, str(unknown[0])), "unknown key (defaults has timeout, reducer)")
            timeout = parse_duration(value["timeout"], (*path, "timeout")) if "timeout" in value else DEFAULT_TIMEOUT
            reducer = value.get("reducer", DEFAULT_REDUCER)
            if not isinstance(reducer, str) or not reducer:
                raise GroupsConfigError((*path, "reducer"), "must name a reducer")
            defaults = Defaults(timeout=timeout, reducer=reducer)
        elif key == "presets":
            if not isinstance(value, Mapping):
                raise GroupsConfigError(path, "must be a mapping of preset name → {profiles: [...]}")
            for name, body in value.items():
                if str(name) in presets:
                    raise GroupsConfigError((*path, str(name)), "preset defined twice (groups.presets and an overlay)")
                presets[str(name)] = _preset(body, (*path, str(name)))
                paths[str(name)] = (*path, str(name))
        else:  # a preset from an overlay file .aegis/groups/<name>.yaml
            if str(key) in presets:
                raise GroupsConfigError(path, "preset defined twice (groups.presets and an overlay)")
            presets[str(key)] = _preset(value, path)
            paths[str(key)] = path
    return GroupsConfig(presets=presets, defaults=defaults, paths=paths)


def groups_config(config: Any) -> GroupsConfig:
    """The kernel config's ``groups`` section, parsed (a broken one was already reported at load:
    it reads as the defaults here)."""
    try:
        return parse_groups(config.get("groups"))
    except GroupsConfigError:
        return GroupsConfig()


def check_groups(config: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """The section's check (run at load): the section parses, and every preset names configured
    agent profiles."""
    try:
        parsed = parse_groups(config.get("groups"))
    except GroupsConfigError as exc:
        yield exc.path, exc.message
        return
    agents = config.get("agents") or {}
    for name, preset in parsed.presets.items():
        for i, profile in enumerate(preset.profiles):
            if profile not in agents:
                yield ((*parsed.paths.get(name, ("groups", "presets", name)), "profiles", str(i)),
                       f"unknown agent {profile!r} (configured: {', '.join(sorted(agents)) or 'none'})")
