"""A running ``aegis serve`` picks up config edits without a restart, and refuses invalid ones visibly."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

SCRIPTED_CONFIG = "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"  # as the serve fixture's


def spawned(serve, agent: str, handle: str) -> bool:
    return serve.cli("spawn", agent, "--handle", handle, "--prompt", "hello", check=False).returncode == 0


def test_a_new_agent_profile_is_spawnable_without_restart(serve):
    serve.start()
    pid = serve.proc.pid
    refused = serve.cli("spawn", "critic", "--handle", "early", check=False)
    assert refused.returncode == 1 and "unknown agent 'critic'" in refused.stderr
    (serve.project / ".aegis.yaml").write_text(SCRIPTED_CONFIG + "  critic:\n    provider: scripted\n")
    serve.wait(lambda: spawned(serve, "critic", "crit"), "the new profile is spawnable")
    serve.wait(lambda: "scripted reply to: hello" in serve.cli("transcript", "crit").stdout, "critic answers")
    assert serve.session("crit")["agent"] == "critic"
    assert serve.proc.pid == pid and serve.proc.poll() is None  # the same serve, never restarted


def test_an_invalid_edit_is_reported_and_the_last_good_config_kept(serve):
    serve.start()
    (serve.project / ".aegis.yaml").write_text(SCRIPTED_CONFIG + "  broken:\n    provider: nosuch\n")
    where = ".aegis.yaml:6: unknown provider 'nosuch'"
    doctor = serve.wait(lambda: (out := serve.cli("doctor", check=False)) and "refused a config edit" in out.stdout
                        and out, "doctor reports the refused edit")
    assert doctor.returncode == 1 and where in doctor.stdout.split("refused a config edit", 1)[1]
    log = (serve.project / ".aegis" / "state" / "aegis.log").read_text()
    assert "keeping the last good config" in log and where in log
    refused = serve.cli("spawn", "broken", check=False)
    assert refused.returncode == 1 and "unknown agent 'broken'" in refused.stderr
    serve.cli("spawn", "helper", "--handle", "still", "--prompt", "ok?")  # the last good config serves on
    serve.wait(lambda: "scripted reply to: ok?" in serve.cli("transcript", "still").stdout, "helper answers")
