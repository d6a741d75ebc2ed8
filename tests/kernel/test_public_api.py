"""The curated public API: plugins import only from ``aegis_kernel`` (and its public submodules).

A plugin author reads ``aegis_kernel.__all__`` to know what they may rely on; first-party plugins,
drivers, the hello example and the testkit are held to the same rule so the list stays honest.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aegis_kernel

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "kernel" / "src" / "aegis_kernel" / "__init__.py"


def source_roots() -> list[Path]:
    """Every first-party source tree outside the kernel."""
    roots = [*sorted((ROOT / "plugins").glob("*/src")), *sorted((ROOT / "drivers").glob("*/src")),
             ROOT / "contrib" / "hello" / "src", ROOT / "testkit" / "src"]
    return [r for r in roots if r.is_dir()]


def private_imports(path: Path, base: Path, public: set[str], submodules: tuple[str, ...]) -> list[str]:
    """``file:line: what`` for every import in ``path`` that reaches past the public API (also under
    ``TYPE_CHECKING`` and inside functions)."""
    allowed_modules = {"aegis_kernel", *(f"aegis_kernel.{m}" for m in submodules)}
    found: list[tuple[int, str]] = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        bad: list[str] = []
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name.startswith("aegis_kernel.") and a.name not in allowed_modules]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "aegis_kernel":
                bad = [f"aegis_kernel.{a.name}" for a in node.names if a.name not in public and a.name not in submodules]
            elif node.module.startswith("aegis_kernel.") and node.module not in allowed_modules:
                bad = [node.module]
        found += [(node.lineno, f"{path.relative_to(base)}:{node.lineno}: {name}") for name in bad]
    return [hit for _, hit in sorted(found)]


def test_first_party_code_imports_only_the_public_api() -> None:
    public = set(aegis_kernel.__all__)
    offences = [hit for root in source_roots() for path in sorted(root.rglob("*.py"))
                for hit in private_imports(path, ROOT, public, aegis_kernel.PUBLIC_SUBMODULES)]
    assert not offences, "imports past aegis_kernel's public API (export the name in __init__.py):\n" + "\n".join(offences)


def test_the_checker_names_file_and_line(tmp_path: Path) -> None:
    """The walk above catches each form of reaching in, and lets the public forms through."""
    plugin = tmp_path / "probe.py"
    plugin.write_text(
        "from aegis_kernel import hookimpl, Envelope\n"
        "from aegis_kernel.testing import FakeDriver\n"
        "import aegis_kernel.client\n"
        "from aegis_kernel.sessions import Session\n"
        "def f():\n"
        "    import aegis_kernel.state\n"
        "    from aegis_kernel import events\n",
        encoding="utf-8",
    )
    hits = private_imports(plugin, tmp_path, set(aegis_kernel.__all__), aegis_kernel.PUBLIC_SUBMODULES)
    assert hits == [
        "probe.py:4: aegis_kernel.sessions",
        "probe.py:6: aegis_kernel.state",
        "probe.py:7: aegis_kernel.events",
    ]


def test_every_public_name_resolves() -> None:
    unresolved = [name for name in aegis_kernel.__all__ if not hasattr(aegis_kernel, name)]
    assert not unresolved
    assert aegis_kernel.hookimpl.project_name == "aegis"
    assert aegis_kernel.hookspec.project_name == "aegis"
    for name in aegis_kernel.PUBLIC_SUBMODULES:
        __import__(f"aegis_kernel.{name}")


def test_type_checkers_see_the_same_names() -> None:
    """``__init__.py``'s ``TYPE_CHECKING`` block declares exactly the lazily exported names."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    declared = set()
    for node in block.body:
        if isinstance(node, ast.ImportFrom):
            declared |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
        elif isinstance(node, ast.Assign):
            declared |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert {name for name in declared if not name.startswith("_")} == set(aegis_kernel.__all__) - {"__version__"}


def test_importing_the_package_stays_cheap() -> None:
    """``aegis --version`` imports ``aegis_kernel``: that alone loads none of trio, attrs or pluggy."""
    code = "import sys, aegis_kernel; print(sorted({'trio', 'attrs', 'pluggy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_plugin_guide_lists_every_public_name() -> None:
    """docs/plugins.md's "The public API" section names each export (and nothing that is not one)."""
    import re

    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text.split("## The public API", 1)[1].split("\nThe public submodules", 1)[0]
    table = section[section.index("| what | names |"):]
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", table))
    assert listed == set(aegis_kernel.__all__) - {"__version__"}
