"""An example plugin. Copy this folder, rename ``hello``, keep the shape.

- ``hello:`` config section (``greeting``, ``shout``), validated strictly by the kernel;
- ``aegis_hello`` operation: agents call it as an MCP tool, the CLI and TUI can too;
- ``aegis hello [NAME]`` CLI verb;
- a ``hello`` TUI panel (a tab) opened with ``ctrl+g``.

Keep this module import-light: ``aegis plugins list`` imports it. Import heavy things inside functions.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

from aegis_kernel import hookimpl


@frozen
class HelloSection:
    greeting: str = "Hello"
    shout: bool = False


def _greet(section: HelloSection | None, name: str) -> str:
    section = section or HelloSection()
    text = f"{section.greeting}, {name}!"
    return text.upper() if section.shout else text


@hookimpl
def aegis_register_config_sections(register: Any) -> None:
    register("hello", HelloSection)


async def _hello(ctx: Any, name: str = "world") -> dict[str, str]:
    return {"greeting": _greet(ctx.kernel.config.get("hello"), name), "caller": ctx.caller.tag}


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from aegis_kernel import params

    register("aegis_hello", _hello, "Say hello (an example tool).",
             params(name={"type": "string", "default": "world"}))


def _setup(parser: Any) -> None:
    parser.add_argument("name", nargs="?", default="world")


def _run(args: Any) -> int:
    from aegis_kernel import build_kernel

    kernel = build_kernel(args.project)
    print(_greet(kernel.config.get("hello"), args.name))
    return 0


@hookimpl
def aegis_register_cli(register: Any) -> None:
    register("hello", "print a greeting (example plugin)", _setup, _run)


def _panel(app: Any, kernel: Any) -> Any:
    from textual.widgets import Static

    return Static(_greet(kernel.config.get("hello"), "from a plugin panel"), id="hello-panel")


@hookimpl(optionalhook=True)  # declared by aegis-tui
def aegis_register_panels(register: Any) -> None:
    register("hello", _panel, kind="tab", key="ctrl+g", title="hello")
