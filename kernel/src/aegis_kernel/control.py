"""The local control socket of a running ``aegis serve``: ``.aegis/state/aegis.sock`` (owner-only).

Wire format: one JSON object per line each way. A request ``{"op": ..., ...}`` gets one reply
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {...}}``; ``transcript`` with
``follow: true`` streams ``{"event": ...}`` lines until the session closes or the client leaves.
Unix socket paths are limited to ~107 bytes: when the state path is longer, the socket lives in a
private folder — ``$XDG_RUNTIME_DIR/aegis/`` when that is set (and ours), else ``/tmp/aegis-<uid>/`` —
and ``aegis.sock`` is a symlink to it. That folder must be a real directory (not a symlink), owned by
us and mode 0700: one another user created first is refused with a clear error (it could read what is
sent to the socket, or answer in Aegis's place), by the server before binding and by clients before
connecting (:func:`private_socket_dir`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket as stdsocket
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .delivery import Envelope

if TYPE_CHECKING:
    import trio

    from .kernel import Kernel

log = logging.getLogger("aegis.control")

SOCKET_NAME = "aegis.sock"
_MAX_PATH = 100


class ControlError(Exception):
    """The control socket is missing, dead or refused the request."""


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
    if not (public.exists() or public.is_symlink()):
        return None
    try:
        client = ControlClient(public.parent, timeout=2.0)
    except ControlError:
        return None
    try:
        return int(client.request("ping").get("pid", 0)) or None
    except (ControlError, OSError, ValueError, AttributeError):
        return None
    finally:
        client.close()


# --- server ----------------------------------------------------------------------------------------


class ControlServer:
    """Serves the control socket for ``kernel``; ``stop_event`` is set by the ``stop`` request."""

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
        sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            await sock.bind(str(bind))
        finally:
            os.umask(old_umask)
        os.chmod(bind, 0o600)
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
        import trio

        buffer = b""
        try:
            async with stream:
                while True:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            await self._answer(stream, line)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _answer(self, stream: trio.SocketStream, line: bytes) -> None:
        from .delivery import DeliveryError
        from .operations import OperationError
        from .sessions import SessionError

        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise OperationError("a request is a JSON object with an 'op' string", code="bad_request")
            op = request["op"]
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise OperationError(f"unknown control op '{op}'", code="bad_request")
            result = await handler(stream, request)
            if result is _STREAMED:
                return
            reply: dict[str, Any] = {"ok": True, "result": result}
        except OperationError as exc:
            reply = {"ok": False, "error": exc.to_dict()}
        except json.JSONDecodeError as exc:
            reply = {"ok": False, "error": {"error": f"bad JSON: {exc}", "code": "bad_request"}}
        except (SessionError, DeliveryError, ValueError, KeyError, TypeError) as exc:
            reply = {"ok": False, "error": {"error": str(exc), "code": "refused"}}
        except Exception as exc:  # noqa: BLE001 - one bad request never takes the serve down
            log.exception("control request failed: %.200s", line)
            reply = {"ok": False, "error": {"error": f"internal error: {exc}", "code": "internal"}}
        await stream.send_all(json.dumps(reply, default=str).encode() + b"\n")

    # --- ops ---------------------------------------------------------------------------------

    async def op_ping(self, stream: Any, req: dict[str, Any]) -> Any:
        error = getattr(self.kernel, "config_error", None)  # a refused live config edit (see config_watch)
        return {"pid": os.getpid(), "project": str(self.kernel.project_dir), "mcp": self.kernel.mcp_base_url,
                "config_error": str(error) if error is not None else None}

    async def op_call(self, stream: Any, req: dict[str, Any]) -> Any:
        from .operations import Caller

        return await self.kernel.operations.call(self.kernel, req["name"], req.get("args") or {},
                                                 Caller(None, via="socket"))

    async def op_sessions(self, stream: Any, req: dict[str, Any]) -> Any:
        return [s.info() for s in self.kernel.sessions]

    async def op_spawn(self, stream: Any, req: dict[str, Any]) -> Any:
        sessions = self.kernel.sessions
        resume = req.get("resume")
        if resume:
            saved = {r["handle"]: r for r in sessions.saved_all()}
            rec = saved.get(resume)
            if rec is None:
                raise ValueError(f"no session '{resume}' to resume (known: {', '.join(sorted(saved)) or 'none'})")
            session = await sessions.spawn(rec.get("agent"), handle=req.get("handle") or resume,
                                           resume_id=rec.get("driver_session_id"), log_id=rec.get("log_id"),
                                           prompt=req.get("prompt"))
        else:
            session = await sessions.spawn(req.get("agent"), handle=req.get("handle"), prompt=req.get("prompt"))
        return session.info()

    async def op_send(self, stream: Any, req: dict[str, Any]) -> Any:
        receipt = self.kernel.deliver(req["handle"], Envelope.new("user", req["text"],
                                                                  interrupt=bool(req.get("interrupt"))))
        return receipt.to_dict()

    async def op_interrupt(self, stream: Any, req: dict[str, Any]) -> Any:
        self.kernel.sessions.require(req["handle"]).interrupt()
        return {"interrupted": req["handle"]}

    async def op_approve(self, stream: Any, req: dict[str, Any]) -> Any:
        session = self.kernel.sessions.require(req["handle"])
        allow = bool(req.get("allow", True))
        await session.answer_permission(allow, always=bool(req.get("always")))
        return {"handle": session.handle, "allowed": allow}

    async def op_rename(self, stream: Any, req: dict[str, Any]) -> Any:
        session = self.kernel.sessions.rename(req["handle"], req["new_handle"])
        return {"handle": session.handle}

    async def op_close(self, stream: Any, req: dict[str, Any]) -> Any:
        await self.kernel.sessions.close(req["handle"], "closed by user")
        return {"closed": req["handle"]}

    async def op_stop(self, stream: Any, req: dict[str, Any]) -> Any:
        self.stop_event.set()
        return {"stopping": True}

    async def op_transcript(self, stream: Any, req: dict[str, Any]) -> Any:
        import trio

        from .events import event_to_dict

        session = self.kernel.sessions.require(req["handle"])
        history = list(session.history)
        send_channel, receive_channel = trio.open_memory_channel[Any](math.inf)
        unsubscribe = None
        if req.get("follow"):  # subscribe first: nothing between the history and the live tail is lost
            unsubscribe = session.subscribe(lambda s, e: send_channel.send_nowait(e))
        else:
            send_channel.close()
        try:
            await stream.send_all(b'{"ok": true, "result": "streaming"}\n')
            for start in range(0, len(history), 500):
                chunk = history[start:start + 500]
                await stream.send_all(b"".join(json.dumps({"event": event_to_dict(e)}, default=str).encode()
                                               + b"\n" for e in chunk))
            async with receive_channel:
                while True:
                    if unsubscribe is not None and session.state == "closed":
                        break
                    with trio.move_on_after(0.5 if unsubscribe else 3600):
                        try:
                            event = await receive_channel.receive()
                        except trio.EndOfChannel:
                            break
                        await stream.send_all(json.dumps({"event": event_to_dict(event)}, default=str).encode()
                                              + b"\n")
        finally:
            if unsubscribe is not None:
                unsubscribe()
        await stream.send_all(b'{"end": true}\n')
        return _STREAMED


_STREAMED = object()


# --- client (blocking; used by CLI verbs) --------------------------------------------------------


class ControlClient:
    def __init__(self, state_dir: Path, timeout: float = 30.0) -> None:
        public = socket_path(state_dir)
        if not (public.exists() or public.is_symlink()):
            raise ControlError("no running 'aegis serve' for this project (start one with: aegis serve)")
        self.sock = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(connect_path(public)))
        except OSError as exc:
            raise ControlError(f"'aegis serve' is not answering on {public} ({exc.strerror}); "
                               "it may have crashed: start it again with: aegis serve") from None
        self.file = self.sock.makefile("rb")

    def request(self, op: str, **fields: Any) -> Any:
        try:
            self.sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
        except OSError as exc:
            raise ControlError(f"lost the connection to 'aegis serve' ({exc})") from None
        reply = self._read()
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise ControlError(err.get("error") or json.dumps(err))
        return reply.get("result")

    def stream(self, op: str, **fields: Any):
        self.request(op, **fields)
        while True:
            msg = self._read()
            if msg.get("end"):
                return
            yield msg

    def _read(self) -> dict[str, Any]:
        try:
            line = self.file.readline()
        except OSError as exc:  # includes socket timeouts
            raise ControlError(f"'aegis serve' did not answer ({exc or 'timed out'})") from None
        if not line:
            raise ControlError("'aegis serve' closed the connection")
        try:
            reply = json.loads(line)
        except ValueError:
            raise ControlError(f"'aegis serve' sent something unreadable: {line[:200]!r}") from None
        if not isinstance(reply, dict):
            raise ControlError(f"'aegis serve' sent something unreadable: {line[:200]!r}")
        return reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()
