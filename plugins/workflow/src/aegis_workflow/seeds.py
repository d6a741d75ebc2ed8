"""The seed workflows, registered whenever aegis-workflow is installed (:data:`SEEDS`).

- ``brainstorm_to_spec(topic)``: an author agent asks the person questions (``ask_human``), then
  writes a spec document from the answers.
- ``execute_plan(plan_path)``: ``## Slice N — title`` sections of a plan → one implementer per slice,
  in order, each slice checkpointed (durable between slices).
- ``review_branch(base="main")``: the branch's diff → parallel reviewers → one report file.
- ``tdd_cycle(feature, test_path=None)``: a failing-test predicate → implement → a passing predicate
  (feedback to the implementer) → a review.
- ``prompt(agent, message)`` and ``enqueue(queue, payload)``: for schedules.

Agent profiles are parameters with defaults (``implementer``, ``reviewer``, ``author``); a profile
missing from the config fails the run with an error naming it. Prompts are parameters too
(templates over the fields named in their defaults).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from .decorator import workflow
from .errors import WorkflowError

SLICE = re.compile(r"^##\s+Slice\s+(\d+)\s*[—–:-]+\s*(.+?)\s*$", re.MULTILINE)


@workflow("prompt")
async def prompt(engine: Any, agent: str, message: str, timeout: float | None = None) -> str:
    """Send one message to an agent and return its reply.

    ``agent`` is a live session's handle (kept open) or a profile (a fresh agent, closed afterwards)."""
    handle = await engine.find_session(agent)
    if handle is None:
        handle = await engine.spawn(agent)
    return await engine.send(handle, message, timeout=timeout)


@workflow("enqueue")
async def enqueue(engine: Any, queue: str, payload: str) -> dict[str, Any]:
    """Put a task on a queue (aegis-queue) and return its id."""
    return await engine.enqueue(queue, payload)


# the working tree's change: tracked files against HEAD, then new files (Aegis's own state left out)
_OWN = "':(exclude).aegis' ':(exclude).aegis.yaml'"
CHANGES = (f"{{ git diff HEAD -- . {_OWN}; git ls-files -z --others --exclude-standard -- . {_OWN} "
           "| xargs -0 -r -n1 git diff --no-index /dev/null; } 2>/dev/null || true")
TDD_TEST = ("Write a failing test for: {feature}\n"
            "Put it in {test_path}. Do not implement the feature yet: the test must fail.")
TDD_IMPLEMENT = "Now implement {feature} so that the test in {test_path} passes. Do not weaken the test."
TDD_RETRY_FAIL = "The test should fail because the feature isn't built yet. Test output:\n{stdout}{stderr}"
TDD_RETRY_PASS = "Tests are still failing. Output:\n{stdout}{stderr}"
TDD_REVIEW = "Final review of the change implementing {feature}. The diff:\n\n{diff}"


@workflow("tdd_cycle")
async def tdd_cycle(engine: Any, feature: str, test_path: str | None = None, *, implementer: str = "implementer",
                    reviewer: str = "reviewer", test_cmd: str | None = None, max_retries: int = 3,
                    test_prompt: str = TDD_TEST, implement_prompt: str = TDD_IMPLEMENT,
                    retry_fail_prompt: str = TDD_RETRY_FAIL, retry_pass_prompt: str = TDD_RETRY_PASS,
                    review_prompt: str = TDD_REVIEW) -> str:
    """Test first: a failing test, then the code until the tests pass, then a review (returned)."""
    where = test_path or "tests/"
    fields = {"feature": feature, "test_path": where}
    cmd = test_cmd or f"python -m pytest -q {shlex.quote(where)} -k {shlex.quote(_ident(feature))}"
    impl = await engine.spawn(implementer)
    await engine.send(impl, test_prompt.format(**fields))
    # pytest exits 1 when tests ran and failed (5: none collected, which is no failing test yet)
    failing = f"( {cmd} ); test $? -eq 1" if test_cmd is None else f"! ( {cmd} )"
    await engine.bash_predicate(failing, retry_with=retry_fail_prompt, agent=impl, max_retries=max_retries)
    await engine.send(impl, implement_prompt.format(**fields))
    await engine.bash_predicate(cmd, retry_with=retry_pass_prompt, agent=impl, max_retries=max_retries)
    diff = await engine.bash(CHANGES)
    rev = await engine.spawn(reviewer)
    return await engine.send(rev, review_prompt.format(diff=diff["stdout"] or "(no diff)", **fields))


REVIEW_PROMPT = ("Review this branch's change against {base}. List real problems (bugs, missing tests, "
                 "risky changes) with file:line, most important first; say so if there are none.\n\n{diff}")


@workflow("review_branch")
async def review_branch(engine: Any, base: str = "main", *, reviewers: list[str] | None = None,
                        report: str = "review.md", review_prompt: str = REVIEW_PROMPT) -> str:
    """Review the branch: its diff against base → parallel reviewers → one report file.

    One review per reviewer profile; the report is ``report`` (relative to the project); returns its path."""
    profiles = list(reviewers or ["reviewer"])
    diff = await engine.bash(f"git diff {shlex.quote(base)}...HEAD")
    if diff["exit"] != 0:
        raise WorkflowError(f"git diff {base}...HEAD failed: {diff['stderr'].strip()}")
    text = review_prompt.format(base=base, diff=diff["stdout"] or "(no changes)")

    async def one(profile: str) -> tuple[str, str]:
        handle = await engine.spawn(profile)
        reply = await engine.send(handle, text)
        await engine.close(handle)
        return profile, reply

    reviews = await engine.parallel(*[(lambda p=p: one(p)) for p in profiles])
    body = [f"# Review of {base}...HEAD\n"]
    for profile, reply in reviews:
        body.append(f"## {profile}\n\n{reply.strip()}\n")
    return await engine.write_file(report, "\n".join(body))


SLICE_PROMPT = "Implement slice {number} of the plan in {plan_path}: {title}\n\n{body}"


@workflow("execute_plan")
async def execute_plan(engine: Any, plan_path: str, *, implementer: str = "implementer",
                       slice_prompt: str = SLICE_PROMPT) -> list[dict[str, Any]]:
    """Implement a plan slice by slice: one fresh implementer per '## Slice N — title' section.

    Each finished slice is checkpointed, so a restart goes on with the next one."""
    plan = await engine.bash(f"cat {shlex.quote(plan_path)}")
    if plan["exit"] != 0:
        raise WorkflowError(f"cannot read the plan {plan_path}: {plan['stderr'].strip()}")
    slices = parse_slices(plan["stdout"])
    if not slices:
        raise WorkflowError(f"{plan_path} has no '## Slice N — title' sections")
    done = []
    for number, title, body in slices:
        impl = await engine.spawn(implementer)
        reply = await engine.send(impl, slice_prompt.format(number=number, title=title, body=body,
                                                            plan_path=plan_path))
        await engine.close(impl)
        done.append(await engine.checkpoint(f"slice-{number}", {"slice": number, "title": title, "reply": reply}))
    return done


def parse_slices(text: str) -> list[tuple[int, str, str]]:
    """``(number, title, body)`` of every ``## Slice N — title`` section, in the plan's order."""
    marks = list(SLICE.finditer(text))
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end():end]
        body = re.split(r"^##\s", body, maxsplit=1, flags=re.MULTILINE)[0]  # up to the next section
        out.append((int(mark.group(1)), mark.group(2), body.strip()))
    return out


QUESTIONS_PROMPT = ("We are writing a spec for: {topic}\nAsk me the {count} questions whose answers you most need, "
                    "one per line, nothing else.")
SPEC_PROMPT = "Here are my answers:\n\n{answers}\n\nNow write the spec for {topic} as one markdown document."


@workflow("brainstorm_to_spec")
async def brainstorm_to_spec(engine: Any, topic: str, *, author: str = "author", questions: int = 3,
                             spec_path: str | None = None, questions_prompt: str = QUESTIONS_PROMPT,
                             spec_prompt: str = SPEC_PROMPT) -> str:
    """Questions to the person, then a spec document written from the answers.

    An author agent asks (``ask_human``), then writes the spec; returns its path (``spec_path``,
    default ``docs/specs/<topic>.md``)."""
    agent = await engine.spawn(author)
    asked = await engine.send(agent, questions_prompt.format(topic=topic, count=questions))
    lines = [ln.strip(" -*\t") for ln in asked.splitlines() if ln.strip(" -*\t")][:questions]
    answers = []
    for question in lines:
        answers.append((question, await engine.ask_human(question)))
    text = "\n\n".join(f"Q: {q}\nA: {a}" for q, a in answers) or "(no questions)"
    spec = await engine.send(agent, spec_prompt.format(answers=text, topic=topic))
    return await engine.write_file(spec_path or f"docs/specs/{_slug(topic)}.md", spec.strip() + "\n")


def _ident(text: str) -> str:
    return re.sub(r"\W+", "_", text.strip().split("\n", 1)[0]).strip("_") or "test"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "spec"


SEEDS = [brainstorm_to_spec, execute_plan, review_branch, tdd_cycle, prompt, enqueue]
