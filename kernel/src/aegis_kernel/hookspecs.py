"""Every Aegis hook, grouped by lifecycle. Each docstring is the hook's contract.

Plugins implement hooks as module-level functions decorated with ``aegis_kernel.hookimpl`` in the
module named by their ``aegis`` entry point. Hooks are synchronous (pluggy has no async): anything
long-running is registered as a *service* that the kernel runs in its own nursery. A hookimpl never
starts tasks or threads.

Registration hooks receive a ``register`` callback instead of returning values: the kernel validates
each name, refuses duplicates (naming both owners) and records which distribution registered what,
for ``aegis plugins list``. All registration hooks are called once, when the kernel is built, and all
results are collected (no firstresult).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .drivers import Launch, SpawnSpec
    from .events import TurnResult
    from .sessions import Session
    from .delivery import Envelope

hookspec = pluggy.HookspecMarker("aegis")

# --- registration ---------------------------------------------------------------------------------


@hookspec
def aegis_register_config_sections(register: Any) -> None:
    """Declare the config section this plugin owns.

    Call ``register(name, cls)``: ``name`` is the top-level key in ``.aegis.yaml`` (and the overlay
    folder ``.aegis/<name>/``), ``cls`` a frozen attrs class the section is structured into, strictly.
    A section declared twice is refused. All results are collected.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_drivers(register: Any) -> None:
    """Contribute agent drivers.

    Call ``register(driver)`` with an ``aegis_kernel.drivers.Driver`` instance; ``driver.name`` is the
    provider key used in agent profiles (``provider: claude-code``).

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_operations(register: Any) -> None:
    """Contribute operations (exposed to agents as MCP tools, and to the CLI and TUI).

    Call ``register(name, handler, description, params=None)``: ``name`` must match
    ``aegis_[a-z][a-z0-9_]*``; ``handler`` is ``async def handler(ctx, **arguments)`` or a lazy
    ``"package.module:function"`` reference imported on first call (keeps registration cheap);
    ``params`` is a JSON-schema object (see ``aegis_kernel.operations.params``).

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_services(register: Any) -> None:
    """Contribute long-running services.

    Call ``register(name, service)`` where ``service`` has
    ``async def run(self, kernel, *, task_status=trio.TASK_STATUS_IGNORED)``, or is a lazy
    ``"package.module:factory"`` reference called with no arguments when the kernel starts. The kernel starts each
    with ``nursery.start`` in registration order; ``task_status.started()`` means ready. Cancelling
    the kernel cancels every service.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_cli(register: Any) -> None:
    """Contribute ``aegis`` subcommands.

    Call ``register(name, help, setup, run)``: ``setup(parser)`` adds arguments to an argparse
    sub-parser; ``run(args) -> int`` runs the verb and returns the exit code. Keep imports inside
    ``setup``/``run`` so ``aegis --version`` stays fast.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_event_types(register: Any) -> None:
    """Contribute event types the plugin writes to transcripts or journals.

    Call ``register(cls, name=None)`` with a frozen attrs class; ``name`` is its tag in records
    (default: the class name; prefix it with your plugin, e.g. ``"canvas.Stroke"``). Called when the
    kernel is built, all results collected. A refused type (a tag another class owns, a non-attrs
    class) is logged naming the class and skipped; ``register`` never raises, so the plugin's other
    types and other plugins' types still register. A record whose type is not registered (its plugin
    is uninstalled) is kept verbatim as ``aegis_kernel.events.UnknownEvent``, never dropped.

    .. versionadded:: 0.2
    """


@hookspec
def aegis_register_reducers(register: Any) -> None:
    """Contribute group reducers: ``register(name, fn)``, ``fn(replies: dict[str, str]) -> Any``.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_panels(register: Any) -> None:
    """Contribute TUI panels: ``register(name, factory, kind="tab"|"strip"|"modal", key=None, title="")``.

    ``factory(app, kernel)`` returns a Textual widget (a ``Screen`` for ``kind="modal"``); ``key`` is an
    optional binding that opens it, installed as a priority binding. The TUI knows no primitive by
    name: queue strips and dashboards arrive through this hook.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_transports(register: Any) -> None:
    """Contribute transports that carry work between machines: ``register(name, transport)``.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_triggers(register: Any) -> None:
    """Contribute schedule triggers (cron, fire_at, …): ``register(name, trigger)``.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_workflows(register: Any) -> None:
    """Contribute named workflows: ``register(name, fn)`` with ``async def fn(engine, **kwargs)``.

    .. versionadded:: 0.1
    """


# --- mutators -------------------------------------------------------------------------------------


@hookspec
def aegis_pre_spawn(spec: SpawnSpec, launch: Launch) -> Launch | None:
    """Called before an agent process is started, after the driver built its launch.

    Return a new ``Launch`` (argv, env, cwd) to replace it, or None to keep it. Implementations run
    in pluggy's order (last registered first; ``tryfirst``/``trylast`` adjust) and each sees the
    launch as rewritten by the ones before it. Raise ``aegis_kernel.drivers.SpawnRefused(reason)`` to
    refuse the spawn: the session fails with that reason.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_pre_turn(session: Session, text: str) -> str | None:
    """Called before a turn's text is sent to the agent (user input or a batch of envelopes).

    Return replacement text, or None to keep it. Composed like ``aegis_pre_spawn``: each
    implementation sees the text as the previous one left it.

    .. versionadded:: 0.1
    """


# --- observers ------------------------------------------------------------------------------------


@hookspec
def aegis_session_started(session: Session) -> None:
    """A session's agent process is up and ready for its first turn. All results ignored.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_session_state_changed(session: Session, old: str, new: str) -> None:
    """A session moved between states (starting, ready, working, input-required, error, closed).

    .. versionadded:: 0.1
    """


@hookspec
def aegis_turn_finished(session: Session, result: TurnResult, final_text: str) -> None:
    """A turn ended. ``final_text`` is the agent's whole final message of the turn (coalesced).

    .. versionadded:: 0.1
    """


@hookspec
def aegis_envelope_delivered(session: Session, envelope: Envelope) -> None:
    """An envelope was handed to the agent as (part of) a turn.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_session_closed(session: Session, reason: str) -> None:
    """A session ended (closed by someone, or its process died). Called once per session.

    .. versionadded:: 0.1
    """
