"""The ``queues:`` section: its semantic check at load (``aegis config validate``) and live edits."""

from __future__ import annotations

import pytest
from queue_testkit import CONFIG, call, producer, wait_until

from aegis_kernel.cli import main
from aegis_queue.runtime import QueueRuntime


def validate(project, text, capsys):
    (project / ".aegis.yaml").write_text(text)
    code = main(["-C", str(project), "config", "validate"])
    return code, capsys.readouterr().err


AGENTS = "agents:\n  worker:\n    provider: scripted\n"


def test_a_queue_of_an_unknown_agent_is_a_config_error(tmp_path, capsys):
    code, err = validate(tmp_path, AGENTS + "queues:\n  review:\n    agent: nobody\n", capsys)
    assert code == 2
    assert ".aegis.yaml:6: unknown agent 'nobody' (configured: worker) @ queues.review.agent" in err


def test_a_queue_name_that_is_not_a_safe_file_name_is_a_config_error(tmp_path, capsys):
    code, err = validate(tmp_path, AGENTS + "queues:\n  ../../evil:\n    agent: worker\n", capsys)
    assert code == 2
    assert (".aegis.yaml:5: invalid queue name '../../evil': lowercase letters, digits, '-' or '_', starting "
            "with a letter, at most 64 characters @ queues['../../evil']") in err
    assert not (tmp_path / ".aegis").exists()


def test_a_queue_overlay_of_an_unknown_agent_names_the_overlay(tmp_path, capsys):
    overlay = tmp_path / ".aegis" / "queues" / "review.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("agent: ghost\nmax_parallel: 2\n")
    code, err = validate(tmp_path, AGENTS, capsys)
    assert code == 2 and ".aegis/queues/review.yaml:1: unknown agent 'ghost' (configured: worker)" in err


@pytest.mark.trio
async def test_a_live_max_parallel_edit_applies_and_leaves_work_in_flight_alone(qdriver, kernel, aegis_project):
    prod = await producer(kernel)
    rt = kernel.service(QueueRuntime)
    ids = [(await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="hang"))["task_id"]
           for _ in range(3)]
    qs = rt.queues["solo"]
    await wait_until(lambda: len(qs.inflight) == 1)
    assert len(qs.pending) == 2
    config = aegis_project / ".aegis.yaml"
    config.write_text(CONFIG.replace("  solo:\n    agent: worker\n", "  solo:\n    agent: worker\n    max_parallel: 2\n"))
    await wait_until(lambda: len(qs.inflight) == 2, timeout=30)
    assert qs.spec.max_parallel == 2 and kernel.config.get("queues")["solo"].max_parallel == 2
    config.write_text(CONFIG)  # back to 1: the two in flight keep running, the third waits
    await wait_until(lambda: kernel.config.get("queues")["solo"].max_parallel == 1, timeout=30)
    assert qs.spec.max_parallel == 1
    assert [t.id for t in qs.inflight.values()] == ids[:2] and [t.id for t in qs.pending] == ids[2:]
    assert all(rt.tasks[i].status not in ("failed", "cancelled") for i in ids)
