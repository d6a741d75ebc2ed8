"""The MCP plane service: one streamable-HTTP MCP server on 127.0.0.1 for every agent session."""

from __future__ import annotations

import importlib
import logging
import socket
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .front import FrontApp
from .ledger import CommsLedger
from .tools import ToolBridge

if TYPE_CHECKING:
    from starlette.types import ASGIApp

log = logging.getLogger("aegis_mcp")


class McpPlane:
    """Kernel service serving every operation in ``kernel.operations`` as an MCP tool.

    ``await nursery.start(plane.run, kernel)`` binds ``127.0.0.1:0`` once and listens (the kernel
    picks the port; nothing is closed and re-bound), sets ``kernel.mcp_base_url`` to
    ``http://127.0.0.1:<port>/mcp/`` and returns it; a session's MCP URL is that plus its token.
    Cancelling the service closes the port and sets ``kernel.mcp_base_url`` back to None.

    The kernel object needs ``operations`` (``OperationRegistry``), ``identities.resolve(token) ->
    handle | None``, ``state.path(*parts) -> Path`` (for ``comms/<date>.jsonl``) and a writable
    ``mcp_base_url``.

    Start-up: with ``listen_first`` (default) ``started`` is reported as soon as the socket listens
    (~1 ms): connections queue in the listen backlog while hypercorn is imported in a worker thread
    (~140 ms, overlapping the rest of the kernel's start) and then served — a client connecting in
    that window is answered, only later. :attr:`serving` is set once hypercorn accepts. With
    ``listen_first=False``, ``started`` waits for hypercorn.

    Args:
        host: the loopback address to bind.
        fast_path: answer handshake-era JSON-RPC POSTs without the SDK (see :mod:`aegis_mcp.front`).
            ``False`` serves everything through the ``mcp`` SDK app, built before ``started``.
        prewarm_sdk: with the fast path, build the SDK app in the background once serving instead of
            on the first request that needs it.
        listen_first: report ``started`` once listening, before hypercorn is imported.
        graceful_timeout: seconds hypercorn grants in-flight requests on a graceful shutdown.
    """

    def __init__(self, *, host: str = "127.0.0.1", fast_path: bool = True, prewarm_sdk: bool = False,
                 listen_first: bool = True, graceful_timeout: float = 0.5, backlog: int = 128):
        self.host = host
        self.fast_path = fast_path
        self.prewarm_sdk = prewarm_sdk
        self.listen_first = listen_first
        self.graceful_timeout = graceful_timeout
        self.backlog = backlog
        self.base_url: str | None = None
        self.port: int | None = None
        #: set once hypercorn serves (``started`` may come earlier with ``listen_first``)
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
        bridge = ToolBridge(kernel, ledger)
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(self.backlog)
            self.port = listener.getsockname()[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            base_url = f"http://{host}:{self.port}/mcp/"

            def announce() -> None:
                self.base_url = kernel.mcp_base_url = base_url
                self.start_seconds = time.perf_counter() - t0
                task_status.started(base_url)

            async with trio.open_nursery() as nursery:
                self._sdk = sdk = _LazySdk(bridge, nursery)
                front = FrontApp(bridge, sdk.get, fast_path=self.fast_path)
                if self.fast_path and self.listen_first:
                    announce()
                elif not self.fast_path:
                    await sdk.get()
                # hypercorn's import (~140 ms: h11, h2, wsproto) runs off the event loop
                hyper = await trio.to_thread.run_sync(_import_hypercorn)
                config = hyper.Config()
                config.accesslog = None
                config.errorlog = logging.getLogger("aegis_mcp.http")
                config.graceful_timeout = self.graceful_timeout
                # ``hypercorn.trio.serve`` minus its own socket creation: it serves the socket we
                # bound and listen on (it never closes or re-binds it; we close it on exit), and
                # unlike ``create_sockets`` it leaves the socket non-inheritable (PEP 446), so agent
                # processes never hold the port.
                sockets = hyper.Sockets(secure_sockets=[], insecure_sockets=[listener], quic_sockets=[])
                app = hyper.wrap_app(front, config.wsgi_max_body_size, "asgi")
                await nursery.start(partial(hyper.worker_serve, app, config, sockets=sockets))
                self.serving_seconds = time.perf_counter() - t0
                self.serving.set()
                if self.base_url is None:
                    announce()
                log.info("MCP plane listening at %s (started %.0f ms, serving %.0f ms)", base_url,
                         self.start_seconds * 1000, self.serving_seconds * 1000)
                if self.fast_path and self.prewarm_sdk:
                    nursery.start_soon(sdk.get)
        finally:
            listener.close()
            kernel.mcp_base_url = None
            self.base_url = None
            self._sdk = None
            ledger.close()

    @property
    def sdk_ready(self) -> bool:
        """Whether the ``mcp`` SDK app has been built (it is built lazily with the fast path)."""
        return self._sdk is not None and self._sdk.app is not None


def _import_hypercorn() -> Any:
    from types import SimpleNamespace

    from hypercorn.config import Config, Sockets
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    return SimpleNamespace(Config=Config, Sockets=Sockets, worker_serve=worker_serve, wrap_app=wrap_app)


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
