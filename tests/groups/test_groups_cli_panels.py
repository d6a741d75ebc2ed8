"""``aegis group …`` against a real ``aegis serve`` (thin clients over the control socket), and the
group tab's text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from gkit import call, wait_until

from aegis_groups.panels import tab_text
from aegis_groups.runtime import GroupRuntime


def aegis(project, *args):
    return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=project, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.e2e
def test_group_verbs_spawn_broadcast_wait_show_list_dissolve(tmp_path):
    pytest.importorskip("aegis_scripted", reason="the scripted agent is not installed")
    from test_groups_e2e import CONFIG, Serve, reap_orphans

    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    out = aegis(project, "group", "list")
    assert out.returncode == 1 and "aegis group list:" in out.stderr  # nothing owns the project
    serve = Serve(project)
    serve.start()
    try:
        out = aegis(project, "group", "spawn", "panel", "--preset", "audit", "--json")
        assert out.returncode == 0, out.stderr
        members = json.loads(out.stdout)["members"]
        assert len(members) == 3
        out = aegis(project, "group", "broadcast", "panel", "@reply aye", "--boundaries", "none", "--wait", "--json")
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["reduced"] == {h: "aye" for h in members}
        text = aegis(project, "group", "show", "panel").stdout
        assert "MEMBERS" in text and all(h in text for h in members) and "complete" in text
        assert "panel" in aegis(project, "group", "list").stdout
        out = aegis(project, "group", "broadcast", "panel", "@reply again")
        assert out.returncode == 0 and out.stdout.startswith("broadcast ")
        out = aegis(project, "group", "wait", "panel", "--any", "--json")
        assert json.loads(out.stdout)["winner"] in members
        out = aegis(project, "group", "dissolve", "panel", "--json")
        assert sorted(json.loads(out.stdout)["closed"]) == sorted(members)
        assert json.loads(aegis(project, "group", "list", "--json").stdout)["groups"] == []
    finally:
        serve.stop()
        reap_orphans(project / ".aegis" / "state")


@pytest.mark.trio
async def test_the_group_tab_shows_members_the_current_broadcast_and_recent_ones(gdriver, kernel):
    rt = kernel.service(GroupRuntime)
    assert "no groups" in tab_text(rt)
    out = await call(kernel, "aegis_group_spawn", name="audit", profiles=["member", "other"])
    a, b = out["members"]
    for h in (a, b):
        await kernel.sessions.get(h).wait_for(lambda s: s.state == "ready")
    gdriver.plan[b] = "hang"
    await call(kernel, "aegis_group_broadcast", name="audit", objective="first question")
    await wait_until(lambda: a in rt.groups["audit"].current.replies)
    text = tab_text(rt)
    assert "■ audit" in text and "Members" in text and "Current broadcast" in text
    assert f"● {a}" in text and f"◐ {b}" in text  # state dots: ready, working
    assert "1/2 answered · first question" in text
    await call(kernel, "aegis_group_wait_all", name="audit", timeout=0)
    text = tab_text(rt)
    assert "Recent broadcasts" in text and "timed_out" in text and "1/2 first question" in text


class StubRuntime:
    """What the tab reads: ``groups``, ``group_info`` and ``subscribe``."""

    def __init__(self) -> None:
        self.groups: dict = {}
        self.listeners: list = []

    def subscribe(self, listener):
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def group_info(self, group, detail=False):
        return {"name": group.name,
                "members": [{"handle": "brisk-curie", "profile": "member", "state": "ready", "answered": "yes"}],
                "current": None, "recent": [], "left": []}


def test_the_group_tab_renders_in_textual_and_redraws_on_every_change():
    pytest.importorskip("textual")
    import asyncio
    from types import SimpleNamespace

    from textual.app import App

    from aegis_groups.panels import group_tab

    rt = StubRuntime()
    kernel = SimpleNamespace(find_service=lambda kind: rt)

    class Host(App):
        def compose(self):
            yield group_tab(self, kernel)

    async def main() -> None:
        app = Host()
        async with app.run_test() as pilot:
            await pilot.pause()
            tab = app.query_one("#group-tab")
            assert "no groups" in str(tab.render()) and len(rt.listeners) == 1
            rt.groups["audit"] = SimpleNamespace(name="audit")
            rt.listeners[0]("audit")  # what GroupRuntime._changed does
            await pilot.pause()
            assert "■ audit" in str(tab.render()) and "● brisk-curie" in str(tab.render())
        assert rt.listeners == []  # unsubscribed when the tab went away

    asyncio.run(main())


@pytest.mark.trio
async def test_the_group_tab_is_contributed_through_the_tuis_panel_hook(gdriver, kernel):
    pytest.importorskip("aegis_tui")
    spec = kernel.plugins.registry.objects("panels")["groups"]
    assert (spec["kind"], spec["key"], spec["title"]) == ("tab", "f6", "groups")
    assert kernel.plugins.registry["panels"]["groups"].owner == "groups"


def test_an_attached_tab_polls_the_owners_group_status():
    pytest.importorskip("textual")
    import asyncio

    from textual.app import App

    from aegis_groups.panels import group_tab

    answers = {"aegis_group_list": {"groups": [{"name": "audit"}]},
               "aegis_group_status": {"name": "audit", "members": [
                   {"handle": "brisk-curie", "profile": "member", "state": "working", "answered": "no"}],
                   "current": {"broadcast_id": "b1", "by": "agent:pm", "answered": [], "members": ["brisk-curie"],
                               "objective": "audit PR 214"}, "recent": []}}
    calls = []

    class Host(App):
        remote = object()  # attached

        def compose(self):
            yield group_tab(self, None)

        async def call_op(self, operation, **args):
            calls.append(operation)
            return answers[operation]

        def in_kernel(self, fn):
            asyncio.get_running_loop().create_task(fn())
            return True

    async def main() -> None:
        app = Host()
        async with app.run_test() as pilot:
            tab = app.query_one("#group-tab")
            for _ in range(200):  # until the first poll has drawn (generous; fails only if it never does)
                await pilot.pause()
                if "■ audit" in str(tab.render()):
                    break
            text = str(tab.render())
            assert "◐ brisk-curie" in text and "0/1 answered · audit PR 214" in text
            assert calls[:2] == ["aegis_group_list", "aegis_group_status"]

    asyncio.run(main())
