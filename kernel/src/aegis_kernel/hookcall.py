"""How the kernel calls hooks: always through pluggy (``pm.hook``), with each failure pinned on its plugin.

Every call below is one ``pm.hook.<name>`` call (so argument subsets, ``tryfirst``/``trylast``,
``wrapper=True``/``hookwrapper=True`` and hook-call monitoring — ``AEGIS_TRACE_HOOKS=1`` — work as
pluggy documents). Inside it the hook's *wrappers* wrap one temporary step (``HookCaller.call_extra``)
that calls each plain implementation in pluggy's order (last registered first, ``tryfirst`` before,
``trylast`` after), each through its own ``pm.subset_hook_caller``. That is what lets the kernel
know which plugin raised, keep going past a broken observer, and hand a mutator's value from one
implementation to the next. (A plugin is one unit here: if one plugin implements a hook both as a wrapper
and, through ``specname``, as a plain implementation, its wrapper wraps only its own implementation.)

- :func:`notify` — observers: every implementation runs; one that raises is logged with its plugin's
  name and the others still run. Never raises. Without wrappers (the common case) this is a single
  plain ``pm.hook.<name>(...)`` call; the one-by-one calls happen only after a failure.
- :func:`chain` — mutators: each implementation receives the value the previous one returned
  (``None`` keeps it); wrappers see the final value (``value = yield``) and may return another.
  ``fail_closed=True``: the first exception is re-raised as :class:`HookFailed` naming the plugin;
  otherwise the broken implementation is logged and skipped.
- :func:`call_plugin` — one plugin's implementation of a hook (registration hooks: the ``register``
  callback is per plugin so registrations are attributed).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import pluggy

log = logging.getLogger("aegis.hooks")


class HookFailed(Exception):
    """An implementation of ``hook`` in plugin ``plugin`` raised ``error`` (a fail-closed hook)."""

    def __init__(self, hook: str, plugin: str, error: BaseException) -> None:
        super().__init__(f"{hook} of plugin {plugin!r} failed: {type(error).__name__}: {error}")
        self.hook, self.plugin, self.error = hook, plugin, error


def _is_wrapper(impl: Any) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)


def _culprit(exc: BaseException, impls: list[Any]) -> str:
    """The plugin whose implementation's frame is deepest in ``exc``'s traceback ("?" if none)."""
    codes = {}
    for impl in impls:
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    culprit, tb = "?", exc.__traceback__
    while tb is not None:
        culprit = codes.get(tb.tb_frame.f_code, culprit)
        tb = tb.tb_next
    return culprit


#: subset callers by plugin manager, then (hook, removed plugins): building one per call cost ~0.1 ms
#: (measured in the queue bench: three mutator chains per spawn); a pluggy subset caller filters at
#: call time and holds the removed plugins, so a cached one stays right as plugins come and go
_subsets: weakref.WeakKeyDictionary[pluggy.PluginManager, dict[tuple[str, tuple[int, ...]], Any]] = \
    weakref.WeakKeyDictionary()


def _subset(pm: pluggy.PluginManager, name: str, remove: list[Any]) -> Any:
    cache = _subsets.setdefault(pm, {})
    key = (name, tuple(id(p) for p in remove))
    caller = cache.get(key)
    if caller is None:
        caller = cache[key] = pm.subset_hook_caller(name, remove_plugins=remove)
    return caller


def _one(pm: pluggy.PluginManager, name: str, impl: Any, impls: list[Any], kwargs: dict[str, Any]) -> Any:
    others = [i.plugin for i in impls if i.plugin is not impl.plugin]
    return _subset(pm, name, others)(**kwargs)


def _around(pm: pluggy.PluginManager, name: str, kwargs: dict[str, Any], step: Any) -> tuple[Any, list[Any]]:
    """One ``pm.hook.<name>`` call: the hook's wrappers around ``step(plain_impls)``."""
    impls = getattr(pm.hook, name).get_hookimpls()
    plain = [i for i in reversed(impls) if not _is_wrapper(i)]  # pluggy calls the list back to front
    outer = _subset(pm, name, [i.plugin for i in plain])

    def run_plain() -> Any:
        return step(plain, impls)

    return outer.call_extra([run_plain], kwargs), impls


def notify(pm: pluggy.PluginManager, name: str, /, **kwargs: Any) -> None:
    """Call observer hook ``name``; a raising implementation is logged with its plugin's name.

    Fast path (no wrappers, the common case): one plain ``pm.hook.<name>(...)`` call; only when it
    raises are the implementations after the failed one called one by one.
    """
    caller = getattr(pm.hook, name)
    impls = caller.get_hookimpls()
    if not any(_is_wrapper(i) for i in impls):
        try:
            caller(**kwargs)
            return
        except Exception as exc:  # noqa: BLE001 - one plugin's observer never breaks the kernel or the others
            culprit = _culprit(exc, impls)
            log.exception("%s observer of plugin %r failed; ignored", name, culprit)
        order = list(reversed(impls))
        failed = next((k for k, i in enumerate(order) if i.plugin_name == culprit), len(order) - 1)
        for impl in order[failed + 1:]:
            try:
                _one(pm, name, impl, impls, kwargs)
            except Exception:  # noqa: BLE001
                log.exception("%s observer of plugin %r failed; ignored", name, impl.plugin_name)
        return

    def step(plain: list[Any], impls: list[Any]) -> None:
        for impl in plain:
            try:
                _one(pm, name, impl, impls, kwargs)
            except Exception:  # noqa: BLE001 - one plugin's observer never breaks the kernel or the others
                log.exception("%s observer of plugin %r failed; ignored", name, impl.plugin_name)

    try:
        _around(pm, name, kwargs, step)
    except Exception as exc:  # noqa: BLE001 - a raising wrapper is logged like an observer
        impls = getattr(pm.hook, name).get_hookimpls()
        log.exception("%s observer of plugin %r failed; ignored", name, _culprit(exc, impls))


def chain(pm: pluggy.PluginManager, name: str, key: str, value: Any, /, *, fail_closed: bool,
          **kwargs: Any) -> Any:
    """Run mutator hook ``name``: argument ``key`` carries ``value`` from one implementation to the next.

    Returns the final value. ``fail_closed``: any exception (an implementation's or a wrapper's) is
    raised as :class:`HookFailed`; otherwise a raising implementation is logged and skipped and a
    raising wrapper leaves the value as the plain implementations made it. A fail-closed refusal
    stays a refusal even when a wrapper catches it (``try: return (yield) except Exception: ...``):
    the first failure is raised after the wrappers ran, whatever they returned.
    """
    current = {"value": value}
    failed: list[HookFailed] = []

    def step(plain: list[Any], impls: list[Any]) -> Any:
        for impl in plain:
            try:
                replaced = _one(pm, name, impl, impls, {**kwargs, key: current["value"]})
            except Exception as exc:
                if fail_closed:
                    failed.append(HookFailed(name, impl.plugin_name, exc))
                    raise failed[-1] from exc
                log.exception("%s hook of plugin %r failed; its change is skipped", name, impl.plugin_name)
                continue
            if replaced is not None:
                current["value"] = replaced
        return current["value"]

    try:
        result, _ = _around(pm, name, {**kwargs, key: value}, step)
    except HookFailed:
        raise
    except Exception as exc:
        plugin = _culprit(exc, getattr(pm.hook, name).get_hookimpls())
        if fail_closed:
            raise HookFailed(name, plugin, exc) from exc
        log.exception("%s wrapper of plugin %r failed; ignored", name, plugin)
        return current["value"]
    if failed:  # a wrapper swallowed the refusal: fail closed anyway
        raise failed[0]
    return current["value"] if result is None else result


def call_plugin(pm: pluggy.PluginManager, name: str, plugin: Any, /, **kwargs: Any) -> Any:
    """Call only ``plugin``'s implementation(s) of hook ``name`` (through ``pm.hook``); exceptions propagate."""
    impls = getattr(pm.hook, name).get_hookimpls()
    others = [i.plugin for i in impls if i.plugin is not plugin]
    return pm.subset_hook_caller(name, remove_plugins=others)(**kwargs)


def trace_to_log(pm: pluggy.PluginManager) -> None:
    """Log every hook call (name, argument names, implementations in call order) to ``aegis.hooks``."""

    def before(hook_name: str, impls: Any, kwargs: Any) -> None:
        order = [i.plugin_name for i in reversed(impls)]
        log.info("hook %s(%s) → %s", hook_name, ", ".join(kwargs), order)

    def after(outcome: Any, hook_name: str, impls: Any, kwargs: Any) -> None:
        if outcome.exception is not None:
            log.info("hook %s raised %s", hook_name, type(outcome.exception).__name__)

    pm.add_hookcall_monitoring(before, after)
