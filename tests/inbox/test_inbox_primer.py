"""The inbox plugin provides ``aegis_meta``, so its primer sentence points agents at it."""

from __future__ import annotations

import pytest

from aegis_kernel.testing import DriverPlugin, FakeDriver

META = "Your tools prefixed aegis_ reach the other agents (call aegis_meta for a short briefing)."


class SpecDriver(FakeDriver):
    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []

    async def start(self, spec, launch, nursery):
        self.prompts.append(spec.system_prompt)
        return await super().start(spec, launch, nursery)


@pytest.mark.trio
@pytest.mark.parametrize("disabled,told", [((), True), (("inbox",), False)])
async def test_agents_are_told_about_aegis_meta_only_when_the_inbox_is_installed(
        write_config, register_plugin, make_kernel, disabled, told):
    write_config("default_agent: fake\nagents:\n  fake: {provider: fake}\n")
    driver = SpecDriver()
    register_plugin(DriverPlugin(driver))
    async with make_kernel(disabled=list(disabled)) as kernel:
        session = await kernel.sessions.spawn()
        await session.wait_for(lambda s: s.state == "ready")
    (prompt,) = driver.prompts
    assert prompt.startswith("You are the agent '")
    assert (META in prompt) is told
