"""The seed workflows with scripted agents: tdd_cycle on a toy git repo (the predicate's retry feedback
reaches the implementer), a missing profile named, execute_plan's slices, review_branch's report."""

from __future__ import annotations

import subprocess
import sys

import pytest
from wkit import finished, journal, runtime

from aegis_workflow.seeds import parse_slices

PYTEST = f"{sys.executable} -B -m pytest -q -p no:cacheprovider tests/test_feat.py"
WRITE_TEST = ("@write tests/test_feat.py def test_double():\\n    from feat import double\\n"
              "    assert double(2) == 4\\n\n@reply wrote a failing test for {feature}")
WRITE_BUGGY = "@write feat.py def double(x):\\n    return x + 1\\n\n@reply implemented"
FIX = "Tests are still failing. Output:\n{stdout}\n@write feat.py def double(x):\\n    return x * 2\\n\n@reply fixed"


def _git(project, *args):
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def _repo(project):
    _git(project, "init", "-q", "-b", "main")
    _git(project, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "start")


@pytest.mark.trio
async def test_tdd_cycle_ends_ok_with_passing_tests_and_a_review(flows, kernel, aegis_project):
    _repo(aegis_project)
    run = runtime(kernel).start_run("tdd_cycle", {
        "feature": "double", "test_cmd": PYTEST, "test_prompt": WRITE_TEST, "implement_prompt": WRITE_BUGGY,
        "retry_pass_prompt": FIX})
    await finished(run, timeout=120)
    assert run.status == "ok", run.error
    assert "Final review of the change implementing double" in run.result  # the reviewer's reply
    assert (aegis_project / "feat.py").read_text() == "def double(x):\n    return x * 2\n"  # only the feedback said so
    passing = subprocess.run(PYTEST.split(), cwd=aegis_project, capture_output=True)
    assert passing.returncode == 0
    recs = journal(aegis_project, run.id)
    impl = next(r["result"]["handle"] for r in recs if r.get("verb") == "spawn")
    feedback = [r for r in recs if r.get("verb") == "send" and "Tests are still failing" in r.get("desc", "")]
    assert len(feedback) == 1 and feedback[0]["desc"].startswith(f"{impl}: ")  # to the implementer
    diff = [r for r in recs if r.get("verb") == "bash"][-1]["result"]["stdout"]  # what the reviewer was shown
    assert "+    return x * 2" in diff and "+    assert double(2) == 4" in diff and ".aegis" not in diff


@pytest.mark.trio
async def test_a_missing_profile_is_named(flows, kernel):
    run = runtime(kernel).start_run("tdd_cycle", {"feature": "x", "implementer": "ghost"})
    await finished(run)
    assert run.status == "error"
    assert "agent profile 'ghost' is not configured" in run.error


@pytest.mark.trio
async def test_execute_plan_runs_one_implementer_per_slice(flows, kernel, aegis_project):
    (aegis_project / "plan.md").write_text(
        "# Plan\n\nintro\n\n## Slice 1 — parser\n@reply parsed\n\n## Slice 2 — printer\n@reply printed\n\n## Notes\nx\n")
    run = runtime(kernel).start_run("execute_plan", {"plan_path": "plan.md", "implementer": "helper"})
    await finished(run)
    assert run.status == "ok", run.error
    assert [(s["slice"], s["title"], s["reply"]) for s in run.result] == [(1, "parser", "parsed"),
                                                                         (2, "printer", "printed")]
    spawns = [r for r in journal(aegis_project, run.id) if r.get("verb") == "spawn"]
    assert len({s["result"]["handle"] for s in spawns}) == 2


def test_parse_slices_stops_at_the_next_section():
    assert parse_slices("## Slice 3 - a\nbody\n## Other\nno\n") == [(3, "a", "body")]


@pytest.mark.trio
async def test_review_branch_writes_one_report_with_every_review(flows, kernel, aegis_project):
    _repo(aegis_project)
    _git(aegis_project, "checkout", "-q", "-b", "feature")
    (aegis_project / "a.py").write_text("x = 1\n")
    _git(aegis_project, "add", "a.py")
    _git(aegis_project, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "a")
    run = runtime(kernel).start_run("review_branch", {
        "reviewers": ["helper", "reviewer"], "review_prompt": "Review against {base}\n{diff}"})
    await finished(run)
    assert run.status == "ok", run.error
    report = (aegis_project / "review.md").read_text()
    assert "## helper\n\nscripted reply to: Review against main" in report
    assert "## reviewer\n\nscripted reply to: Review against main" in report


@pytest.mark.trio
async def test_brainstorm_to_spec_asks_the_person_then_writes_the_spec(flows, kernel, aegis_project):
    from wkit import until

    rt = runtime(kernel)
    run = rt.start_run("brainstorm_to_spec", {
        "topic": "Rate limits", "author": "helper", "questions": 2,
        "questions_prompt": "@reply What scale?\\nWho calls it?\\nIgnored third?",
        "spec_prompt": "{answers}\n@reply # Spec for {topic}\\nper-user limits"})
    for expected, answer in (("What scale?", "1k rps"), ("Who calls it?", "the API")):
        await until(lambda: run.question and run.question["question"] == expected, expected)
        rt.answer(run, answer)
    await finished(run)
    assert run.status == "ok", run.error
    assert run.result == str(aegis_project / "docs" / "specs" / "rate-limits.md")
    assert (aegis_project / "docs/specs/rate-limits.md").read_text() == "# Spec for Rate limits\nper-user limits\n"
    sent = [r["desc"] for r in journal(aegis_project, run.id) if r.get("verb") == "send"]
    assert ": Q: What scale? A: 1k rps Q: Who" in sent[1]  # the answers went back to the author


@pytest.mark.trio
async def test_spawn_with_a_worktree_works_on_its_own_branch(flows, write_config, kernel, aegis_project):
    _repo(aegis_project)
    write_config('''\
from aegis_workflow import workflow


@workflow("isolated")
async def isolated(engine):
    h = await engine.spawn("implementer", worktree=True)
    await engine.send(h, "@write note.txt from the worktree\\n@reply ok")
    return "done"
''', ".aegis/workflows/isolated.py")
    run = runtime(kernel).start_run("isolated")
    await finished(run)
    assert run.status == "ok", run.error
    handle = next(r["result"]["handle"] for r in journal(aegis_project, run.id) if r.get("verb") == "spawn")
    tree = aegis_project / ".aegis" / "worktrees" / f"workflow-{run.id}-{handle}"
    assert (tree / "note.txt").read_text() == "from the worktree"
    assert not (aegis_project / "note.txt").exists()
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=tree, capture_output=True, text=True)
    assert branch.stdout.strip() == f"aegis/workflow/{run.id}/{handle}"
