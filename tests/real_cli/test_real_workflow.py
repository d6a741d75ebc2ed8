"""review_branch with real CLIs on the fake model: a real ``claude``, ``gemini`` and ``opencode``
reviewer each review the branch's diff in parallel, and the one report file holds all three reviews."""

from __future__ import annotations

import json
import subprocess

import pytest

import real_cli_kit as kit

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


def _git(project, *args):
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=project, check=True,
                   capture_output=True)


@pytest.fixture
def project(fake_model, cli_root, write_config, aegis_project):
    binaries = {name: kit.require_cli(name) for name in kit.CLIS}
    env = {"claude": kit.claude_env, "gemini": kit.gemini_env, "opencode": kit.opencode_env}
    providers = {"claude": "claude-code", "gemini": "gemini", "opencode": "opencode"}
    config = {
        "default_agent": "claude",
        "agents": {name: {"provider": providers[name], "permission": "read", "command": [binaries[name]],
                          "env": env[name](fake_model, cli_root)} for name in kit.CLIS},
    }
    write_config(json.dumps(config, indent=1))
    _git(aegis_project, "init", "-q", "-b", "main")
    _git(aegis_project, "commit", "-q", "--allow-empty", "-m", "start")
    _git(aegis_project, "checkout", "-q", "-b", "feature")
    (aegis_project / "rate_limit.py").write_text("LIMIT = 10\n")
    _git(aegis_project, "add", "rate_limit.py")
    _git(aegis_project, "commit", "-q", "-m", "rate limit")
    return aegis_project


async def test_review_branch_with_real_claude_gemini_and_opencode_reviewers(project, make_kernel):
    import trio

    from aegis_workflow.runtime import WorkflowRuntime

    async with make_kernel() as kernel:
        run = kernel.service(WorkflowRuntime).start_run("review_branch", {"reviewers": list(kit.CLIS)})
        with trio.move_on_after(kit.TURN_TIMEOUT * 4):
            await run.done.wait()
        assert run.status == "ok", (run.status, run.error, run.step)
    report = (project / "review.md").read_text()
    for name in kit.CLIS:
        section = report.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        # the fake model answers the reviewer's last user message: the review prompt with the diff
        assert section.strip().startswith("FAKE_REPLY to:"), (name, section)
        assert "Review this branch's change against main" in section and "LIMIT = 10" in section
