"""A minimal MCP client over streamable HTTP (stdlib ``http.client`` only, so start-up stays fast).

``initialize`` → ``notifications/initialized`` → ``tools/call``, each a POST with
``Accept: application/json, text/event-stream``; a JSON or an SSE response is accepted; an
``Mcp-Session-Id`` given at initialize is sent back, and so is the negotiated ``MCP-Protocol-Version``.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

PROTOCOL_VERSION = "2025-06-18"


class McpError(Exception):
    pass


class McpHttpClient:
    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise McpError(f"not an http(s) URL: {url}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._next_id = 0
        self._initialized = False

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _post(self, message: dict[str, Any]) -> Any:
        """POST one message; the JSON-RPC reply (for requests) or None (notifications)."""
        conn_cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_cls(self._host, self._port, timeout=self.timeout)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **self.headers,
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        try:
            conn.request("POST", self._path, json.dumps(message).encode(), headers)
            resp = conn.getresponse()
            sid = resp.getheader("Mcp-Session-Id")
            if sid:
                self.session_id = sid
            if resp.status >= 400:
                body = resp.read(500).decode("utf-8", errors="replace")
                raise McpError(f"HTTP {resp.status} from {self.url}: {body.strip()}")
            if "id" not in message:
                resp.read()
                return None
            ctype = (resp.getheader("Content-Type") or "").lower()
            if "text/event-stream" in ctype:
                return self._from_sse(resp, message["id"])
            data = json.loads(resp.read() or b"null")
            return self._match(data, message["id"])
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise McpError(f"MCP request to {self.url} failed: {exc}") from None
        finally:
            conn.close()

    @staticmethod
    def _match(data: Any, rid: int) -> Any:
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and item.get("id") == rid:
                return item
        raise McpError("the MCP server's reply did not answer our request")

    def _from_sse(self, resp: http.client.HTTPResponse, rid: int) -> Any:
        data_lines: list[str] = []
        while True:
            raw = resp.readline()
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("data:"):
                data_lines.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
            elif line == "" and data_lines:
                payload, data_lines = "\n".join(data_lines), []
                try:
                    msg = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("id") == rid:
                    return msg
        raise McpError("the MCP server's event stream ended without our reply")

    def _request(self, method: str, params: dict[str, Any]) -> Any:
        reply = self._post({"jsonrpc": "2.0", "id": self._id(), "method": method, "params": params})
        if "error" in reply:
            err = reply["error"] if isinstance(reply["error"], dict) else {}
            raise McpError(f"{method} failed: {err.get('message', reply['error'])}")
        return reply.get("result")

    def initialize(self) -> None:
        result = self._request("initialize", {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "aegis-scripted", "version": "0.1.0"},
        })
        if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
            self.protocol_version = result["protocolVersion"]
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self._initialized = True

    def call_tool(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """Call a tool; (text of its result, is_error)."""
        if not self._initialized:
            self.initialize()
        result = self._request("tools/call", {"name": name, "arguments": arguments})
        if not isinstance(result, dict):
            return json.dumps(result), False
        texts = [c.get("text", "") for c in result.get("content") or ()
                 if isinstance(c, dict) and c.get("type") == "text"]
        text = "\n".join(texts)
        if not text and result.get("structuredContent") is not None:
            text = json.dumps(result["structuredContent"], ensure_ascii=False)
        return text, bool(result.get("isError"))
