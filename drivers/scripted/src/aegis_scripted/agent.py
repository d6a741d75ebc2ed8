"""The scripted ACP agent: ``python -m aegis_scripted`` speaks ACP v1 (JSON-RPC 2.0, one message per
line) on stdin/stdout, deterministically, following directives in its prompts (README.md).

Stdlib only, and only what start-up needs is imported: no ``json``, ``re``, ``threading`` or ``typing``
(see :mod:`.wire` and :mod:`.sync`; the MCP client is imported on first ``@call``). The driver starts
it with ``python -S`` (:mod:`.driver`): together they halve the agent's start-up CPU (measured
~11 ms, against ~26 ms for the earlier agent under ``-m``, with bytecode compiled).
The main thread reads stdin and answers most requests at once; each ``session/prompt`` runs in a
worker thread so ``session/cancel`` and the client's replies (fs, permission) keep flowing. All
writes to stdout go through one lock, one line each.

History for ``session/load`` lives in ``<state>/<sessionId>.json``, where ``<state>`` is
``$AEGIS_SCRIPTED_STATE`` or ``<session cwd>/.aegis-scripted``.

Capability switches for tests: ``AEGIS_SCRIPTED_NO_LOAD=1`` (no ``loadSession``),
``AEGIS_SCRIPTED_NO_RESUME=1`` (no ``sessionCapabilities.resume``).
"""

from __future__ import annotations

import os
import sys

from . import directives as dv
from . import sync
from .wire import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = "0.1.0"
EXIT_FAIL = 3
SLOW_INTERVAL = 0.1



class ClientError(Exception):
    """The client answered one of our requests with an error (or went away)."""


class Waiter:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = sync.Flag()
        self.reply: dict[str, Any] | None = None


class Session:
    def __init__(self, sid: str, cwd: str, mcp_servers: list[Any], history: list[dict[str, str]] | None = None):
        self.sid = sid
        self.cwd = cwd
        self.mcp_servers = mcp_servers
        self.history: list[dict[str, str]] = history or []
        self.turns = len([h for h in self.history if h.get("role") == "user"])
        self.cancel = sync.Flag()
        self.worker: sync.Flag | None = None  # set when the running prompt's thread ends
        self.busy = False  # a prompt is running (cleared just before its answer is written)
        self.mcp: Any = None

    def state_file(self) -> str:
        return _state_path(self.cwd, self.sid)

    def save(self) -> None:
        path = self.state_file()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)  # owner-only, like Aegis's state
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
            fh.write(dumps({"v": 1, "session_id": self.sid, "cwd": self.cwd, "history": self.history}))
        os.replace(tmp, path)


def _state_path(cwd: str, sid: str) -> str:
    root = os.environ.get("AEGIS_SCRIPTED_STATE") or os.path.join(cwd, ".aegis-scripted")
    return os.path.join(root, f"{sid}.json")


class Agent:
    def __init__(self, out: Any = None, err: Any = None) -> None:
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr
        self.lock = sync.Lock()
        self.sessions: dict[str, Session] = {}
        self.waiters: dict[int, Waiter] = {}
        self.next_id = 0
        self.id_lock = sync.Lock()
        self.closed = False

    # --- wire -----------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        data = (dumps(message) + "\n").encode()
        with self.lock:
            try:
                self.out.write(data)
                self.out.flush()
            except (BrokenPipeError, ValueError):
                self.closed = True

    def respond(self, rid: Any, result: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": rid, "result": result})

    def error(self, rid: Any, code: int, message: str) -> None:
        self.send({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})

    def update(self, session: Session, update: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "method": "session/update",
                   "params": {"sessionId": session.sid, "update": update}})

    def call_client(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> Any:
        """Send a request to the client and wait for its reply; raises ClientError on an error reply."""
        with self.id_lock:
            self.next_id += 1
            rid = self.next_id
        waiter = self.waiters[rid] = Waiter()
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        if not waiter.event.wait(timeout):
            self.waiters.pop(rid, None)
            raise ClientError(f"no reply to {method} within {timeout:g} s")
        reply = waiter.reply or {}
        if "error" in reply:
            err = reply["error"] if isinstance(reply["error"], dict) else {}
            raise ClientError(f"{err.get('message', 'error')} (code {err.get('code')})")
        return reply.get("result")

    # --- dispatch -------------------------------------------------------------------------------

    def handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            msg = loads(line)
        except ValueError:
            self.error(None, -32700, "parse error")
            return
        if not isinstance(msg, dict):
            self.error(None, -32600, "invalid request")
            return
        method = msg.get("method")
        if method is None:  # a reply to one of our requests
            rid = msg.get("id")
            waiter = self.waiters.pop(rid, None) if isinstance(rid, int) else None
            if waiter is not None:
                waiter.reply = msg
                waiter.event.set()
            return
        raw_params = msg.get("params")
        params = raw_params if isinstance(raw_params, dict) else {}
        if "id" not in msg:
            if method == "session/cancel":
                session = self.sessions.get(str(params.get("sessionId")))
                if session is not None:
                    session.cancel.set()
            return
        rid = msg["id"]
        handler = getattr(self, "on_" + method.replace("/", "_"), None) if isinstance(method, str) else None
        if handler is None:
            self.error(rid, -32601, f"method not found: {method}")
            return
        try:
            handler(rid, params)
        except Exception as exc:  # noqa: BLE001 - answered
            self.error(rid, -32603, f"{type(exc).__name__}: {exc}")

    def on_initialize(self, rid: Any, params: dict[str, Any]) -> None:
        session_caps: dict[str, Any] = {"close": {}}
        if not os.environ.get("AEGIS_SCRIPTED_NO_RESUME"):
            session_caps["resume"] = {}
        self.respond(rid, {
            "protocolVersion": 1,
            "agentCapabilities": {
                "loadSession": not os.environ.get("AEGIS_SCRIPTED_NO_LOAD"),
                "mcpCapabilities": {"http": True, "sse": False},
                "promptCapabilities": {"image": False, "audio": False, "embeddedContext": False},
                "sessionCapabilities": session_caps,
            },
            "authMethods": [],
            "agentInfo": {"name": "aegis-scripted", "title": "Aegis scripted agent", "version": VERSION},
        })

    def _check_cwd(self, rid: Any, params: dict[str, Any]) -> str | None:
        cwd = params.get("cwd")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            self.error(rid, -32602, "cwd must be an absolute path")
            return None
        return cwd

    def on_session_new(self, rid: Any, params: dict[str, Any]) -> None:
        cwd = self._check_cwd(rid, params)
        if cwd is None:
            return
        sid = "scripted-" + os.urandom(8).hex()
        session = self.sessions[sid] = Session(sid, cwd, list(params.get("mcpServers") or []))
        session.save()
        self.respond(rid, {"sessionId": sid})

    def _restore(self, rid: Any, params: dict[str, Any], replay: bool) -> None:
        cwd = self._check_cwd(rid, params)
        sid = params.get("sessionId")
        if cwd is None:
            return
        if not isinstance(sid, str) or not sid:
            self.error(rid, -32602, "sessionId is required")
            return
        try:
            with open(_state_path(cwd, sid), encoding="utf-8") as fh:
                saved = loads(fh.read())
        except (OSError, ValueError):
            self.error(rid, -32002, f"session not found: {sid}")
            return
        session = self.sessions[sid] = Session(sid, cwd, list(params.get("mcpServers") or []),
                                               list(saved.get("history") or []))
        if replay:
            for i, item in enumerate(session.history):
                role = "user_message_chunk" if item.get("role") == "user" else "agent_message_chunk"
                self.update(session, {"sessionUpdate": role, "messageId": f"h{i}",
                                      "content": {"type": "text", "text": item.get("text", "")}})
        self.respond(rid, {})

    def on_session_load(self, rid: Any, params: dict[str, Any]) -> None:
        if os.environ.get("AEGIS_SCRIPTED_NO_LOAD"):
            self.error(rid, -32601, "method not found: session/load")
            return
        self._restore(rid, params, replay=True)

    def on_session_resume(self, rid: Any, params: dict[str, Any]) -> None:
        if os.environ.get("AEGIS_SCRIPTED_NO_RESUME"):
            self.error(rid, -32601, "method not found: session/resume")
            return
        self._restore(rid, params, replay=False)

    def on_session_close(self, rid: Any, params: dict[str, Any]) -> None:
        session = self.sessions.pop(str(params.get("sessionId")), None)
        if session is not None:
            session.cancel.set()
            if session.worker is not None:
                session.worker.wait(2)
        self.respond(rid, {})

    def on_session_prompt(self, rid: Any, params: dict[str, Any]) -> None:
        session = self.sessions.get(str(params.get("sessionId")))
        if session is None:
            self.error(rid, -32002, f"session not found: {params.get('sessionId')}")
            return
        if session.busy:
            self.error(rid, -32603, "a prompt is already running in this session")
            return
        prompt = params.get("prompt")
        if not isinstance(prompt, list):
            self.error(rid, -32602, "prompt must be an array of content blocks")
            return
        texts = [b["text"] for b in prompt if isinstance(b, dict) and b.get("type") == "text"
                 and isinstance(b.get("text"), str)]
        session.cancel = sync.Flag()
        session.busy = True
        session.worker = sync.start(Turn(self, session, rid, texts).run)

    # --- main loop ------------------------------------------------------------------------------

    def serve(self, stdin: Any) -> int:
        for line in stdin:
            self.handle_line(line)
        # EOF: the client is gone; stop running turns and leave.
        for waiter in list(self.waiters.values()):
            waiter.reply = {"error": {"code": -32603, "message": "client went away"}}
            waiter.event.set()
        for session in self.sessions.values():
            session.cancel.set()
            if session.worker is not None:
                session.worker.wait(2)
        return 0


class Turn:
    """One ``session/prompt``: runs the directives in order, then answers the prompt."""

    def __init__(self, agent: Agent, session: Session, rid: Any, texts: list[str]) -> None:
        self.agent = agent
        self.session = session
        self.rid = rid
        self.texts = texts
        session.turns += 1
        self.n = session.turns
        self.message_id = f"msg-{session.sid[-8:]}-{self.n}"
        self.stop_reason = "end_turn"
        self.usage: dict[str, int] | None = None
        self.reply_parts: list[str] = []
        self.tool_seq = 0

    @property
    def cancelled(self) -> bool:
        return self.session.cancel.is_set()

    def say(self, text: str) -> None:
        if self.reply_parts:
            text = "\n" + text
        self.reply_parts.append(text)
        self.agent.update(self.session, {"sessionUpdate": "agent_message_chunk", "messageId": self.message_id,
                                         "content": {"type": "text", "text": text}})

    def run(self) -> None:
        steps = dv.parse(self.texts)
        try:
            if not steps:
                self.say(f"scripted reply to: {dv.first_line(self.texts)}")
            for name, arg in steps:
                if self.cancelled:
                    break
                try:
                    getattr(self, "do_" + name)(arg)
                except dv.DirectiveError as exc:
                    self.say(f"@{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug in a directive must still answer the prompt
            self.say(f"scripted agent error: {type(exc).__name__}: {exc}")
        result: dict[str, Any] = {"stopReason": "cancelled" if self.cancelled else self.stop_reason}
        if self.usage is not None:
            result["usage"] = self.usage
        user_text = self.texts[-1] if self.texts else ""
        self.session.history.append({"role": "user", "text": user_text})
        self.session.history.append({"role": "agent", "text": "".join(self.reply_parts)})
        try:
            self.session.save()
        except OSError as exc:
            self.agent.err.write(f"aegis-scripted: cannot save history: {exc}\n")
        self.session.busy = False
        self.agent.respond(self.rid, result)

    # --- directives -----------------------------------------------------------------------------

    def do_reply(self, arg: str) -> None:
        self.say(dv.unescape(arg))

    def do_think(self, arg: str) -> None:
        self.agent.update(self.session, {"sessionUpdate": "agent_thought_chunk", "messageId": self.message_id,
                                         "content": {"type": "text", "text": dv.unescape(arg)}})

    def do_slow(self, arg: str) -> None:
        parts = arg.split()
        count = int(dv.number(arg, "slow", 50))
        interval = dv.number(parts[1], "slow", SLOW_INTERVAL) if len(parts) > 1 else SLOW_INTERVAL
        for i in range(count):
            if self.cancelled:
                return
            text = f"slow{i} "
            self.reply_parts.append(text)
            self.agent.update(self.session, {"sessionUpdate": "agent_message_chunk", "messageId": self.message_id,
                                             "content": {"type": "text", "text": text}})
            if self.session.cancel.wait(interval):
                return

    def do_sleep(self, arg: str) -> None:
        self.session.cancel.wait(dv.number(arg, "sleep"))

    def do_fail(self, arg: str) -> None:
        message = dv.unescape(arg) or "scripted failure"
        try:
            self.agent.err.write(message + "\n")
            self.agent.err.flush()
        finally:
            os._exit(EXIT_FAIL)

    def do_stop(self, arg: str) -> None:
        self.stop_reason = arg.split()[0] if arg.split() else "end_turn"

    def do_usage(self, arg: str) -> None:
        kv = dv.keyvalues(arg, {"in": int, "out": int, "cache_read": int, "cache_write": int, "thought": int})
        usage = {
            "inputTokens": int(kv.get("in", 0)),
            "outputTokens": int(kv.get("out", 0)),
            "cachedReadTokens": int(kv.get("cache_read", 0)),
            "cachedWriteTokens": int(kv.get("cache_write", 0)),
        }
        if "thought" in kv:
            usage["thoughtTokens"] = int(kv["thought"])
        usage["totalTokens"] = sum(usage.values())
        self.usage = usage

    def do_context(self, arg: str) -> None:
        kv = dv.keyvalues(arg, {"used": int, "size": int, "cost": float})
        update: dict[str, Any] = {"sessionUpdate": "usage_update", "used": int(kv.get("used", 0)),
                                  "size": int(kv.get("size", 0))}
        if "cost" in kv:
            update["cost"] = {"amount": kv["cost"], "currency": "USD"}
        self.agent.update(self.session, update)

    def do_plan(self, arg: str) -> None:
        entries = []
        for item in (x.strip() for x in arg.split("|")):
            if not item:
                continue
            status = "pending"
            if item.startswith("[x]"):
                status, item = "completed", item[3:].strip()
            elif item.startswith("[>]"):
                status, item = "in_progress", item[3:].strip()
            entries.append({"content": item, "priority": "medium", "status": status})
        self.agent.update(self.session, {"sessionUpdate": "plan", "entries": entries})

    def _tool_id(self) -> str:
        self.tool_seq += 1
        return f"call-{self.n}-{self.tool_seq}"

    def _tool_start(self, tid: str, title: str, kind: str, raw_input: Any) -> None:
        self.agent.update(self.session, {"sessionUpdate": "tool_call", "toolCallId": tid, "title": title,
                                         "kind": kind, "status": "pending", "rawInput": raw_input})

    def _tool_end(self, tid: str, text: str, ok: bool) -> None:
        self.agent.update(self.session, {
            "sessionUpdate": "tool_call_update", "toolCallId": tid,
            "status": "completed" if ok else "failed",
            "content": [{"type": "content", "content": {"type": "text", "text": text}}],
            "rawOutput": {"output": text},
        })

    def do_call(self, arg: str) -> None:
        tool, args = dv.split_call(arg)
        tid = self._tool_id()
        self._tool_start(tid, tool, "other", args)
        self.agent.update(self.session, {"sessionUpdate": "tool_call_update", "toolCallId": tid,
                                         "status": "in_progress"})
        try:
            text, is_error = self._mcp_call(tool, args)
        except Exception as exc:  # noqa: BLE001 - reported as a failed tool call
            text, is_error = f"MCP error: {exc}", True
        self._tool_end(tid, text, not is_error)
        self.say(f"tool {tool} → {text}")

    def _mcp_call(self, tool: str, args: dict[str, Any]) -> tuple[str, bool]:
        from .mcp_client import McpHttpClient

        servers = [s for s in self.session.mcp_servers if isinstance(s, dict) and s.get("type") == "http"
                   and isinstance(s.get("url"), str)]
        server_name, sep, bare = tool.partition("/")
        if sep:
            servers = [s for s in servers if s.get("name") == server_name]
            tool = bare
        if not servers:
            return "no MCP http server was given in session/new", True
        session = self.session
        if session.mcp is None or session.mcp.url != servers[0]["url"]:
            headers = {h["name"]: h["value"] for h in servers[0].get("headers") or ()
                       if isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str)}
            session.mcp = McpHttpClient(servers[0]["url"], headers)
        return session.mcp.call_tool(tool, args)

    def _abs(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(self.session.cwd, path)

    def do_read(self, arg: str) -> None:
        path = arg.strip()
        if not path:
            raise dv.DirectiveError("@read needs a path")
        try:
            result = self.agent.call_client("fs/read_text_file",
                                            {"sessionId": self.session.sid, "path": self._abs(path)})
        except ClientError as exc:
            self.say(f"read {path} failed: {exc}")
            return
        content = result.get("content", "") if isinstance(result, dict) else ""
        self.say(f"read {path} → {content}")

    def do_write(self, arg: str) -> None:
        path, _, text = arg.partition(" ")
        if not path:
            raise dv.DirectiveError("@write needs a path and text")
        try:
            self.agent.call_client("fs/write_text_file", {"sessionId": self.session.sid, "path": self._abs(path),
                                                          "content": dv.unescape(text)})
        except ClientError as exc:
            self.say(f"write {path} failed: {exc}")
            return
        self.say(f"wrote {path}")

    def do_ask(self, arg: str) -> None:
        kind, _, title = arg.partition(" ")
        if not kind:
            raise dv.DirectiveError("@ask needs a kind and a title: @ask execute rm -rf build")
        title = title.strip() or kind
        tid = self._tool_id()
        raw_input = {"command": title}
        self._tool_start(tid, title, kind, raw_input)
        params = {
            "sessionId": self.session.sid,
            "toolCall": {"toolCallId": tid, "title": title, "kind": kind, "status": "pending", "rawInput": raw_input},
            "options": [
                {"optionId": "allow", "name": "Allow", "kind": "allow_once"},
                {"optionId": "allow-always", "name": "Always allow", "kind": "allow_always"},
                {"optionId": "reject", "name": "Reject", "kind": "reject_once"},
                {"optionId": "reject-always", "name": "Always reject", "kind": "reject_always"},
            ],
        }
        try:
            result = self.agent.call_client("session/request_permission", params, timeout=3600)
        except ClientError as exc:
            self._tool_end(tid, f"permission request failed: {exc}", False)
            self.say(f"permission {title} failed: {exc}")
            return
        outcome = result.get("outcome") if isinstance(result, dict) else None
        choice = "cancelled"
        if isinstance(outcome, dict) and outcome.get("outcome") == "selected":
            choice = str(outcome.get("optionId"))
        self._tool_end(tid, f"permission: {choice}", choice.startswith("allow"))
        self.say(f"permission {title} → {choice}")


def main() -> int:
    agent = Agent()
    try:
        return agent.serve(sys.stdin.buffer)
    except KeyboardInterrupt:
        return 130
