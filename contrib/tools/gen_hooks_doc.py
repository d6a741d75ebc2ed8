"""Regenerate docs/hooks.md from every installed hookspec (the kernel's and those plugins add through
``aegis_add_hookspecs``), grouped by owner (run after changing a hookspec).

Usage: .venv/bin/python contrib/tools/gen_hooks_doc.py
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from aegis_kernel.plugins import KERNEL_OWNER, PluginHost, load_plugins

HEADER = """# Hooks

Every hook Aegis calls, with its exact signature, grouped by the distribution that declares it. Implement
them as module-level functions decorated with `aegis_kernel.hookimpl` in the module your `aegis` entry point
names; an implementation may take any subset of the arguments. The contracts below are the hookspecs'
docstrings (the kernel's in `aegis_kernel/hookspecs.py`, a plugin's where its `aegis_add_hookspecs` points);
regenerate with `contrib/tools/gen_hooks_doc.py`. `tests/kernel/test_docs.py` fails when a hook is missing here.

How the kernel calls them (all through pluggy's `pm.hook`, so `tryfirst`/`trylast`, `wrapper=True` and
`AEGIS_TRACE_HOOKS=1` — every call logged to `.aegis/state/aegis.log` — work as pluggy documents):

- **Registration** hooks are called once per plugin when the kernel is built; results are collected; a plugin whose
  hook raises is marked `failed` and none of its registrations are kept.
- **Mutators** are chained: each implementation receives the value the previous one returned (None keeps it);
  wrappers see the final value. `aegis_pre_spawn` fails closed (an exception refuses the spawn, naming the plugin);
  `aegis_pre_turn` and `aegis_system_prompt` fail open (logged, that change skipped).
- **Observers**: every implementation runs; one that raises is logged with its plugin's name and never stops the
  kernel or the other observers.

Hooks for features that do not exist yet — group reducers (`aegis_register_reducers`), schedule triggers
(`aegis_register_triggers`), workflows (`aegis_register_workflows`) and transports (`aegis_register_transports`) —
arrive with the plugins that own them (groups, scheduler, workflow, remote plane), declared through
`aegis_add_hookspecs`.
"""


def kind(name: str) -> str:
    if name.startswith("aegis_register") or name == "aegis_add_hookspecs":
        return "Registration"
    return "Mutators" if name.startswith("aegis_pre") or name == "aegis_system_prompt" else "Observers"


def installed_hooks(host: PluginHost) -> list[tuple[str, str, Any]]:
    """(owner, hook name, HookSpec) for every declared hook, the kernel's first, then by owner."""
    out = []
    for name, caller in vars(host.pm.hook).items():
        spec = getattr(caller, "spec", None)
        if spec is not None and name.startswith("aegis_"):
            out.append((host.spec_owners.get(name, "?"), name, spec))
    line = lambda spec: inspect.unwrap(spec.function).__code__.co_firstlineno  # noqa: E731
    out.sort(key=lambda item: (item[0] != KERNEL_OWNER, item[0], line(item[2])))
    return out


def signature(name: str, spec: Any) -> str:
    return f"{name}({', '.join(spec.argnames)})"


def render(host: PluginHost) -> str:
    out = [HEADER]
    hooks = installed_hooks(host)
    for owner in dict.fromkeys(owner for owner, _, _ in hooks):
        out.append(f"## {owner}\n")
        for title in ("Registration", "Mutators", "Observers"):
            mine = [(n, s) for o, n, s in hooks if o == owner and kind(n) == title]
            if not mine:
                continue
            out.append(f"### {title}\n")
            for name, spec in mine:
                out.append(f"#### `{signature(name, spec)}`\n")
                doc = inspect.cleandoc(spec.function.__doc__ or "").split(".. versionadded::")[0].strip()
                out.append(doc + "\n")
    return "\n".join(out)


def main() -> None:
    target = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"
    target.write_text(render(load_plugins()))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
