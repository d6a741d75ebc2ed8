"""End to end: a real ``aegis serve``, real scripted ACP agents, a scripted producer that drives the group
through the real MCP plane; then kill -9 during a broadcast and a restart.

Every member first answers an earlier prompt (``early <n>``): those replies must never appear in a
broadcast's result. Members answer a broadcast with the directives of its objective.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")

from aegis_kernel import ControlError  # noqa: E402
from aegis_testkit.serve import ServeProcess, reap_orphans  # noqa: E402
from aegis_testkit.serve import wait_for as kit_wait_for  # noqa: E402

pytestmark = pytest.mark.e2e

CONFIG = """\
default_agent: producer
agents:
  producer:
    provider: scripted
  reviewer:
    provider: scripted
groups:
  presets:
    audit:
      profiles: [reviewer, reviewer, reviewer]
"""


class Serve(ServeProcess):
    """:class:`aegis_testkit.serve.ServeProcess` whose calls wait up to 120 s, and the readings below."""

    def call(self, operation: str, /, _timeout: float | None = 120, **params):
        return super().call(operation, _timeout, **params)

    # --- reading the serve ------------------------------------------------------------------------

    def events(self, handle: str) -> list[dict]:
        return self.call("aegis_transcript", handle=handle, limit=5000)["events"]

    def envelopes(self, handle: str, prefix: str) -> list[dict]:
        return [e for e in self.events(handle) if e["t"] == "EnvelopeReceived" and e["sender"].startswith(prefix)]

    def texts(self, handle: str) -> list[str]:
        return [e["text"] for e in self.events(handle) if e["t"] == "AssistantText" and not e.get("partial")]

    def state(self, handle: str) -> str | None:
        return next((s["state"] for s in self.call("aegis_sessions") if s["handle"] == handle), None)

    def idle(self, handle: str) -> bool:
        return next((s["state"] == "ready" and not s["pending"] for s in self.call("aegis_sessions")
                     if s["handle"] == handle), False)


def wait_for(predicate, timeout: float, what: str):
    """Poll until ``predicate()`` is truthy; fails only after the (generous) deadline."""
    return kit_wait_for(predicate, what, timeout=timeout, poll=0.05)


def tool_result(text: str, tool: str) -> dict:
    prefix = f"tool {tool} → "
    text = text.strip()
    assert text.startswith(prefix), text
    return json.loads(text[len(prefix):])


def mcp_call(tool: str, **args) -> str:
    return f"@call {tool} " + json.dumps(args)


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    yield project
    reap_orphans(project / ".aegis" / "state")


def spawn_group(serve: Serve) -> tuple[str, list[str]]:
    """A producer spawns the preset's three members through MCP; each member answers an early prompt."""
    producer = serve.call("aegis_spawn", agent="producer",
                          prompt=mcp_call("aegis_group_spawn", name="audit", preset="audit"))["handle"]
    wait_for(lambda: [g for g in serve.call("aegis_group_list")["groups"] if len(g["members"]) == 3], 30,
             "the group of three")
    members = [m["handle"] for m in serve.call("aegis_group_status", name="audit")["members"]]
    for i, handle in enumerate(members):
        wait_for(lambda: serve.idle(handle), 30, f"{handle} ready")
        serve.call("aegis_send", handle=handle, text=f"@reply early {i}")
    for i, handle in enumerate(members):
        wait_for(lambda: f"early {i}" in serve.texts(handle) and serve.idle(handle), 30, f"{handle}'s early answer")
    wait_for(lambda: serve.idle(producer), 30, "the producer idle")
    return producer, members


def test_broadcast_gather_wait_any_errors_callback_and_refusal_under_serve(project):
    serve = Serve(project)
    serve.start()
    try:
        producer, members = spawn_group(serve)
        spawned = serve.call("aegis_sessions")
        assert {s["handle"]: s["spawned_by"] for s in spawned if s["handle"] in members} == \
            {h: producer for h in members}

        # 1. the producer broadcasts and gathers with join_by_handle, all through MCP
        serve.call("aegis_send", handle=producer, text="\n".join([
            mcp_call("aegis_group_broadcast", name="audit", objective="@reply verdict: ship it",
                     output_format="one line", tool_guidance="none", boundaries="report only"),
            mcp_call("aegis_group_wait_all", name="audit", timeout=60, reducer="join_by_handle")]))
        texts = wait_for(lambda: [t for t in serve.texts(producer) if t.strip().startswith("tool aegis_group_wait_all")],
                         60, "the producer's wait_all")
        result = tool_result(texts[-1], "aegis_group_wait_all")
        assert result["reduced"] == {h: "verdict: ship it" for h in members}  # no 'early' reply counted
        assert result["timeouts"] == [] and result["errors"] == {}
        for handle in members:
            [env] = serve.envelopes(handle, "group:audit/broadcast:")
            assert env["sender"] == f"group:audit/broadcast:{result['broadcast_id']}"
            assert "verdict: ship it" in env["body"] and "report only" in env["body"]

        # 2. wait_any: two members are busy; the idle one wins; the others get the cancel envelope;
        #    a second broadcast while this one is open is refused naming it
        for handle in members[1:]:
            wait_for(lambda: serve.idle(handle), 30, f"{handle} idle")
            serve.call("aegis_send", handle=handle, text="@sleep 2\n@reply busy")
        wait_for(lambda: all(serve.state(h) == "working" for h in members[1:]), 30, "two busy members")
        out = serve.call("aegis_group_broadcast", name="audit", objective="@reply fastest")
        with pytest.raises(ControlError) as info:
            serve.call("aegis_group_broadcast", name="audit", objective="@reply again")
        assert out["broadcast_id"] in str(info.value)
        result = serve.call("aegis_group_wait_any", name="audit", timeout=60)
        assert result["winner"] == members[0] and result["reduced"] == "fastest"
        for handle in members[1:]:
            envs = wait_for(lambda: serve.envelopes(handle, "group:audit/cancel:"), 30, f"{handle}'s cancel")
            assert [(e["sender"], e["status"]) for e in envs] == \
                [(f"group:audit/cancel:{out['broadcast_id']}", f"superseded by {members[0]}")]
        assert not serve.envelopes(members[0], "group:audit/cancel:")

        # 3. a member that fails during the broadcast is in errors
        for handle in members:
            wait_for(lambda: serve.idle(handle), 30, f"{handle} idle")
        serve.call("aegis_send", handle=members[2], text="@sleep 0.5\n@fail the member broke")
        wait_for(lambda: serve.state(members[2]) == "working", 30, "the failing member busy")
        serve.call("aegis_group_broadcast", name="audit", objective="@reply still here")
        result = serve.call("aegis_group_wait_all", name="audit", timeout=60)
        assert result["reduced"] == {h: "still here" for h in members[:2]}
        assert list(result["errors"]) == [members[2]] and "failed" in result["errors"][members[2]]

        # 4. callback=true: the reduced result reaches the producer as one envelope
        serve.call("aegis_group_remove", name="audit", handles=[members[2]])
        serve.call("aegis_send", handle=producer, text=mcp_call(
            "aegis_group_broadcast", name="audit", objective="@reply called back", callback=True))
        envs = wait_for(lambda: [e for e in serve.envelopes(producer, "group:audit/broadcast:")
                                 if e["status"] == "complete"], 60, "the callback")
        wait_for(lambda: serve.idle(producer), 30, "the producer idle")
        [env] = [e for e in serve.envelopes(producer, "group:audit/broadcast:") if e["status"] == "complete"]
        assert env == envs[0]
        reduced = json.loads(env["body"].split("\n\n", 1)[1])
        assert reduced == {h: "called back" for h in members[:2]}
    finally:
        serve.stop()


def test_kill_9_during_a_broadcast_interrupts_it_tells_the_broadcaster_once_and_the_group_is_back(project):
    serve = Serve(project)
    serve.start()
    try:
        producer, members = spawn_group(serve)
        serve.call("aegis_send", handle=producer, text=mcp_call(
            "aegis_group_broadcast", name="audit", objective="@sleep 30\n@reply too late"))
        wait_for(lambda: all(serve.state(h) == "working" for h in members), 30, "every member on the broadcast")
        bid = serve.call("aegis_group_status", name="audit")["current"]["broadcast_id"]
        serve.kill9()
    finally:
        serve.kill9()
    reap_orphans(project / ".aegis" / "state")
    serve = Serve(project)
    serve.start()
    try:
        status = wait_for(lambda: (s := serve.call("aegis_group_status", name="audit"))["recent"] and s, 30,
                          "the group replayed and settled")
        assert [m["handle"] for m in status["members"]] == members and status["current"] is None
        assert status["recent"][0]["broadcast_id"] == bid and status["recent"][0]["status"] == "interrupted"
        envs = wait_for(lambda: serve.envelopes(producer, f"group:audit/broadcast:{bid}"), 30, "the interrupted note")
        wait_for(lambda: serve.idle(producer), 30, "the producer idle")
        envs = serve.envelopes(producer, f"group:audit/broadcast:{bid}")
        assert [e["status"] for e in envs] == ["interrupted"]
        # the members that were on it hold a passive note that it is moot (it waits for their next turn)
        for handle in members:
            wait_for(lambda: serve.state(handle) == "ready", 60, f"{handle} ready")
        # the group takes a broadcast again
        serve.call("aegis_group_broadcast", name="audit", objective="@reply back")
        result = serve.call("aegis_group_wait_all", name="audit", timeout=60)
        assert result["reduced"] == {h: "back" for h in members}
        for handle in members:  # the note rode along with that turn, once
            notes = serve.envelopes(handle, f"group:audit/cancel:{bid}")
            assert [n["status"] for n in notes] == ["interrupted by a restart of Aegis"]
    finally:
        serve.stop()
    serve.start()  # a clean restart tells the broadcaster nothing more
    try:
        wait_for(lambda: serve.call("aegis_group_status", name="audit")["recent"], 30, "the group again")
        wait_for(lambda: serve.idle(producer), 30, "the producer idle")
        assert [e["status"] for e in serve.envelopes(producer, f"group:audit/broadcast:{bid}")] == ["interrupted"]
    finally:
        serve.stop()
