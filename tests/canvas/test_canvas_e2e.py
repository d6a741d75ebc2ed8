"""End to end under a real ``aegis serve``: scripted agents (real ACP subprocesses) call the canvas
tools through the real MCP plane. A opens ``report-q3`` on ``vault/reports/q3.md`` and subscribes; B
writes section ``data``; A gets exactly one envelope whose counts are those of a diff of the section;
B's stale ``if_version`` is refused as ``conflict``; an edit by another process reaches A as
``written by user``; after kill -9 and a restart, a write by B still wakes A."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")

from canvas_testkit import SUMMARY_RE, Serve, reap_orphans, wait_for  # noqa: E402

from aegis_kernel.state import Ledger  # noqa: E402

pytestmark = pytest.mark.e2e

CONFIG = """\
default_agent: helper
agents:
  helper:
    provider: scripted
"""

OLD_DATA = "".join(f"row {i}\n" for i in range(10))
NEW_DATA = ("Q3 numbers came in stronger than projected\n" + "".join(f"row {i}\n" for i in range(10) if i not in (2, 3, 4))
            + "".join(f"extra {i}\n" for i in range(17)))


def canvas_envelopes(project: Path, handle: str) -> list[dict]:
    recs = Ledger.replay(project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl").records
    return [r["envelope"] for r in recs
            if r.get("op") == "queued" and r["envelope"]["sender"] == "canvas:report-q3"]


def heads(envelope: dict) -> list[dict]:
    return [SUMMARY_RE.match(line).groupdict() for line in envelope["body"].split("\n──\n", 1)[0].splitlines()]


def tool(op: str, **args) -> str:
    return f"@call {op} " + json.dumps(args)


def canvas(serve: Serve) -> dict:
    return next(c for c in serve.call("aegis_canvas_list")["canvases"] if c["canvas"] == "report-q3")


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    (project / "vault/reports").mkdir(parents=True)
    (project / "vault/reports/q3.md").write_text(f"# Q3 report\n\n## data\n{OLD_DATA}\n## notes\nkeep\n")
    yield project
    reap_orphans(project / ".aegis" / "state")


def test_two_scripted_agents_coauthor_a_canvas_under_serve_across_a_kill_9(project):
    serve = Serve(project)
    serve.start()
    try:
        serve.call("aegis_spawn", handle="pm", prompt="\n".join([
            tool("aegis_canvas_open", name="report-q3", file="vault/reports/q3.md", from_handle="pm"),
            tool("aegis_canvas_subscribe", name="report-q3", from_handle="pm")]))
        wait_for(lambda: serve.call("aegis_canvas_list")["canvases"] and "pm" in canvas(serve)["subscribers"],
                 "pm to open and subscribe")
        serve.call("aegis_spawn", handle="researcher", prompt=tool(
            "aegis_canvas_write_section", name="report-q3", section="data", content=NEW_DATA, if_version=0,
            from_handle="researcher"))
        wait_for(lambda: canvas(serve)["version"] == 1, "the researcher's write")
        [env] = wait_for(lambda: canvas_envelopes(project, "pm"), "pm's wake-up")
        unified = list(difflib.unified_diff(OLD_DATA.splitlines(), NEW_DATA.splitlines(), lineterm=""))
        plus = sum(1 for ln in unified if ln.startswith("+") and not ln.startswith("+++"))
        minus = sum(1 for ln in unified if ln.startswith("-") and not ln.startswith("---"))
        assert heads(env) == [{"section": "data", "writer": "agent:researcher", "added": str(plus),
                               "removed": str(minus)}]
        assert env["body"].split("\n──\n", 1)[1].startswith("Q3 numbers came in stronger than projected")
        assert canvas_envelopes(project, "researcher") == []  # the writer is not woken by its own write

        # a stale if_version: refused as conflict, nothing written
        before = (project / "vault/reports/q3.md").read_bytes()
        serve.call("aegis_handoff", target_handle="researcher", context=tool(
            "aegis_canvas_write_section", name="report-q3", section="data", content="overwrite", if_version=0))
        wait_for(lambda: "conflict" in json.dumps(serve.call("aegis_read_peer", handle="researcher")),
                 "the conflict in the researcher's transcript")
        assert (project / "vault/reports/q3.md").read_bytes() == before and canvas(serve)["version"] == 1

        # an edit by another process (once the serve's watcher covers the file's folder)
        wait_for(lambda: canvas(serve)["watched"], "the file to be watched")
        path = project / "vault/reports/q3.md"
        path.write_text(path.read_text().replace("keep\n", "keep\nadded by hand\n"))
        wait_for(lambda: len(canvas_envelopes(project, "pm")) == 2, "pm's wake-up for the hand edit")
        assert heads(canvas_envelopes(project, "pm")[1]) == [
            {"section": "notes", "writer": "user", "added": "1", "removed": "0"}]

        serve.kill()  # kill -9: no hook runs, nothing is flushed on the way out
        reap_orphans(project / ".aegis" / "state")
        serve.start()
        wait_for(lambda: {"pm", "researcher"} <= {s["handle"] for s in serve.call("aegis_list_sessions")},
                 "the sessions to be restored")
        assert canvas(serve)["subscribers"] == {"pm": None} and canvas(serve)["version"] == 2
        serve.call("aegis_handoff", target_handle="researcher", context=tool(
            "aegis_canvas_append_to_section", name="report-q3", section="data", content="after the restart"))
        wait_for(lambda: len(canvas_envelopes(project, "pm")) == 3, "pm's wake-up after the restart")
        assert heads(canvas_envelopes(project, "pm")[2]) == [
            {"section": "data", "writer": "agent:researcher", "added": "1", "removed": "0"}]
        assert "after the restart" in path.read_text()
    finally:
        serve.stop()
