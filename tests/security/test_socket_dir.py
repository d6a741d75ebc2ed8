"""Issue 12 finding 4: the control socket's fallback folder (used when the state path is too long for
a unix socket) cannot be squatted. ``$XDG_RUNTIME_DIR/aegis`` is preferred; ``<tmp>/aegis-<uid>`` is
used only when it is a real directory we own (mode 0700), else refused with a clear error — by the
server before it binds and by a client before it connects."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from aegis_kernel.control import ControlError, _bind_path, connect_path, private_socket_dir

LONG = "a-project-folder-with-a-name-long-enough-that-its-socket-path-cannot-be-a-unix-socket-path"


@pytest.fixture
def tmp_base(monkeypatch):
    """A stand-in for /tmp (sticky, world-writable, reachable by every user: made in the real /tmp,
    removed afterwards) and no XDG_RUNTIME_DIR."""
    base = Path(tempfile.mkdtemp(prefix="aegis-test-tmp-", dir="/tmp"))
    base.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_short_state_path_binds_in_place(tmp_path):
    public = tmp_path / "aegis.sock"
    assert _bind_path(public) == public


def test_xdg_runtime_dir_is_preferred(tmp_base, tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    bind = _bind_path(tmp_path / LONG / ".aegis" / "state" / "aegis.sock")
    assert bind.parent == runtime / "aegis" and mode(bind.parent) == 0o700
    assert not (tmp_base / f"aegis-{os.geteuid()}").exists()


def test_fallback_is_created_owner_only_and_an_own_wide_folder_is_narrowed(tmp_base, tmp_path):
    folder = tmp_base / f"aegis-{os.geteuid()}"
    bind = _bind_path(tmp_path / LONG / ".aegis" / "state" / "aegis.sock")
    assert bind.parent == folder and mode(folder) == 0o700
    folder.chmod(0o755)
    assert private_socket_dir() == folder and mode(folder) == 0o700


def test_a_symlink_or_file_in_its_place_is_refused(tmp_base, tmp_path):
    folder = tmp_base / f"aegis-{os.geteuid()}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)
    with pytest.raises(ControlError, match="it is a symlink"):
        private_socket_dir()
    folder.unlink()
    folder.write_text("")
    with pytest.raises(ControlError, match="it is not a directory"):
        private_socket_dir()


def test_a_client_never_follows_aegis_sock_into_a_folder_that_is_not_ours(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o700)
    (state / "aegis.sock").symlink_to(planted / "x.sock")
    assert connect_path(state / "aegis.sock") == planted / "x.sock"  # ours: fine
    (tmp_path / "link").symlink_to(planted)
    (state / "aegis.sock").unlink()
    (state / "aegis.sock").symlink_to(tmp_path / "link" / "x.sock")
    with pytest.raises(ControlError, match="symlink"):
        connect_path(state / "aegis.sock")


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine to play the other local user")


def squat_as_nobody(folder: Path) -> pwd.struct_passwd:
    """The other local user (``nobody``, a real second uid) creates ``folder`` first, wide open."""
    other = _nobody()
    subprocess.run(["mkdir", "-m", "777", str(folder)], user=other.pw_uid, group=other.pw_gid, check=True,
                   timeout=30)
    assert folder.stat().st_uid == other.pw_uid
    return other


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second local user (nobody)")
def test_a_folder_another_user_created_first_is_refused(tmp_base, tmp_path):
    folder = tmp_base / f"aegis-{os.geteuid()}"
    other = squat_as_nobody(folder)
    with pytest.raises(ControlError, match=rf"belongs to uid {other.pw_uid}, not to you"):
        _bind_path(tmp_path / LONG / ".aegis" / "state" / "aegis.sock")
    assert folder.stat().st_uid == other.pw_uid and mode(folder) == 0o777  # we touched nothing of theirs


@pytest.mark.parametrize("squat", ["symlink", pytest.param("other-user", marks=pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to act as a second local user (nobody)"))])
def test_aegis_serve_refuses_a_squatted_folder_with_a_clear_error_not_a_traceback(tmp_base, tmp_path, squat):
    project = tmp_path / LONG / "p"
    project.mkdir(parents=True)
    (project / ".aegis.yaml").write_text("agents: {}\n")
    folder = tmp_base / f"aegis-{os.geteuid()}"
    if squat == "symlink":
        (tmp_path / "bait").mkdir()
        folder.symlink_to(tmp_path / "bait")
    else:
        squat_as_nobody(folder)
    env = {**os.environ, "TMPDIR": str(tmp_base), "AEGIS_DISABLE_PLUGINS": "tui"}
    env.pop("XDG_RUNTIME_DIR", None)
    aegis = Path(sys.executable).with_name("aegis")
    done = subprocess.run([str(aegis), "serve"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "refusing the private socket folder" in done.stderr and str(folder) in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not list((tmp_path / "bait").iterdir()) if squat == "symlink" else not list(folder.iterdir())
