"""The kernel's hooks, grouped by lifecycle. Each docstring is the hook's contract.

Plugins implement hooks as module-level functions decorated with ``aegis_kernel.hookimpl`` in the
module named by their ``aegis`` entry point. Hooks are synchronous (pluggy has no async): anything
long-running is registered as a *service* that the kernel runs in its own nursery. A hookimpl never
starts tasks or threads.

Only the kernel's own hooks are declared here. A plugin declares hooks of its own through
:func:`aegis_add_hookspecs` (the TUI's ``aegis_register_panels`` is one); hooks for features that do
not exist yet (group reducers, schedule triggers, workflows, transports) arrive with their plugins.
``docs/hooks.md`` lists every installed hook grouped by owner.

Every call goes through pluggy (``pm.hook``, see :mod:`aegis_kernel.hookcall`): implementations may
take any subset of the arguments, ``tryfirst``/``trylast`` order them, ``wrapper=True`` wraps them,
and ``AEGIS_TRACE_HOOKS=1`` logs every call to ``.aegis/state/aegis.log``.

Registration hooks receive a ``register`` callback instead of returning values: the kernel validates
each name, refuses duplicates (naming both owners) and records which distribution registered what,
for ``aegis plugins list``. They are called once per plugin when the kernel is built; a plugin whose
registration hook raises (or whose ``register`` call is refused) is marked ``failed`` and none of its
registrations are kept; the other plugins are unaffected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import argparse

    from .config import Config
    from .delivery import Envelope
    from .drivers import Driver, Launch, SpawnSpec
    from .events import TurnResult
    from .kernel import Kernel
    from .sessions import Session

hookspec = pluggy.HookspecMarker("aegis")


# --- the register callbacks (what a registration hook is handed) -------------------------------------


class RegisterConfigSection(Protocol):
    def __call__(self, name: str, type: Any, check: Callable[[Config], Iterable[Any]] | None = None) -> None: ...


class RegisterDriver(Protocol):
    def __call__(self, driver: Driver) -> None: ...


class RegisterOperation(Protocol):
    def __call__(self, name: str, handler: Callable[..., Awaitable[Any]] | str, description: str = "",
                 params: Mapping[str, Any] | None = None, *, callers: Iterable[str] | None = None,
                 check: Callable[..., Any] | str | None = None, stream: bool = False,
                 approval: Callable[..., Any] | str | None = None) -> None: ...


class RegisterService(Protocol):
    def __call__(self, name: str, service: Any, *, requires: Iterable[type | str] | None = None,
                 after: Iterable[type | str] | None = None) -> None: ...


class RegisterCli(Protocol):
    def __call__(self, name: str, help: str, setup: Callable[[argparse.ArgumentParser], None],
                 run: Callable[[argparse.Namespace], int | None]) -> None: ...


class RegisterEventType(Protocol):
    def __call__(self, cls: type, name: str | None = None) -> None: ...


# --- extending the seams ------------------------------------------------------------------------------


@hookspec
def aegis_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Declare hooks of your own (as pytest's ``pytest_addhooks``).

    :param pm: the plugin manager; call ``pm.add_hookspecs(module_or_class)`` with your hookspecs
        (marked with ``pluggy.HookspecMarker("aegis")``; name them ``aegis_<verb>_<noun>``).

    When: once, after every enabled plugin is registered and before any other hook is called, so a
    plugin may implement a hook another plugin declares whatever their load order. A registration
    hook a plugin declares can be collected into ``kernel.plugins.registry`` like the kernel's own
    (mark it with ``aegis_kernel.registration_hook(kind, build)``).
    Results: none (each implementation is called once). Raises: the plugin is marked ``failed``; a
    plugin implementing a hook nobody declared is marked ``failed`` too (after all hooks are added).

    .. versionadded:: 0.2
    """


# --- registration ---------------------------------------------------------------------------------


@hookspec
def aegis_register_config_sections(register: RegisterConfigSection) -> None:
    """Declare the config section this plugin owns.

    :param register: ``register(name, type, check=None)``: ``name`` is the top-level key in
        ``.aegis.yaml`` (and the overlay folder ``.aegis/<name>/``); ``type`` the frozen attrs class (or
        type) the section is structured into, strictly; ``check(config)`` an optional semantic rule
        yielding ``(key path, message)`` issues.

    When: once per plugin, when the kernel is built (before the config is read). Results: every
    plugin's sections are collected; a section declared twice is refused naming both plugins.
    Raises: the plugin is marked ``failed`` and none of its registrations are kept.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_drivers(register: RegisterDriver) -> None:
    """Contribute agent drivers.

    :param register: ``register(driver)`` with an ``aegis_kernel.Driver``; ``driver.name`` is
        the provider key used in agent profiles (``provider: claude-code``).

    When: once per plugin, when the kernel is built. Results: collected; a provider key registered
    twice is refused naming both plugins. Raises: the plugin is marked ``failed``, nothing kept.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_operations(register: RegisterOperation) -> None:
    """Contribute operations (exposed to agents as MCP tools, and to the CLI and TUI).

    :param register: ``register(name, handler, description, params=None, *, callers=None, check=None,
        stream=False, approval=None)``: ``name`` must match ``aegis_[a-z][a-z0-9_]*``; ``handler`` is
        ``async def handler(ctx, **arguments)`` (an async generator of batches when ``stream``) or a lazy
        ``"package.module:function"`` reference imported on first call (keeps registration cheap);
        ``params`` is a JSON-schema object (see ``aegis_kernel.params``); ``callers`` the
        principal kinds allowed to call it (``user``, ``agent``, ``peer``, ``telegram``; default user and
        agent); ``check(ctx, args) -> reason | None`` an optional refusal rule; ``approval(ctx, args) ->
        question | None`` what needs a person's answer when an agent calls it. The registry enforces all
        of it, for every transport (:class:`aegis_kernel.OperationRegistry`).

    When: once per plugin, when the kernel is built. Results: collected; a name registered twice is
    refused naming both plugins. Raises: the plugin is marked ``failed``, nothing kept.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_services(register: RegisterService) -> None:
    """Contribute long-running services.

    :param register: ``register(name, service, *, requires=None, after=None)``. ``service`` has
        ``async def run(self, kernel, *, task_status=trio.TASK_STATUS_IGNORED)`` and calls
        ``task_status.started(obj)`` when ready; ``obj`` (or the service itself when None) is what
        ``kernel.service(type(obj))`` returns while it runs. ``service`` may also be a lazy
        ``"package.module:factory"`` reference, called with no arguments when the kernel starts.
        ``requires``: services that must be present and are started first; ``after``: services
        started first *when installed*. Each entry is a type (a service class, or the type it
        publishes — a class attribute ``provides``) or a ``"module:QualName"`` string naming one
        without importing it. Both default to the service's class attributes of the same names.

    When: once per plugin, when the kernel is built; the services start when the kernel runs, in
    dependency order (registration order otherwise), and stop in reverse order when it exits.
    Results: collected. Raises: the plugin is marked ``failed``, nothing kept. A missing ``requires``
    or a cycle is a ``ServiceError`` at start naming the plugins involved.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_cli(register: RegisterCli) -> None:
    """Contribute ``aegis`` subcommands.

    :param register: ``register(name, help, setup, run)``: ``setup(parser)`` adds arguments to an
        argparse sub-parser; ``run(args) -> int`` runs the verb and returns the exit code. Keep
        imports inside ``setup``/``run`` so ``aegis --version`` stays fast.

    When: once per plugin, whenever the ``aegis`` command line is built. Results: collected; a verb
    registered twice is refused naming both plugins. Raises: the plugin is marked ``failed``.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_register_event_types(register: RegisterEventType) -> None:
    """Contribute event types the plugin writes to transcripts or journals.

    :param register: ``register(cls, name=None)`` with a frozen attrs class; ``name`` is its tag in
        records (default: the class name; prefix it with your plugin, e.g. ``"canvas.Stroke"``).

    When: once, when the kernel is built. Results: all collected. A refused type (a tag another
    class owns, a non-attrs class) is logged naming the class and skipped; ``register`` never raises,
    so the plugin's other types and other plugins' types still register. A record whose type is not
    registered (its plugin is uninstalled) is kept verbatim as ``aegis_kernel.UnknownEvent``,
    never dropped. Raises: logged, the kernel starts anyway.

    .. versionadded:: 0.2
    """


# --- mutators (chained: each implementation sees the value the previous one returned) ---------------


@hookspec(firstresult=True)
def aegis_pre_spawn(spec: SpawnSpec, launch: Launch) -> Launch | None:
    """Called before an agent process is started, after the driver built its launch.

    :param spec: what is being started (handle, profile, cwd, system prompt, resume id).
    :param launch: the ``Launch`` (argv, env, cwd, mcp) as the implementations before this one left it.
    :returns: a new ``Launch`` to replace it, or None to keep it.

    When: every spawn (and respawn/resume) of an agent process. Chained, not collected: plain
    implementations run in pluggy's order (last registered first; ``tryfirst``/``trylast`` adjust),
    each seeing the launch the previous one returned; a ``wrapper=True`` implementation wraps them
    all (``launch = yield`` is the final launch; return it or a replacement).
    Raises: **fail-closed** — the spawn is refused and the session fails with
    ``spawn refused by plugin '<name>': <error>``. Raise ``aegis_kernel.SpawnRefused(reason)``
    to refuse deliberately; any other exception refuses too (a sandboxing plugin with a bug never lets
    an agent run unsandboxed).

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def aegis_pre_turn(session: Session, text: str) -> str | None:
    """Called before a turn's text is sent to the agent (user input or a batch of envelopes).

    :param session: the session about to start the turn.
    :param text: the turn's text as the implementations before this one left it.
    :returns: replacement text, or None to keep it.

    When: every turn. Chained like ``aegis_pre_spawn`` (each implementation sees the previous one's
    text; wrappers see the final text). Raises: **fail-open** — the error is logged with the plugin's
    name and that implementation's change is skipped; the turn goes ahead.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def aegis_system_prompt(session: Session, text: str) -> str | None:
    """Called when the kernel composes the system prompt of an agent it is about to start.

    :param session: the session whose agent starts (handle, profile, provider).
    :param text: the system prompt as the implementations before this one left it. It starts as the
        kernel's primer (who the agent is, how messages from others arrive); the profile's persona file
        (``prompt:``) is appended after every implementation ran.
    :returns: replacement text — usually ``text`` plus a sentence on how to use the tools the plugin
        gives agents (the inbox plugin's points at ``aegis_meta``) — or None to keep it.

    When: every start of an agent process (spawn, restart, resume), before the driver builds its
    launch. Chained like ``aegis_pre_turn``. Raises: **fail-open** — the error is logged with the
    plugin's name and that implementation's change is skipped; the spawn goes ahead.

    .. versionadded:: 0.1
    """


# --- observers (every implementation runs; one that raises is logged with its plugin's name, the ----
# --- others still run, and the kernel carries on) ---------------------------------------------------


@hookspec
def aegis_session_started(session: Session) -> None:
    """A session's agent process is up and ready for its first turn.

    :param session: the session.

    When: once per agent process start (a restored or resumed session fires it again). Results:
    ignored. Raises: logged with the plugin's name; the session and other observers are unaffected.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_session_state_changed(session: Session, old: str, new: str) -> None:
    """A session moved between states.

    :param session: the session.
    :param old: the previous state (``starting``, ``ready``, ``working``, ``input-required``,
        ``error``, ``closed``).
    :param new: the state it is in now.

    When: on every state change, synchronously, before anyone awaiting the session is woken.
    Results: ignored. Raises: logged with the plugin's name; the session carries on.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_turn_finished(session: Session, result: TurnResult, final_text: str) -> None:
    """A turn ended.

    :param session: the session whose turn ended.
    :param result: the driver's ``TurnResult`` (stop reason, error flag, usage, cost).
    :param final_text: the agent's whole final message of the turn (coalesced).

    When: once per turn, after the session is back to ``ready``. Results: ignored. Raises: logged
    with the plugin's name; other observers still see the turn.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_envelope_delivered(session: Session, envelope: Envelope) -> None:
    """An envelope was handed to the agent as (part of) a turn.

    :param session: the receiving session.
    :param envelope: the envelope (sender, body, id, task id).

    When: once per envelope, after the turn carrying it was sent. Results: ignored. Raises: logged
    with the plugin's name; delivery is not undone.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_session_closed(session: Session, reason: str) -> None:
    """A session ended (closed by someone, or its process died).

    :param session: the session.
    :param reason: why it ended, human-readable.

    When: once per session. Results: ignored. Raises: logged with the plugin's name.

    .. versionadded:: 0.1
    """


@hookspec
def aegis_config_changed(config: Config, old: Config, kernel: Kernel) -> None:
    """The project's configuration was replaced by a valid edit (live reload or an edit API call).

    :param config: the new configuration (every section structured).
    :param old: the configuration it replaces.
    :param kernel: the kernel whose config changed (``kernel.config is config``).

    When: after ``kernel.config`` is already the new one; an invalid edit never fires it (the last
    good config stays). Results: ignored. Raises: logged with the plugin's name; the new config stays.

    .. versionadded:: 0.2
    """
