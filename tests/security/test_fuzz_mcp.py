"""Fuzzing the MCP front (issue 12): random and mutated JSON-RPC bodies, headers and raw bytes go over
real loopback HTTP to a real plane (:class:`aegis_mcp.McpPlane` on :class:`aegis_mcp.http11.H11Server`).

Whatever arrives, the answer is well-formed HTTP (or, for bytes that never make a whole request, a
clean close), never a ``500`` and never a traceback; nothing is logged as a failure; the plane keeps
serving (a good call after every example succeeds) and its memory stays bounded. Runs are
derandomized (the same examples every run), so a failure reproduces and CI never flakes.
"""

from __future__ import annotations

import json
import logging
import resource
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a dev dependency (uv sync --all-packages)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "mcp"))
from mcp_testkit import TOKEN, StubKernel, add_default_operations, start_plane  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
VERSIONS = [None, "2025-06-18", "2024-11-05", "2026-07-28", "1999-01-01", "", "\x7f"]
METHODS = ["initialize", "ping", "tools/list", "tools/call", "notifications/initialized", "resources/list", ""]
TOOLS = ["aegis_list_sessions", "aegis_handoff", "aegis_boom", "nope", ""]
SURROGATES = ["\ud800", "\udfff", "x\udc80y"]


# --- the plane, in a trio run of its own (a thread), shared by every example -------------------------


class Failures(logging.Handler):
    """Collects ERROR records (a connection that failed, an app that raised) from the plane."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    kernel = StubKernel(tmp_path_factory.mktemp("fuzz-mcp"))
    add_default_operations(kernel)
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            _, base = await start_plane(nursery, kernel)
            ready.update(base=base, token=trio.lowlevel.current_trio_token(), cancel=nursery.cancel_scope.cancel)
            started.set()

    failures = Failures()
    logging.getLogger("aegis_mcp").addHandler(failures)
    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert started.wait(30), "the plane did not start"
    port = int(ready["base"].split(":")[2].split("/")[0])
    try:
        yield {"port": port, "path": f"/mcp/{TOKEN}", "failures": failures, "kernel": kernel}
    finally:
        ready["token"].run_sync_soon(ready["cancel"])
        thread.join(30)
        logging.getLogger("aegis_mcp").removeHandler(failures)


def exchange(port: int, data: bytes, *, half_close: bool = True) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before reading everything
            pass
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def request(path: str, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    head = [b"POST %s HTTP/1.1" % path.encode(), b"Host: 127.0.0.1", b"Content-Type: application/json",
            b"Accept: application/json, text/event-stream", b"Connection: close",
            b"Content-Length: %d" % len(body)]
    head += [name + b": " + value for name, value in headers or ()]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def responses(data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Every HTTP/1.1 response in ``data`` (status, lower-cased headers, body); asserts they are well
    formed: a status line, headers, a body framed by Content-Length or chunked."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {data[:200]!r}"
        lines = head.split(b"\r\n")
        version, status, _ = (lines[0].split(b" ", 2) + [b""])[:3]
        assert version == b"HTTP/1.1" and status.isdigit() and 100 <= int(status) <= 599, lines[0]
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon, f"bad header line {line!r}"
            headers[name.strip().lower()] = value.strip()
        if int(status) in (100, 204, 304):
            body, data = b"", rest
        elif b"content-length" in headers:
            size = int(headers[b"content-length"])
            assert len(rest) >= size, "body shorter than its Content-Length"
            body, data = rest[:size], rest[size:]
        else:
            assert headers.get(b"transfer-encoding") == b"chunked", headers
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, rest = body + rest[:size], rest[size + 2:]
                if size == 0:
                    break
            data = rest
        out.append((int(status), headers, body))
    return out


def check(plane: dict, data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The answer to fuzzed input is well-formed, never a 500 or a traceback; nothing failed inside;
    and the plane still answers a good call."""
    got = responses(data)
    for status, _, body in got:
        # 501: a Transfer-Encoding other than chunked (h11's answer), a protocol refusal like 400
        assert status < 500 or status == 501, (status, body[:300])
        assert b"Traceback" not in body
    failures, plane["failures"].records = plane["failures"].records, []
    assert not failures, [r.getMessage() for r in failures]
    good = exchange(plane["port"], request(plane["path"], b'{"jsonrpc":"2.0","id":1,"method":"ping"}'),
                    half_close=False)
    assert responses(good)[0][0] == 200, good[:300]
    return got


# --- strategies ------------------------------------------------------------------------------------

texts = st.one_of(st.text(max_size=30), st.sampled_from(SURROGATES))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)),
    max_leaves=20,
)


@st.composite
def rpc_messages(draw) -> Any:
    message: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        message["jsonrpc"] = draw(st.one_of(st.just("2.0"), json_values))
    if draw(st.integers(0, 4)):
        message["id"] = draw(st.one_of(st.integers(), texts, json_values))
    if draw(st.integers(0, 5)):
        message["method"] = draw(st.one_of(st.sampled_from(METHODS), json_values))
    kind = draw(st.integers(0, 3))
    if kind == 1:
        message["params"] = draw(json_values)
    elif kind >= 2:
        arguments = draw(st.one_of(st.none(), json_values, st.dictionaries(
            st.sampled_from(["target_handle", "context", "handle", "queue", "interrupt", "x"]), json_values,
            max_size=4)))
        message["params"] = {"name": draw(st.one_of(st.sampled_from(TOOLS), json_values)), "arguments": arguments,
                             "protocolVersion": draw(st.one_of(st.sampled_from(VERSIONS[1:]), json_values))}
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(json_values, st.lists(st.just(message), max_size=3)))  # not one message
    return message


def nest(message: Any, depth: int) -> bytes:
    """``message`` as JSON, with ``depth`` levels of arrays in its arguments (or around it)."""
    text = json.dumps(message)  # ensure_ascii: lone surrogates travel as \\udXXX escapes
    if depth == 0:
        return text.encode()
    deep = "[" * depth + "]" * depth
    if isinstance(message, dict) and isinstance(message.get("params"), dict):
        message = {**message, "params": {**message["params"], "arguments": {"deep": "@@"}}}
        return json.dumps(message).replace('"@@"', deep).encode()
    return ("[" * depth + text + "]" * depth).encode()


header_names = st.one_of(st.sampled_from([b"MCP-Protocol-Version", b"Origin", b"Host", b"Content-Type",
                                          b"Accept", b"Expect", b"Transfer-Encoding", b"X-Fuzz"]),
                         st.binary(min_size=1, max_size=12))
header_values = st.one_of(st.sampled_from([b"http://localhost:3000", b"http://evil.example", b"100-continue",
                                           b"text/plain", b"chunked", b"2026-07-28", b"[::1]:9"]),
                          st.binary(max_size=40))


# --- the fuzz tests --------------------------------------------------------------------------------


@FUZZ
@given(message=rpc_messages(), depth=st.one_of(st.just(0), st.integers(1, 100), st.integers(900, 60_000)),
       version=st.sampled_from(VERSIONS))
def test_random_json_rpc_bodies_get_well_formed_answers(plane, message, depth, version):
    headers = [] if version is None else [(b"MCP-Protocol-Version", version.encode())]
    got = check(plane, exchange(plane["port"], request(plane["path"], nest(message, depth), headers),
                                half_close=False))
    assert len(got) == 1
    status, headers_, body = got[0]
    if headers_.get(b"content-type", b"").startswith(b"application/json") and body:
        answer = json.loads(body)
        if isinstance(answer, dict):
            assert answer.get("jsonrpc") == "2.0" and ("result" in answer or "error" in answer), answer


@FUZZ
@given(headers=st.lists(st.tuples(header_names, header_values), max_size=6), body=st.binary(max_size=300),
       path=st.sampled_from([f"/mcp/{TOKEN}", f"/mcp/{TOKEN}/", "/mcp/nope", "/", "/mcp/%ff", "*"]))
def test_random_headers_and_bodies_get_well_formed_answers(plane, headers, body, path):
    check(plane, exchange(plane["port"], request(path, body, headers)))


GOOD = request(f"/mcp/{TOKEN}", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "aegis_handoff", "arguments": {"target_handle": "calm-heron", "context": "hello"}}}).encode())


@FUZZ
@given(mutations=st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]),
                                    st.integers(0, len(GOOD)), st.binary(min_size=1, max_size=8)),
                          min_size=1, max_size=5))
def test_mutated_request_bytes_get_well_formed_answers_or_a_clean_close(plane, mutations):
    data = bytearray(GOOD)
    for kind, at, blob in mutations:
        at = min(at, len(data))
        if kind == "flip" and at < len(data):
            data[at] ^= blob[0] or 1
        elif kind == "insert":
            data[at:at] = blob
        elif kind == "delete":
            del data[at:at + blob[0] % 16 + 1]
        elif kind == "truncate":
            del data[at:]
        elif kind == "repeat":
            data += data[: at]  # a second (pipelined) request, perhaps partial
    check(plane, exchange(plane["port"], bytes(data)))


def test_memory_stays_bounded_over_the_fuzz_runs(plane):
    """Runs after the fuzz tests (file order): the plane's process did not balloon."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for depth in (50_000, 200_000):
        body = nest({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "aegis_handoff", "arguments": {}}}, depth)
        status = responses(exchange(plane["port"], request(plane["path"], body), half_close=False))[0][0]
        assert status == 400
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 256 * 1024, f"peak memory grew by {grown_kib // 1024} MiB"
