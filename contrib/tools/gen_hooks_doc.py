"""Regenerate docs/hooks.md from aegis_kernel.hookspecs (run after changing a hookspec).

Usage: .venv/bin/python contrib/tools/gen_hooks_doc.py
"""

from __future__ import annotations

import inspect
from pathlib import Path

from aegis_kernel import hookspecs

HEADER = """# Hooks

Every hook Aegis calls, with its exact signature. Implement them as module-level functions decorated
with `aegis_kernel.hookimpl` in the module your `aegis` entry point names. The contracts below are the
docstrings of `aegis_kernel/hookspecs.py` (regenerate with `contrib/tools/gen_hooks_doc.py`);
`tests/kernel/test_docs.py` fails when a hook is missing here.
"""


def group(name: str) -> str:
    if name.startswith("aegis_register"):
        return "Registration"
    return "Mutators" if name.startswith("aegis_pre") else "Observers"


def main() -> None:
    hooks = [(n, f) for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("aegis_")]
    hooks.sort(key=lambda item: item[1].__code__.co_firstlineno)
    out = [HEADER]
    for title in ("Registration", "Mutators", "Observers"):
        out.append(f"## {title}\n")
        for name, fn in hooks:
            if group(name) != title:
                continue
            out.append(f"### `{name}({', '.join(inspect.signature(fn).parameters)})`\n")
            out.append(inspect.cleandoc(fn.__doc__ or "").split(".. versionadded::")[0].strip() + "\n")
    target = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"
    target.write_text("\n".join(out))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
