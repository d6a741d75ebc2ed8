"""The local control socket of the Aegis that owns a project: ``.aegis/state/aegis.sock`` (owner-only).

The socket is a transport: it speaks JSON-RPC 2.0 (:mod:`aegis_kernel.rpc`), every method is an
operation of the registry, called as the ``user`` principal (only the owner can open the socket).
Clients use :mod:`aegis_kernel.client`.
Unix socket paths are limited to ~107 bytes: when the state path is longer, the socket lives in a
private folder — ``$XDG_RUNTIME_DIR/aegis/`` when that is set (and ours), else ``/tmp/aegis-<uid>/`` —
and ``aegis.sock`` is a symlink to it. That folder must be a real directory (not a symlink), owned by
us and mode 0700: one another user created first is refused with a clear error (it could read what is
sent to the socket, or answer in Aegis's place), by the server before binding and by clients before
connecting (:func:`private_socket_dir`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket as stdsocket
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    import trio

    from .kernel import Kernel

log = logging.getLogger("aegis.control")

SOCKET_NAME = "aegis.sock"
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # one request line; a longer one is refused and the connection closed
_MAX_PATH = 100


class ControlError(Exception):
    """The control socket is missing, dead or refused the request. ``data`` is the operation error's dict
    when the running Aegis refused a call (``data["code"]``: ``forbidden``, ``not_found``, …)."""

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = dict(data or {})

    @property
    def code(self) -> str:
        return str(self.data.get("code") or "unavailable")


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


def _owner_only_dir(path: Path, *, create: bool) -> None:
    """Make sure ``path`` is a real directory owned by us with mode 0700 (creating it 0700 when
    ``create`` and missing; an own folder with a wider mode is narrowed). Raises :class:`ControlError`
    naming the problem otherwise. Checked on an ``O_NOFOLLOW`` descriptor, so a symlink swapped in
    between the check and the use is refused too."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ControlError(f"cannot create the private socket folder {path}: {exc.strerror}") from None
    advice = ("remove it (it is not Aegis's), set XDG_RUNTIME_DIR to a folder of yours, "
              "or use a shorter project path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        try:
            st = os.lstat(path)
        except OSError:
            raise ControlError(f"the private socket folder {path} is missing ({exc.strerror})") from None
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise ControlError(f"refusing the private socket folder {path}: it is {kind}; {advice}") from None
    try:
        st = os.fstat(fd)
        uid = os.geteuid()
        if st.st_uid != uid:
            raise ControlError(f"refusing the private socket folder {path}: it belongs to uid {st.st_uid}, "
                               f"not to you (uid {uid}); someone else created it first; {advice}")
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def private_socket_dir(*, create: bool = True) -> Path:
    """The owner-only folder for a socket whose state path is too long: ``$XDG_RUNTIME_DIR/aegis``
    when ``XDG_RUNTIME_DIR`` is an absolute folder we own, else ``<tmp>/aegis-<uid>``. Checked by
    :func:`_owner_only_dir` (raises :class:`ControlError`)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        try:
            st = os.stat(runtime)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            folder = Path(runtime) / "aegis"
            _owner_only_dir(folder, create=create)
            return folder
    folder = Path(tempfile.gettempdir()) / f"aegis-{os.geteuid()}"
    _owner_only_dir(folder, create=create)
    return folder


def _bind_path(public: Path) -> Path:
    if len(str(public)) <= _MAX_PATH:
        return public
    digest = hashlib.sha256(str(public).encode()).hexdigest()[:16]
    return private_socket_dir() / f"{digest}.sock"


def connect_path(public: Path) -> Path:
    """Where to connect for ``public``: itself, or the target of its symlink after checking that the
    target's folder is still ours (owner-only; raises :class:`ControlError` otherwise)."""
    if not public.is_symlink():
        return public
    target = Path(os.readlink(public))
    _owner_only_dir(target.parent, create=False)
    return target


def _running_pid(public: Path) -> int | None:
    """The pid of a live Aegis answering on ``public``, else None (a stale socket file)."""
    from .rpc import RpcClient, RpcError

    if not (public.exists() or public.is_symlink()):
        return None
    try:
        client = RpcClient.connect(connect_path(public), timeout=2.0)
    except (ControlError, OSError):
        return None
    try:
        return int(client.call("aegis_ping").get("pid", 0)) or None
    except (RpcError, OSError, ValueError, AttributeError):
        return None
    finally:
        client.close()


# --- server ----------------------------------------------------------------------------------------


def _bind_owner_only(path: Path) -> stdsocket.socket:
    """A Unix socket bound at ``path`` with mode 0600 from its first instant.

    The umask is process-wide: it is narrowed only around the ``bind`` call itself, synchronously —
    never across a checkpoint (trio's own ``bind`` waits on a thread), where other tasks would create
    their folders without their x bits."""
    sock = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
    except BaseException:
        sock.close()
        raise
    return sock


class ControlServer:
    """Serves the control socket for ``kernel`` (``stop_event``: what the owner waits on to stop)."""

    def __init__(self, kernel: Kernel, stop_event: trio.Event) -> None:
        self.kernel = kernel
        self.stop_event = stop_event
        self.path = socket_path(kernel.state.root)

    async def run(self, *, task_status: Any = None) -> None:
        import trio

        task_status = task_status or trio.TASK_STATUS_IGNORED
        bind = _bind_path(self.path)
        other = await trio.to_thread.run_sync(_running_pid, self.path)  # blocking probe, off the loop
        if other is not None:
            raise ControlError(f"another Aegis is already running for {self.kernel.project_dir} (pid {other}); "
                               "stop it first (aegis stop) or use it")
        for stale in {bind, self.path}:
            if stale.is_symlink() or stale.exists():
                stale.unlink()
        sock = trio.socket.from_stdlib_socket(_bind_owner_only(bind))
        if bind != self.path:
            os.symlink(bind, self.path)
        sock.listen(64)
        listener = trio.SocketListener(sock)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(self.path)
                await trio.serve_listeners(self._handle, [listener], handler_nursery=nursery)
        finally:
            for path in {bind, self.path}:
                try:
                    path.unlink()
                except OSError:
                    pass

    async def _handle(self, stream: trio.SocketStream) -> None:
        from .operations import Caller
        from .rpc import serve_connection

        await serve_connection(self.kernel, stream, Caller(None, via="socket"), max_line=MAX_REQUEST_BYTES)
