"""What plugins declare about configuration: section records, semantic checks, the safe-name rule, and
the static section declarations read from entry-point metadata.

A plugin registers a section with ``register(name, type, check=None)``
(``aegis_register_config_sections``). ``check(config)`` runs after every section structured cleanly
and yields :data:`Issue` pairs ``(key_path, message)``; the loader turns each into a
``file:line: message @ key.path`` problem. A section's own cross-checks belong to the plugin that
owns it (the queue plugin checks that each queue's ``agent`` exists).

Sections are also declared *statically*, so the kernel knows whose a section is without importing
the plugin (a disabled plugin is never imported)::

    [project.entry-points."aegis.sections"]
    queues = "aegis_queue.plugin"     # section name = the module of the plugin's ``aegis`` entry point

A section an installed but disabled (or failed) plugin declares is *dormant*: kept, not applied, a
warning naming the plugin. So is a section of a plugin that is no longer installed but declared it
when Aegis last ran in this project: a running kernel remembers who owns which section in
``.aegis/state/config_sections.json`` (:func:`remember_sections`). A section no plugin has ever
declared is an error.

Import-light: no pluggy, no trio.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

if TYPE_CHECKING:
    from .config import Config

__all__ = ["SAFE_NAME_RULE", "Issue", "Section", "check_safe_name", "declared_sections", "dormant_sections",
           "is_safe_name", "recorded_sections", "remember_sections", "schema_of", "section_of"]

SECTIONS_GROUP = "aegis.sections"

Issue = tuple[tuple[str | int, ...], str]
"""One semantic problem: the key path it is about (``("queues", "review", "agent")``) and a message."""

_SAFE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
SAFE_NAME_RULE = "lowercase letters, digits, '-' or '_', starting with a letter, at most 64 characters"


def is_safe_name(name: object) -> bool:
    """True when ``name`` may be used as a file name (queue ledgers, …): no separators, no dots."""
    return isinstance(name, str) and bool(_SAFE_NAME_RE.match(name))


def check_safe_name(name: object, what: str) -> str | None:
    """None when ``name`` is safe (:func:`is_safe_name`), else the message naming the rule."""
    if is_safe_name(name):
        return None
    return f"invalid {what} name {name!r}: {SAFE_NAME_RULE}"


@frozen
class Section:
    """A declared section: the ``type`` it is structured into and its optional semantic ``check``.

    ``check(config)`` receives the whole loaded :class:`~aegis_kernel.config.Config` (every section
    structured) and yields :data:`Issue` pairs; it must not do I/O. A check that raises is reported
    as a warning naming the section (a plugin bug never makes a valid config invalid).
    """

    type: Any
    check: Callable[[Config], Iterable[Issue]] | None = None


def section_of(value: Any) -> Section:
    """``value`` as a :class:`Section` (a bare type, as registered before checks existed, has no check)."""
    return value if isinstance(value, Section) else Section(type=value)


def declared_sections() -> dict[str, tuple[str, str]]:
    """``{section: (distribution, plugin module)}`` from the ``aegis.sections`` entry points of every
    installed distribution (metadata only: nothing is imported)."""
    out: dict[str, tuple[str, str]] = {}
    for ep in metadata.entry_points(group=SECTIONS_GROUP):
        out.setdefault(ep.name, (ep.dist.name if ep.dist is not None else "", ep.value))
    return out


def dormant_sections(infos: Iterable[Any], registered: Iterable[str],
                     declared: Mapping[str, tuple[str, str]] | None = None) -> dict[str, str]:
    """``{section: plugin description}`` for sections declared by installed plugins that are not loaded.

    ``infos`` are the plugin host's ``PluginInfo`` records (``name``, ``module``, ``dist``, ``status``);
    ``registered`` the sections loaded plugins registered. The description names the plugin and why
    it is not loaded: ``"plugin 'queue' (disabled)"``. A declaring distribution the host did not
    consider at all (entry points not loaded) makes no section dormant.
    """
    declared = declared_sections() if declared is None else declared
    done = set(registered)
    infos = list(infos)
    out: dict[str, str] = {}
    for section, (dist, module) in declared.items():
        if section in done:
            continue
        owner = next((i for i in infos if i.module == module), None) \
            or next((i for i in infos if dist and i.dist == dist), None)
        if owner is not None and owner.status != "enabled":
            out[section] = f"plugin {owner.name!r} ({owner.status})"
    return out


RECORD = "config_sections.json"  # in .aegis/state/: {"v": 1, "sections": {section: {"plugin", "dist"}}}


def _record_path(project_dir: Path) -> Path:
    return project_dir / ".aegis" / "state" / RECORD


def recorded_sections(project_dir: Path | None) -> dict[str, dict[str, str]]:
    """The remembered owners ``{section: {"plugin": name, "dist": distribution}}``; ``{}`` when there is
    no record or it cannot be read (a damaged record only loses the memory of uninstalled plugins)."""
    if project_dir is None:
        return {}
    try:
        data = json.loads(_record_path(project_dir).read_text("utf-8"))
        sections = data["sections"]
        return {str(k): {"plugin": str(v["plugin"]), "dist": str(v.get("dist", ""))} for k, v in sections.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def remember_sections(project_dir: Path, host: Any) -> bool:
    """Record who owns each section this host knows (registered by a plugin, or declared by an installed
    one), keeping what earlier runs recorded for plugins since uninstalled. Writes only on change;
    returns whether it wrote. Blocking file work: call it from a worker thread."""
    infos = {i.name: i for i in host.infos.values()}
    known = recorded_sections(project_dir)
    current = dict(known)
    for name, reg in host.registry["config_sections"].items():
        info = infos.get(reg.owner)
        if info is not None and info.dist not in ("aegis-kernel", "(test)"):
            current[name] = {"plugin": info.name, "dist": info.dist}
    for name, (dist, module) in declared_sections().items():
        owner = next((i for i in infos.values() if i.module == module), None)
        if owner is not None:
            current[name] = {"plugin": owner.name, "dist": dist}
    if current == known:
        return False
    from .state import write_json_atomic

    _record_path(project_dir).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(_record_path(project_dir), {"v": 1, "sections": dict(sorted(current.items()))})
    return True


def schema_of(host: Any, project_dir: Path | None = None) -> dict[str, Any]:
    """The keyword arguments of :func:`~aegis_kernel.config.load_config` (and ``config_validator``) for
    what a plugin host loaded: ``sections``, ``drivers``, ``dormant`` (with ``project_dir``, also the
    sections of plugins uninstalled since they were recorded there)."""
    sections = host.registry.objects("config_sections")
    dormant = dormant_sections(host.infos.values(), sections)
    installed = {i.dist for i in host.infos.values()} | {d for d, _ in declared_sections().values()}
    for name, owner in recorded_sections(project_dir).items():
        if name not in sections and name not in dormant and owner["dist"] not in installed:
            dormant[name] = (f"plugin {owner['plugin']!r} (not installed: {owner['dist'] or 'its distribution'} "
                             "declared it when Aegis last ran here)")
    return {"sections": sections, "drivers": host.registry.objects("drivers"), "dormant": dormant}
