"""Who is calling: secret MCP tokens ↔ sessions, owned by the plane (the kernel knows neither).

Every agent process gets its own token: :meth:`Identities.issue` is called from the plane's
``aegis_pre_spawn`` (see :class:`SpawnHooks`), so a resumed session (a new process) gets a new token
and the old one is dead. A token is revoked as soon as its session fails (state ``error``) or closes.
A token maps to the *session object*, so a renamed session keeps its identity under its new handle.

Live tokens are registered with the kernel's redaction (:func:`aegis_kernel.redact.register_secret`)
so they never reach a log line, an error text or a transcript.
"""

from __future__ import annotations

import secrets
from typing import Any

from aegis_kernel import Launch, McpEndpoint, SpawnSpec, forget_secret, hookimpl, register_secret

#: session states in which a session's token is revoked
DEAD_STATES = ("error", "closed")


class _Handle:
    """Stands for a session the plane cannot see (a spec spawned outside a kernel's sessions)."""

    __slots__ = ("handle",)

    def __init__(self, handle: str) -> None:
        self.handle = handle


class Identities:
    """Secret tokens ↔ sessions. An unknown or revoked token resolves to None (refused)."""

    def __init__(self) -> None:
        self._by_token: dict[str, Any] = {}
        self._by_session: dict[int, str] = {}  # id(session) → its live token

    def issue(self, session: Any) -> str:
        """A fresh token for ``session`` (anything with a ``handle``); its previous token is revoked."""
        self.revoke(session)
        token = secrets.token_urlsafe(16)
        self._by_token[token] = session
        self._by_session[id(session)] = token
        register_secret(token)
        return token

    def resolve(self, token: str) -> str | None:
        """The current handle of the session ``token`` belongs to, or None."""
        session = self._by_token.get(token)
        return None if session is None else session.handle

    def token_of(self, session: Any) -> str | None:
        """``session``'s live token, or None (diagnostics and tests; never log it)."""
        return self._by_session.get(id(session))

    def revoke(self, session: Any) -> None:
        """``session``'s token stops working (idempotent)."""
        token = self._by_session.pop(id(session), None)
        if token is not None:
            self._by_token.pop(token, None)
            forget_secret(token)

    def revoke_all(self) -> None:
        for token in self._by_token:
            forget_secret(token)
        self._by_token.clear()
        self._by_session.clear()

    def __len__(self) -> int:
        return len(self._by_token)


class SpawnHooks:
    """The plane's hook implementations, registered on the kernel's plugin manager while it serves.

    - ``aegis_pre_spawn``: sets ``launch.mcp`` to ``<base_url><new token>`` (drivers pass it to the
      agent without argv);
    - ``aegis_session_state_changed`` / ``aegis_session_closed``: revoke the token of a session that
      failed or closed.
    """

    def __init__(self, identities: Identities, base_url: str, sessions: Any = None) -> None:
        self.identities = identities
        self.base_url = base_url
        self.sessions = sessions  # the kernel's SessionManager (``get(handle)``), or None

    @hookimpl
    def aegis_pre_spawn(self, spec: SpawnSpec, launch: Launch) -> Launch:
        session = self.sessions.get(spec.handle) if self.sessions is not None else None
        token = self.identities.issue(session if session is not None else _Handle(spec.handle))
        return launch.with_mcp(McpEndpoint(url=self.base_url + token))

    @hookimpl
    def aegis_session_state_changed(self, session: Any, old: str, new: str) -> None:
        if new in DEAD_STATES:
            self.identities.revoke(session)

    @hookimpl
    def aegis_session_closed(self, session: Any, reason: str) -> None:
        self.identities.revoke(session)
