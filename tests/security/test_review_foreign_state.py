"""Review of issue 12 finding 3: the state folder is only ever *ours*. ``secure_tree`` leaves other
users' files alone — so a ``.aegis`` or ``.aegis/state`` another local user created first in a project
they can write to (a shared checkout) stayed theirs: Aegis wrote transcripts and agents' MCP configs
into a folder its squatter can read and rearrange (and a root serve follows the links they plant).
Such a folder is now refused with a message naming it, before anything is written there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a folder to another uid (nobody)")

CONFIG = "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"


def serve(project) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", "serve"], cwd=project, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("squatted", [".aegis", ".aegis/state"])
def test_a_state_folder_another_user_created_first_is_refused(tmp_path, squatted):
    project = tmp_path / "shared"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    (project / ".aegis" / "state").mkdir(parents=True)
    theirs = project / squatted
    os.chown(theirs, 65534, 65534)
    theirs.chmod(0o777)
    done = serve(project)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert f"refusing the state folder" in done.stderr and "uid 65534" in done.stderr, done.stderr
    assert list((project / ".aegis" / "state").iterdir()) == []  # nothing of ours written there
