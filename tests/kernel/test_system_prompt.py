"""An agent's system prompt: the kernel's primer, then what plugins add (``aegis_system_prompt``), then the
profile's persona file."""

from __future__ import annotations

import pytest

from aegis_kernel import hookimpl
from aegis_kernel.testing import DriverPlugin, FakeDriver


class SpecDriver(FakeDriver):
    """A FakeDriver that keeps the spec of every agent it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.specs = []

    async def start(self, spec, launch, nursery):
        self.specs.append(spec)
        return await super().start(spec, launch, nursery)


class Fly:
    @hookimpl
    def aegis_system_prompt(self, text):  # an argument subset: no session
        return text + " Use aegis_fly to fly."


class Broken:
    @hookimpl
    def aegis_system_prompt(self, session, text):
        raise RuntimeError("oops")


class Handle:
    @hookimpl(trylast=True)
    def aegis_system_prompt(self, session, text):
        return text.replace("\u2709", f"\u2709[{session.handle}]")


@pytest.mark.trio
async def test_plugins_extend_the_primer_and_the_persona_comes_last(aegis_project, write_config, register_plugin,
                                                                    make_kernel):
    (aegis_project / "persona.md").write_text("You review code.")
    write_config("""\
        default_agent: fake
        agents:
          fake: {provider: fake, prompt: persona.md}
    """)
    driver = SpecDriver()
    for plugin in (DriverPlugin(driver), Fly(), Broken(), Handle()):
        register_plugin(plugin)
    async with make_kernel(disabled=["inbox"]) as kernel:
        session = await kernel.sessions.spawn(handle="brisk-curie", prompt="hi")
        await session.wait_for(lambda s: s.metrics.turns == 1)  # the broken plugin did not stop the spawn
    (spec,) = driver.specs
    assert spec.system_prompt.startswith("You are the agent 'brisk-curie' in Aegis")
    assert "turns starting with '\u2709[brisk-curie] from <sender>'" in spec.system_prompt
    assert "Use aegis_fly to fly." in spec.system_prompt
    assert spec.system_prompt.endswith("\n\nYou review code.")
    assert "aegis_meta" not in spec.system_prompt  # the kernel itself knows no aegis_meta
