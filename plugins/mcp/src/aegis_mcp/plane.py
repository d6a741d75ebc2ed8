"""The MCP plane service: one streamable-HTTP MCP server on 127.0.0.1 for every agent session."""

from __future__ import annotations

import importlib
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import trio

from .front import FrontApp
from .identities import Identities, SpawnHooks
from .ledger import CommsLedger
from .tools import ToolBridge

if TYPE_CHECKING:
    from starlette.types import ASGIApp

log = logging.getLogger("aegis_mcp")


class McpPlane:
    """Kernel service serving every operation in ``kernel.operations`` as an MCP tool.

    ``await nursery.start(plane.run, kernel)`` binds ``127.0.0.1:0`` once and listens (the kernel
    picks the port; nothing is closed and re-bound), sets ``kernel.mcp_base_url`` to
    ``http://127.0.0.1:<port>/mcp/`` (informational: status and banner) and returns it.
    Cancelling the service closes the port, revokes every token and sets ``kernel.mcp_base_url``
    back to None.

    Identities are the plane's own (:class:`aegis_mcp.identities.Identities`): while it serves, the
    plane registers :class:`~aegis_mcp.identities.SpawnHooks` on ``kernel.plugins.pm``, whose
    ``aegis_pre_spawn`` gives each agent process a fresh secret token in ``launch.mcp`` (a session's
    MCP URL is the base URL plus that token) and which revoke it when the session fails or closes.
    The kernel itself knows no endpoint and no token.

    The kernel object needs ``operations`` (``OperationRegistry``), ``state.path(*parts) -> Path``
    (for ``comms/<date>.jsonl``), a writable ``mcp_base_url`` and, to inject endpoints,
    ``plugins.pm`` and ``sessions.get(handle)`` (without them — a stand-in kernel in tests — pass
    ``identities`` and issue tokens yourself).

    HTTP: :class:`aegis_mcp.http11.H11Server` (HTTP/1.1 on ``h11``, a few ms to import, where
    hypercorn took ~170 ms) serves :class:`aegis_mcp.front.FrontApp` on that socket, which it never
    closes and re-binds and which stays non-inheritable (agent processes never hold the port).

    Start-up: with ``listen_first`` (default) ``started`` is reported as soon as the socket listens,
    before the HTTP server is imported and started; connections queue in the listen backlog meanwhile
    and are then served. :attr:`serving` is set once the HTTP server accepts. With
    ``listen_first=False``, ``started`` waits for it.

    Args:
        host: the loopback address to bind.
        fast_path: answer handshake-era JSON-RPC POSTs without the SDK (see :mod:`aegis_mcp.front`).
            ``False`` serves everything through the ``mcp`` SDK app, built before ``started``.
        prewarm_sdk: with the fast path, build the SDK app in the background once serving instead of
            on the first request that needs it.
        listen_first: report ``started`` once listening, before the HTTP server is started.
        graceful_timeout: on cancel, seconds requests in flight may still take (idle connections
            are closed at once).
        max_body: request bodies over this many bytes are refused with ``413``.
        identities: the token table, ``resolve(token) -> handle | None`` (default: a new, empty
            :class:`~aegis_mcp.identities.Identities`, all of whose tokens are revoked when the plane stops).
    """

    def __init__(self, *, host: str = "127.0.0.1", fast_path: bool = True, prewarm_sdk: bool = False,
                 listen_first: bool = True, graceful_timeout: float = 0.5, backlog: int = 128,
                 max_body: int = 16 * 1024 * 1024, identities: Identities | None = None):
        self.identities = identities if identities is not None else Identities()
        self._own_identities = identities is None  # its tokens die with the plane; a table given is the caller's
        self.host = host
        self.fast_path = fast_path
        self.prewarm_sdk = prewarm_sdk
        self.listen_first = listen_first
        self.graceful_timeout = graceful_timeout
        self.backlog = backlog
        self.max_body = max_body
        self.base_url: str | None = None
        self.port: int | None = None
        #: set once the HTTP server serves (``started`` may come earlier with ``listen_first``)
        self.serving = trio.Event()
        #: seconds from ``run`` entry to ``started`` / to serving (diagnostics, benchmarks)
        self.start_seconds: float | None = None
        self.serving_seconds: float | None = None
        self._sdk: _LazySdk | None = None

    async def run(self, kernel: Any, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        t0 = time.perf_counter()
        if self.serving.is_set():  # run again after a previous run ended
            self.serving = trio.Event()
        ledger = CommsLedger(lambda date: kernel.state.path("comms", f"{date}.jsonl"))
        bridge = ToolBridge(kernel, ledger, self.identities)
        hooks: SpawnHooks | None = None
        pm = getattr(getattr(kernel, "plugins", None), "pm", None)
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(self.backlog)
            self.port = listener.getsockname()[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            base_url = f"http://{host}:{self.port}/mcp/"

            def announce() -> None:
                nonlocal hooks
                self.base_url = kernel.mcp_base_url = base_url
                if pm is not None:
                    hooks = SpawnHooks(self.identities, base_url, getattr(kernel, "sessions", None))
                    pm.register(hooks, name=f"aegis_mcp.plane:{id(self)}")
                self.start_seconds = time.perf_counter() - t0
                task_status.started(base_url)

            async with trio.open_nursery() as nursery:
                self._sdk = sdk = _LazySdk(bridge, nursery)
                front = FrontApp(bridge, sdk.get, fast_path=self.fast_path)
                if self.fast_path and self.listen_first:
                    announce()
                elif not self.fast_path:
                    await sdk.get()
                # the HTTP/1.1 server serves the socket bound and listening above (never closed and
                # re-bound; non-inheritable, PEP 446, so agent processes never hold the port)
                from .http11 import H11Server

                server = H11Server(front, listener, max_body=self.max_body,
                                   graceful_timeout=self.graceful_timeout)
                await nursery.start(server.serve)
                self.serving_seconds = time.perf_counter() - t0
                self.serving.set()
                if self.base_url is None:
                    announce()
                log.info("MCP plane listening at %s (started %.0f ms, serving %.0f ms)", base_url,
                         (self.start_seconds or 0) * 1000, self.serving_seconds * 1000)
                if self.fast_path and self.prewarm_sdk:
                    nursery.start_soon(sdk.get)
        finally:
            if hooks is not None and pm is not None:
                pm.unregister(hooks)
            if self._own_identities:
                self.identities.revoke_all()
            listener.close()
            kernel.mcp_base_url = None
            self.base_url = None
            self._sdk = None
            ledger.close()

    @property
    def sdk_ready(self) -> bool:
        """Whether the ``mcp`` SDK app has been built (it is built lazily with the fast path)."""
        return self._sdk is not None and self._sdk.app is not None


class _LazySdk:
    """Builds the SDK app once, on first need; its import runs in a worker thread."""

    def __init__(self, bridge: ToolBridge, nursery: trio.Nursery):
        self.bridge = bridge
        self.nursery = nursery
        self.app: ASGIApp | None = None
        self._lock = trio.Lock()

    async def get(self) -> ASGIApp:
        if self.app is not None:
            return self.app
        async with self._lock:
            if self.app is None:
                t0 = time.perf_counter()
                server = await trio.to_thread.run_sync(importlib.import_module, "aegis_mcp.server")
                app, manager = server.build_app(self.bridge)
                await self.nursery.start(_run_session_manager, manager)
                self.app = app
                log.info("MCP SDK server ready (%.0f ms)", (time.perf_counter() - t0) * 1000)
        return self.app


async def _run_session_manager(manager: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with manager.run():
        task_status.started()
        await trio.sleep_forever()
