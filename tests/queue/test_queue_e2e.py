"""End to end: a real ``aegis serve`` subprocess, real scripted ACP workers, a scripted producer that
enqueues through the real MCP plane. 50 tasks at max_parallel 4; then kill -9 with tasks in flight.

A probe plugin (installed into the serve through PYTHONPATH as a distribution with an ``aegis`` entry
point) writes every worker session start/close to a JSONL file, from which the maximum number of
live workers is computed exactly (not sampled).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")

from aegis_kernel.state import Ledger  # noqa: E402
from aegis_testkit.serve import ServeProcess, reap_orphans  # noqa: E402
from aegis_testkit.serve import wait_for as kit_wait_for  # noqa: E402

pytestmark = pytest.mark.e2e

PROBE = '''
import json, os, time
from aegis_kernel import hookimpl

_PATH = os.environ["AEGIS_QPROBE"]

def _write(kind, session):
    if session.profile_name == "worker":
        with open(_PATH, "a") as f:
            f.write(json.dumps({"kind": kind, "handle": session.handle, "t": time.monotonic()}) + "\\n")

@hookimpl
def aegis_session_started(session):
    _write("started", session)

@hookimpl
def aegis_session_closed(session, reason):
    _write("closed", session)
'''

CONFIG = """\
default_agent: producer
agents:
  producer:
    provider: scripted
  worker:
    provider: scripted
queues:
  work:
    agent: worker
    max_parallel: {max_parallel}
    timeout: 120
"""


def probe_site(tmp_path: Path) -> Path:
    site = tmp_path / "probe-site"
    info = site / "aegis_qprobe-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aegis-qprobe\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[aegis]\nqprobe = aegis_qprobe\n")
    (site / "aegis_qprobe.py").write_text(textwrap.dedent(PROBE))
    return site


def probed_serve(project: Path, site: Path, probe: Path) -> ServeProcess:
    """A serve of ``project`` with the probe plugin of ``site`` writing to ``probe``."""
    return ServeProcess(project, env={"PYTHONPATH": str(site), "AEGIS_QPROBE": str(probe)})


def max_live(probe: Path, ignore: frozenset[str] = frozenset()) -> int:
    live, peak = set(), 0
    for line in probe.read_text().splitlines() if probe.exists() else []:
        rec = json.loads(line)
        if rec["handle"] in ignore:
            continue
        if rec["kind"] == "started":
            live.add(rec["handle"])
            peak = max(peak, len(live))
        else:
            live.discard(rec["handle"])
    return peak


def queue_records(project: Path) -> list[dict]:
    return Ledger.replay(project / ".aegis" / "state" / "queues" / "work.jsonl").records


def callbacks(project: Path, handle: str) -> list[dict]:
    recs = Ledger.replay(project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl").records
    return [r["envelope"] for r in recs if r.get("op") == "queued" and r["envelope"]["sender"] == "queue:work"]


def delivered(project: Path, handle: str) -> list[str]:
    recs = Ledger.replay(project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl").records
    return [r["id"] for r in recs if r.get("op") == "delivered"]


def wait_for(predicate, timeout: float, what: str) -> None:
    kit_wait_for(predicate, what, timeout=timeout)


def enqueue_lines(payloads: list[str]) -> str:
    return "\n".join("@call aegis_enqueue " + json.dumps({"queue": "work", "payload": p}) for p in payloads)


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    yield project
    reap_orphans(project / ".aegis" / "state")


def test_fifty_tasks_max_parallel_four_every_callback_once_with_the_whole_final_message(project, tmp_path):
    (project / ".aegis.yaml").write_text(CONFIG.format(max_parallel=4))
    probe = tmp_path / "probe.jsonl"
    serve = probed_serve(project, probe_site(tmp_path), probe)
    serve.start()
    try:
        # each worker holds its slot ≥ 0.3 s so the producer's enqueues certainly saturate the 4 slots
        payloads = [f"@sleep 0.3\n@reply result {i} begins\n@reply and result {i} ends" for i in range(50)]
        info = serve.call("aegis_spawn", agent="producer", prompt=enqueue_lines(payloads))
        producer = info["handle"]
        try:
            wait_for(lambda: sum(r["event"] in ("completed", "failed", "cancelled")
                                 for r in queue_records(project)) == 50, 90, "50 terminal records")
        except AssertionError:
            recs = queue_records(project)
            done = {r["task_id"] for r in recs if r["event"] in ("completed", "failed", "cancelled")}
            stuck = [r for r in recs if r["event"] == "dispatched" and r["task_id"] not in done]
            sessions = serve.call("aegis_sessions")
            raise AssertionError(f"{len(done)} done; stuck: {stuck}; sessions: "
                                 f"{[(s['handle'], s['state'], s['error']) for s in sessions]}") from None
        wait_for(lambda: len(callbacks(project, producer)) >= 50, 30, "50 callbacks")
        records = queue_records(project)
        enqueued = {r["task_id"]: r for r in records if r["event"] == "enqueued"}
        assert len(enqueued) == 50 and all(r["producer"] == producer for r in enqueued.values())
        order = [r["payload"] for r in enqueued.values()]
        assert order == payloads  # the producer's order, FIFO
        terminal: dict[str, list] = {}
        for r in records:
            if r["event"] in ("completed", "failed", "cancelled"):
                terminal.setdefault(r["task_id"], []).append(r)
        assert {t: len(v) for t, v in terminal.items()} == {t: 1 for t in enqueued}
        assert all(v[0]["event"] == "completed" for v in terminal.values())
        dispatched = [r["task_id"] for r in records if r["event"] == "dispatched"]
        assert dispatched == list(enqueued)
        cbs = callbacks(project, producer)
        by_task: dict[str, list] = {}
        for env in cbs:
            by_task.setdefault(env["task_id"], []).append(env)
        assert {t: len(v) for t, v in by_task.items()} == {t: 1 for t in enqueued}
        for task_id, rec in enqueued.items():
            i = int(rec["payload"].split()[4])
            [env] = by_task[task_id]
            assert env["status"] == "ok"
            assert env["body"] == f"result {i} begins\nand result {i} ends"  # the whole message, not a chunk
        wait_for(lambda: set(delivered(project, producer)) >= {e["id"] for e in cbs}, 60, "callbacks delivered")
        assert len(delivered(project, producer)) == len(set(delivered(project, producer)))
        peak = max_live(probe)
        assert peak == 4, f"max live workers {peak}"
        wait_for(lambda: not [s for s in serve.call("aegis_sessions") if s["agent"] == "worker"], 20,
                 "every worker closed")
    finally:
        serve.stop()


def test_kill_9_with_tasks_pending_and_in_flight_loses_and_duplicates_nothing(project, tmp_path):
    (project / ".aegis.yaml").write_text(CONFIG.format(max_parallel=2))
    probe = tmp_path / "probe.jsonl"
    site = probe_site(tmp_path)
    serve = probed_serve(project, site, probe)
    serve.start()
    try:
        payloads = [f"@sleep 1.5\n@reply done {i}" for i in range(6)]
        info = serve.call("aegis_spawn", agent="producer", prompt=enqueue_lines(payloads))
        producer = info["handle"]

        def state() -> tuple[int, int]:
            recs = queue_records(project)
            return (sum(r["event"] == "enqueued" for r in recs), sum(r["event"] == "dispatched" for r in recs))

        wait_for(lambda: state() == (6, 2), 30, "6 enqueued, 2 in flight")
        status = serve.call("aegis_queue_status", queue="work")  # the serve's own view: no third dispatch
        assert (status["in_flight"], status["pending"], status["max_parallel"]) == (2, 4, 2) and state() == (6, 2)
        serve.kill9()  # kill -9: no clean shutdown of anything
    finally:
        serve.kill9()
    reap_orphans(project / ".aegis" / "state")
    assert max_live(probe) <= 2
    recs = queue_records(project)
    enqueued = [r["task_id"] for r in recs if r["event"] == "enqueued"]
    in_flight = [r["task_id"] for r in recs if r["event"] == "dispatched"]
    assert not [r for r in recs if r["event"] in ("completed", "failed", "cancelled")]

    stale = frozenset(r["worker"] for r in recs if r["event"] == "dispatched")
    probe = tmp_path / "probe-after-restart.jsonl"
    serve = probed_serve(project, site, probe)
    serve.start()
    try:
        assert producer in [s["handle"] for s in serve.call("aegis_sessions")]  # restored
        wait_for(lambda: sum(r["event"] in ("completed", "failed", "cancelled") for r in queue_records(project)) == 6,
                 60, "6 terminal records")
        wait_for(lambda: len(callbacks(project, producer)) >= 6, 30, "6 callbacks")
        wait_for(lambda: (lambda q: (q["pending"], q["in_flight"]))(serve.call("aegis_queue_status", queue="work"))
                 == (0, 0), 30, "the queue settled (nothing pending or in flight, every worker released)")
        recs = queue_records(project)
        terminal: dict[str, list] = {}
        for r in recs:
            if r["event"] in ("completed", "failed", "cancelled"):
                terminal.setdefault(r["task_id"], []).append(r)
        assert {t: len(v) for t, v in terminal.items()} == {t: 1 for t in enqueued}  # none lost, none twice
        for task_id in in_flight:
            [rec] = terminal[task_id]
            assert rec["event"] == "failed" and rec["error"].startswith("interrupted")
        for task_id in set(enqueued) - set(in_flight):
            assert terminal[task_id][0]["event"] == "completed"
        redispatched = [r["task_id"] for r in recs if r["event"] == "dispatched"][2:]
        assert redispatched == [t for t in enqueued if t not in in_flight]  # pending re-queued in order
        cbs = callbacks(project, producer)
        by_task: dict[str, list] = {}
        for env in cbs:
            by_task.setdefault(env["task_id"], []).append(env)
        assert {t: len(v) for t, v in by_task.items()} == {t: 1 for t in enqueued}
        for task_id in in_flight:
            env = by_task[task_id][0]
            assert env["status"] == "error" and env["body"].startswith("failed: interrupted: aegis restarted")
        wait_for(lambda: set(delivered(project, producer)) >= {e["id"] for e in cbs}, 60,
                 "callbacks delivered to the restored producer")
        # the workers of interrupted tasks that the restore brought back are closed again
        wait_for(lambda: not [s for s in serve.call("aegis_sessions") if s["agent"] == "worker"], 30,
                 "no worker left")
        # the restore brings back the killed run's workers (sessions.json lists them) and the queue
        # closes them; workers the queue dispatched never exceed max_parallel
        assert max_live(probe, ignore=stale) <= 2
    finally:
        serve.stop()


def test_kill_9_resumes_a_task_that_asked_for_it_in_its_agent_session(project, tmp_path):
    (project / ".aegis.yaml").write_text(CONFIG.format(max_parallel=2))
    site = probe_site(tmp_path)
    serve = probed_serve(project, site, tmp_path / "probe.jsonl")
    serve.start()
    try:
        lines = "\n".join("@call aegis_enqueue " + json.dumps({"queue": "work", "payload": p, "resume": r})
                          for p, r in (("@sleep 2\n@reply resumed work done", True), ("@sleep 2\n@reply x", False)))
        producer = serve.call("aegis_spawn", agent="producer", prompt=lines)["handle"]
        wait_for(lambda: sum(r["event"] == "worker_session" for r in queue_records(project)) == 1, 30,
                 "the resumable task's agent session recorded")
        serve.kill9()
    finally:
        serve.kill9()
    reap_orphans(project / ".aegis" / "state")
    [session_rec] = [r for r in queue_records(project) if r["event"] == "worker_session"]

    serve = probed_serve(project, site, tmp_path / "probe-after.jsonl")
    serve.start()
    try:
        wait_for(lambda: sum(r["event"] in ("completed", "failed") for r in queue_records(project)) == 2, 60,
                 "both tasks terminal")
        recs = queue_records(project)
        resumable, plain = [r["task_id"] for r in recs if r["event"] == "enqueued"]
        done = {r["task_id"]: r for r in recs if r["event"] in ("completed", "failed")}
        assert done[resumable]["event"] == "completed" and done[resumable]["result"] == "resumed work done"
        assert done[plain]["event"] == "failed" and done[plain]["error"].startswith("interrupted")
        [resumed] = [r for r in recs if r["event"] == "resumed"]
        assert resumed["task_id"] == session_rec["task_id"] == resumable
        assert resumed["resume_id"] == session_rec["resume_id"]  # the same agent session, reopened
        wait_for(lambda: len(callbacks(project, producer)) == 2, 30, "2 callbacks")
        by_task = {env["task_id"]: env for env in callbacks(project, producer)}
        assert by_task[resumable]["status"] == "ok" and by_task[resumable]["body"] == "resumed work done"
    finally:
        serve.stop()


def aegis(project: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=project, capture_output=True,
                          text=True, timeout=60, input=stdin)


def test_cli_verbs_against_a_running_serve_and_offline(project, tmp_path):
    (project / ".aegis.yaml").write_text(CONFIG.format(max_parallel=2) + "    budgets:\n      - {usd: 5, window: 24h}\n")
    serve = probed_serve(project, probe_site(tmp_path), tmp_path / "probe.jsonl")
    serve.start()
    try:
        out = aegis(project, "queue", "enqueue", "work", "hello there", "--wait")
        assert out.returncode == 0 and out.stdout.strip() == "scripted reply to: hello there", out.stderr
        out = aegis(project, "queue", "enqueue", "work", "@fail worker blew up", "--wait")
        assert out.returncode == 1 and "failed: the worker failed:" in out.stderr, out.stderr
        out = aegis(project, "queue", "enqueue", "work", "-", "--resume", stdin="@sleep 30\n@reply never\n")
        assert out.returncode == 0 and out.stdout.startswith("task#") and "dispatched to" in out.stdout
        task_id = out.stdout.split()[0].removeprefix("task#")
        assert [r.get("resume") for r in queue_records(project) if r["task_id"] == task_id][0] is True
        live_status = aegis(project, "queue", "status", task_id).stdout
        assert "transcript: .aegis/state/sessions/queue-work-" in live_status, live_status
        assert (project / live_status.split("transcript: ")[1].split()[0]).exists()
        wait_for(lambda: "in flight (1)" in aegis(project, "queue", "show", "work").stdout, 20, "the task in flight")
        shown = aegis(project, "queue", "show", "work").stdout
        assert "queue work · agent worker · max_parallel 2 · timeout 2m" in shown and f"task#{task_id}" in shown
        listed = aegis(project, "queue", "list").stdout
        assert listed.splitlines()[1].split()[:6] == ["work", "worker", "1/2", "0", "1", "1"]
        out = aegis(project, "queue", "cancel", task_id)
        assert out.returncode == 0 and out.stdout.strip() == f"task#{task_id} cancelled (was dispatched)"
        out = aegis(project, "queue", "cancel", task_id)
        assert out.returncode == 1 and "already finished (cancelled)" in out.stderr
        out = aegis(project, "queue", "status", "nope")
        assert out.returncode == 1 and "unknown task 'nope'" in out.stderr
        out = aegis(project, "queue", "enqueue", "nowhere", "x")
        assert out.returncode == 1 and "unknown queue 'nowhere' (queues: work)" in out.stderr
        budget = aegis(project, "budget", "list")
        assert budget.returncode == 0 and budget.stdout.splitlines()[1].split()[:3] == ["work", "usd", "24h"]
        status = aegis(project, "queue", "status", task_id, "--json")
        assert json.loads(status.stdout)["status"] == "cancelled"
    finally:
        serve.stop()
    offline = aegis(project, "queue", "show", "work")
    assert "✓1 ✗1 ⊘1" in offline.stdout and "aegis serve is not running" in offline.stdout
    log = aegis(project, "queue", "log", task_id)
    assert log.returncode == 0, log.stderr
    assert log.stdout.startswith(f"task#{task_id} · worker ") and "✉ from queue:work: @sleep 30" in log.stdout
    assert "· ready → working" in log.stdout and log.stdout.rstrip().endswith("→ closed")
    raw = [json.loads(line) for line in aegis(project, "queue", "log", task_id, "--json").stdout.splitlines()]
    assert raw and {r["handle"] for r in raw} == {log.stdout.split(" · worker ")[1].split()[0]}
    missing = aegis(project, "queue", "log", "nope")
    assert missing.returncode == 1 and "no dispatched task 'nope'" in missing.stderr
    offline_status = aegis(project, "queue", "status", task_id).stdout
    assert "cancelled" in offline_status
    assert live_status.split("transcript: ")[1].splitlines()[0] in offline_status  # the same path, offline
