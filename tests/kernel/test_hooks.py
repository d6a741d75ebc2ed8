"""Hooks go through pluggy: argument subsets, wrappers, ordering, tracing; mutators chain; pre-spawn
fails closed; a raising observer is logged with its plugin's name; plugins declare hooks of their own."""

from __future__ import annotations

import logging

import pluggy
import pytest

from aegis_kernel import hookimpl
from aegis_kernel.delivery import Envelope
from aegis_kernel.drivers import SpawnRefused
from aegis_kernel.plugins import load_plugins
from aegis_kernel.testing import DriverPlugin, FakeDriver

CONFIG = """\
default_agent: fake
agents:
  fake:
    provider: fake
"""


class RecordingDriver(FakeDriver):
    """A fake driver that keeps every launch it was asked to start."""

    def __init__(self) -> None:
        super().__init__()
        self.launches: list = []

    async def start(self, spec, launch, nursery):
        self.launches.append(launch)
        return await super().start(spec, launch, nursery)


@pytest.fixture
def fake(write_config, register_plugin):
    write_config(CONFIG)
    driver = RecordingDriver()
    register_plugin(DriverPlugin(driver))
    return driver


@pytest.mark.trio
async def test_pre_turn_takes_any_subset_of_arguments_and_each_sees_the_previous_text(fake, register_plugin,
                                                                                   make_kernel):
    class Shout:  # registered first: pluggy calls it last
        @hookimpl
        def aegis_pre_turn(self, text):
            return text.upper()

    class Sign:
        @hookimpl
        def aegis_pre_turn(self, session, text):
            return f"{text} (to {session.handle})"

    class Quote:
        @hookimpl(tryfirst=True)
        def aegis_pre_turn(self, text):
            return f"«{text}»"

    register_plugin(Shout())
    register_plugin(Quote())
    register_plugin(Sign())
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="ann", prompt="hello")
        await session.wait_for(lambda s: s.metrics.turns == 1)
        assert fake.processes[0].prompts == ["«HELLO» (TO ANN)"]


@pytest.mark.trio
async def test_a_wrapper_pre_spawn_sees_the_final_launch_and_may_replace_it(fake, register_plugin, make_kernel):
    class Tag:
        @hookimpl
        def aegis_pre_spawn(self, launch):
            return launch.with_env(TAG="1")

    class Sandbox:
        @hookimpl(wrapper=True)
        def aegis_pre_spawn(self, spec, launch):
            final = yield
            assert launch.env.get("TAG") is None  # the wrapper's argument is the driver's launch
            return final.with_env(SANDBOXED=f"{spec.handle}:{final.env['TAG']}")

    register_plugin(Sandbox())
    register_plugin(Tag())
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="box", prompt="hi")
        await session.wait_for(lambda s: s.metrics.turns == 1)
    assert fake.launches[0].argv == ("fake-agent", "box")
    assert fake.launches[0].env["TAG"] == "1" and fake.launches[0].env["SANDBOXED"] == "box:1"


@pytest.mark.trio
async def test_a_raising_pre_spawn_refuses_the_spawn_naming_the_plugin(fake, register_plugin, make_kernel):
    class Sandbox:
        @hookimpl
        def aegis_pre_spawn(self, spec, launch):
            raise KeyError("bwrap profile")

    class Harmless:
        @hookimpl
        def aegis_pre_spawn(self, launch):
            return launch.with_env(X="1")

    register_plugin(Sandbox(), name="sandbox")
    register_plugin(Harmless())
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="jail", prompt="hi")
        await session.wait_for(lambda s: s.state == "error")
        assert "spawn refused by plugin 'sandbox'" in session.error
        assert "KeyError" in session.error and "bwrap profile" in session.error
    assert fake.launches == []  # the agent never ran


@pytest.mark.trio
async def test_a_raising_pre_spawn_wrapper_and_a_deliberate_refusal_also_refuse(fake, register_plugin, make_kernel):
    class Wrapper:
        @hookimpl(wrapper=True)
        def aegis_pre_spawn(self, spec, launch):
            final = yield
            if spec.handle == "one":
                raise RuntimeError("wrapper bug")
            return final

    class Policy:
        @hookimpl
        def aegis_pre_spawn(self, spec):
            if spec.handle == "two":
                raise SpawnRefused("handle two is not allowed here")

    register_plugin(Wrapper(), name="wrapping")
    register_plugin(Policy(), name="policy")
    async with make_kernel() as kernel:
        one = await kernel.sessions.spawn(handle="one", prompt="hi")
        two = await kernel.sessions.spawn(handle="two", prompt="hi")
        await one.wait_for(lambda s: s.state == "error")
        await two.wait_for(lambda s: s.state == "error")
        assert "spawn refused by plugin 'wrapping'" in one.error and "wrapper bug" in one.error
        assert two.error == "spawn refused by plugin 'policy': handle two is not allowed here"
    assert fake.launches == []


@pytest.mark.trio
async def test_a_wrapper_that_swallows_a_refusal_does_not_let_the_agent_run(fake, register_plugin, make_kernel):
    class Sandbox:
        @hookimpl
        def aegis_pre_spawn(self, spec, launch):
            raise KeyError("bwrap profile")

    class CarelessTracer:  # a wrapper that "never breaks a spawn": it must not unsandbox one either
        @hookimpl(wrapper=True)
        def aegis_pre_spawn(self, spec, launch):
            try:
                return (yield)
            except Exception:
                return launch

    register_plugin(Sandbox(), name="sandbox")
    register_plugin(CarelessTracer(), name="tracer")
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(handle="jail", prompt="hi")
        await session.wait_for(lambda s: s.state == "error")
        assert "spawn refused by plugin 'sandbox'" in session.error and "bwrap profile" in session.error
    assert fake.launches == []  # the agent never ran


@pytest.mark.trio
async def test_a_raising_observer_is_logged_by_name_and_the_others_still_run(fake, register_plugin, make_kernel,
                                                                            caplog):
    seen: list[str] = []

    class Counter:
        @hookimpl
        def aegis_turn_finished(self, session, final_text):
            seen.append(final_text)

    class Broken:  # registered last: pluggy calls it first
        @hookimpl
        def aegis_turn_finished(self, session):
            raise RuntimeError("observer bug")

        @hookimpl
        def aegis_session_state_changed(self, new):
            raise RuntimeError("state observer bug")

    register_plugin(Counter())
    register_plugin(Broken(), name="broken")
    caplog.set_level(logging.ERROR, logger="aegis.hooks")
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(prompt="one")
        await session.wait_for(lambda s: s.metrics.turns == 1)
        kernel.deliver(session.handle, Envelope.new("user", "two"))
        await session.wait_for(lambda s: s.metrics.turns == 2)
        assert session.state == "ready"
    assert seen == ["fake reply to: one", "fake reply to: two"]
    failures = [r.getMessage() for r in caplog.records if r.name == "aegis.hooks"]
    assert any("aegis_turn_finished observer of plugin 'broken' failed" in m for m in failures)
    assert any("aegis_session_state_changed observer of plugin 'broken' failed" in m for m in failures)


@pytest.mark.trio
async def test_observer_wrappers_wrap_every_observer_and_a_raising_one_is_contained(fake, register_plugin,
                                                                                   make_kernel, caplog):
    calls: list[str] = []

    class Around:
        @hookimpl(wrapper=True)
        def aegis_session_closed(self, reason):
            calls.append("before")
            yield
            calls.append("after")
            raise RuntimeError("wrapper bug after the observers ran")

    class Plain:
        @hookimpl
        def aegis_session_closed(self, session, reason):
            calls.append(f"closed: {reason}")

    class Broken:
        @hookimpl
        def aegis_session_closed(self):
            raise RuntimeError("observer bug")

    register_plugin(Plain())
    register_plugin(Broken(), name="broken")
    register_plugin(Around(), name="around")
    caplog.set_level(logging.ERROR, logger="aegis.hooks")
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(prompt="hi")
        await session.wait_for(lambda s: s.metrics.turns == 1)
        await kernel.sessions.close(session.handle)
    assert calls == ["before", "closed: closed", "after"]  # the broken observer did not stop the plain one
    failures = [r.getMessage() for r in caplog.records if r.name == "aegis.hooks"]
    assert any("aegis_session_closed observer of plugin 'broken' failed" in m for m in failures)
    assert any("aegis_session_closed observer of plugin 'around' failed" in m for m in failures)


hookspec = pluggy.HookspecMarker("aegis")


class GreetSpecs:
    @hookspec(firstresult=True)
    def aegis_greet_peer(self, name: str) -> str | None:
        """Return a greeting for ``name`` (first non-None wins)."""


class Declarer:
    @hookimpl
    def aegis_add_hookspecs(self, pm):
        pm.add_hookspecs(GreetSpecs)


class Greeter:
    @hookimpl
    def aegis_greet_peer(self, name):
        return f"hello {name}"


@pytest.mark.parametrize("order", ["declarer first", "implementer first"])
def test_a_plugin_implements_a_hook_another_plugin_declares_in_any_load_order(order):
    plugins = [("declarer", Declarer()), ("greeter", Greeter())]
    if order == "implementer first":
        plugins.reverse()
    host = load_plugins(entry_points=False, extra=plugins)
    assert host.infos["greeter"].status == "enabled", host.infos["greeter"].error
    assert host.infos["greeter"].hooks == ["aegis_greet_peer"]
    assert host.spec_owners["aegis_greet_peer"] == "declarer"
    assert host.spec_owners["aegis_pre_spawn"] == "aegis-kernel"
    assert host.pm.hook.aegis_greet_peer(name="ann") == "hello ann"


def test_without_the_declaring_plugin_the_implementer_fails_and_optional_hooks_do_not():
    class Optional:
        @hookimpl(optionalhook=True)
        def aegis_greet_peer(self, name):
            return "maybe"

    host = load_plugins(entry_points=False, extra=[("greeter", Greeter()), ("optional", Optional())])
    assert host.infos["greeter"].status == "failed"
    assert "unknown hook(s) aegis_greet_peer" in host.infos["greeter"].error
    assert host.infos["optional"].status == "enabled"


def test_a_plugin_whose_add_hookspecs_raises_is_failed_alone():
    class Bad:
        @hookimpl
        def aegis_add_hookspecs(self, pm):
            raise RuntimeError("no specs today")

    host = load_plugins(entry_points=False, extra=[("bad", Bad()), ("declarer", Declarer()), ("greeter", Greeter())])
    assert host.infos["bad"].status == "failed" and "no specs today" in host.infos["bad"].error
    assert host.infos["greeter"].status == "enabled"


def test_the_tui_owns_the_panel_hook_and_collects_panels():
    host = load_plugins()
    assert host.spec_owners["aegis_register_panels"] == "aegis-tui"
    assert "queue-dashboard" in host.registry.objects("panels")
    assert host.registry["panels"]["queue-dashboard"].owner == "queue"
    # reducers, triggers, workflows and transports are declared by their features' plugins (where
    # installed), never by the kernel
    for gone, owner in (("reducers", "aegis-groups"), ("triggers", "aegis-scheduler"),
                        ("workflows", "aegis-workflow"), ("transports", "aegis-remote")):
        assert host.spec_owners.get(f"aegis_register_{gone}") in (None, owner)


def test_without_the_tui_panel_contributors_still_load(monkeypatch):
    monkeypatch.setenv("AEGIS_DISABLE_PLUGINS", "tui")
    host = load_plugins()
    assert host.infos["queue"].status == "enabled", host.infos["queue"].error
    assert host.registry.objects("panels") == {}


def test_trace_hooks_logs_every_call(monkeypatch, caplog):
    monkeypatch.setenv("AEGIS_TRACE_HOOKS", "1")
    caplog.set_level(logging.INFO, logger="aegis.hooks")
    host = load_plugins(entry_points=False, extra=[("declarer", Declarer()), ("greeter", Greeter())])
    host.pm.hook.aegis_greet_peer(name="ann")
    lines = [r.getMessage() for r in caplog.records if r.name == "aegis.hooks"]
    assert "hook aegis_greet_peer(name) → ['greeter']" in lines
    assert any(line.startswith("hook aegis_register_config_sections(register)") for line in lines)
