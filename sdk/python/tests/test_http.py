"""The SDK's transport (`countersign._http`: httpcore's pool driven
directly, asyncio streams under it on 3.11+) against a misbehaving
gateway: a loopback socket server that closes kept-alive connections,
never answers, or answers garbage — each must be a retry on a fresh
connection or `GatewayUnavailable`, never an answer or a hang — what
goes on the wire (Host, token, JSON body, path prefix, query), and TLS
verified as httpx verifies it (a self-signed certificate made with the
system's `openssl`)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

import countersign
from countersign import GatewayUnavailable
from countersign._core import Call

OK = b'{"ok":true}'


def answer(body: bytes = OK, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: " + connection
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


class Server:
    """Accepts connections on a free loopback port; `serve(conn)` runs for each."""

    def __init__(self, serve: Callable[[socket.socket], None], tls: Optional[ssl.SSLContext] = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.tls = tls
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.sock.getsockname()[1])
        self.connections = 0
        self.requests: List[bytes] = []
        self._serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.tls is not None:
                    with self.tls.wrap_socket(conn, server_side=True) as secure:
                        self._serve(secure)
                else:
                    self._serve(conn)
            except OSError:  # ssl.SSLError too: a client that refused the certificate
                pass

    def close(self) -> None:
        self.sock.close()


def both(url: str, call: Call) -> List[object]:
    """The same call through the blocking and the asyncio client."""
    sync = countersign.Client(url, "t")
    try:
        first = sync._call(call)
    finally:
        sync.close()

    async def run() -> object:
        async with countersign.AsyncClient(url, "t") as client:
            return await client._call(call)

    return [first, asyncio.run(run())]


def test_a_kept_alive_connection_the_gateway_closed_is_not_reused():
    def serve(conn: socket.socket) -> None:
        request = read_request(conn)
        server.requests.append(request)
        # Says keep-alive, then closes anyway (a gateway restarting, an idle timeout).
        conn.sendall(answer())

    server = Server(serve)
    try:
        sync = countersign.Client(server.url, "t")
        assert sync.whoami() == {"ok": True}
        time.sleep(0.1)
        assert sync.whoami() == {"ok": True}
        sync.close()

        async def run() -> None:
            async with countersign.AsyncClient(server.url, "t") as client:
                assert await client.whoami() == {"ok": True}
                await asyncio.sleep(0.1)
                assert await client.whoami() == {"ok": True}

        asyncio.run(run())
        assert server.connections == 4
    finally:
        server.close()


def test_a_kept_alive_connection_is_reused():
    def serve(conn: socket.socket) -> None:
        while True:
            request = read_request(conn)
            if not request:
                return
            conn.sendall(answer())

    server = Server(serve)
    try:
        both(server.url, Call("GET", "/v1/whoami"))
        sync = countersign.Client(server.url, "t")
        for _ in range(3):
            assert sync.whoami() == {"ok": True}
        sync.close()

        async def run() -> None:
            async with countersign.AsyncClient(server.url, "t") as client:
                for _ in range(3):
                    assert await client.whoami() == {"ok": True}

        asyncio.run(run())
        # One connection per client in `both`, one for each loop of three.
        assert server.connections == 4
    finally:
        server.close()


def test_a_gateway_that_never_answers_times_out_closed():
    def serve(conn: socket.socket) -> None:
        read_request(conn)
        time.sleep(5)

    server = Server(serve)
    try:
        started = time.monotonic()
        sync = countersign.Client(server.url, "t")
        with pytest.raises(GatewayUnavailable):
            sync._call(Call("GET", "/v1/whoami", timeout=0.3))
        sync.close()

        async def run() -> None:
            async with countersign.AsyncClient(server.url, "t") as client:
                with pytest.raises(GatewayUnavailable):
                    await client._call(Call("GET", "/v1/whoami", timeout=0.3))

        asyncio.run(run())
        assert time.monotonic() - started < 3
    finally:
        server.close()


@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}", b""])
def test_a_garbled_or_cut_answer_is_unavailable_not_an_answer(reply: bytes):
    def serve(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(reply)

    server = Server(serve)
    try:
        sync = countersign.Client(server.url, "t")
        with pytest.raises(GatewayUnavailable):
            sync.whoami()
        sync.close()

        async def run() -> None:
            async with countersign.AsyncClient(server.url, "t") as client:
                with pytest.raises(GatewayUnavailable):
                    await client.whoami()

        asyncio.run(run())
    finally:
        server.close()


def test_what_goes_on_the_wire():
    def serve(conn: socket.socket) -> None:
        server.requests.append(read_request(conn))
        conn.sendall(answer(json.dumps({"id": "r/1", "status": "allowed", "reason": "",
                                        "fingerprint": "sha256:a"}).encode(), close=True))

    server = Server(serve)
    try:
        # A path prefix on the server URL is kept; the query is encoded; the
        # body is the action as compact UTF-8 JSON with its length.
        prefixed = server.url + "/cs/"
        sync = countersign.Client(prefixed, "tok")
        sync.submit("k.x", "staging-ü", {"n": 1}, reuse_open=True)
        sync.close()

        async def run() -> None:
            async with countersign.AsyncClient(prefixed, "tok") as client:
                await client.get("a/b?c", wait=2)

        asyncio.run(run())
        submit, get = server.requests
        head, _, body = submit.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /cs/v1/actions?reuse=open HTTP/1.1"
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        assert headers[b"host"] == server.url[len("http://"):].encode()
        assert headers[b"authorization"] == b"Bearer tok"
        assert headers[b"content-type"] == b"application/json"
        assert int(headers[b"content-length"]) == len(body)
        assert json.loads(body) == {"kind": "k.x", "resource": "staging-ü", "payload": {"n": 1},
                                    "labels": [], "context": {}}
        assert "staging-ü".encode() in body  # UTF-8, as httpx's json= sends it
        # An id stays one path segment.
        assert get.split(b"\r\n")[0] == b"GET /cs/v1/actions/a%2Fb%3Fc?wait=2 HTTP/1.1"
    finally:
        server.close()


def test_tls_is_verified_as_httpx_verifies_it(tmp_path: Path):
    # A self-signed certificate for 127.0.0.1, made with the system's openssl.
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for this test (Debian package `openssl`)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)

    def serve(conn: socket.socket) -> None:
        while True:
            request = read_request(conn)
            if not request:
                return
            conn.sendall(answer())

    server = Server(serve, tls=server_side)
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        # The system's roots do not know this certificate: refused, fail closed.
        with pytest.raises(GatewayUnavailable):
            countersign.Client(server.url, "t").whoami()
        # Trusting exactly it (what COUNTERSIGN_CA_FILE builds): answered.
        sync = countersign.Client(server.url, "t", verify=trusted)
        assert sync.whoami() == {"ok": True}
        assert sync.whoami() == {"ok": True}
        sync.close()

        async def run() -> None:
            async with countersign.AsyncClient(server.url, "t") as client:
                with pytest.raises(GatewayUnavailable):
                    await client.whoami()
            async with countersign.AsyncClient(server.url, "t", verify=trusted) as client:
                assert await client.whoami() == {"ok": True}
                assert await client.whoami() == {"ok": True}

        asyncio.run(run())
    finally:
        server.close()


def both_fail(url: str, call: Call) -> None:
    """The call is `GatewayUnavailable` through the blocking and the asyncio client."""
    sync = countersign.Client(url, "t")
    try:
        with pytest.raises(GatewayUnavailable):
            sync._call(call)
    finally:
        sync.close()

    async def run() -> None:
        async with countersign.AsyncClient(url, "t") as client:
            with pytest.raises(GatewayUnavailable):
                await client._call(call)

    asyncio.run(run())


def test_an_answer_larger_than_the_limit_is_unavailable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(countersign._http, "MAX_ANSWER", 1000)

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        # Chunked, never ending: only the limit stops the reading.
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while True:
                conn.sendall(b"100\r\n" + b"x" * 256 + b"\r\n")
        except OSError:
            return

    server = Server(serve)
    try:
        both_fail(server.url, Call("GET", "/v1/whoami"))
    finally:
        server.close()


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",  # a header past h11's limit
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",  # two lengths: smuggling
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a chunk size that is not hex
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + b"HTTP/1.1 200 OK\r\n",  # bytes after the answer
])
def test_a_malformed_answer_is_unavailable_and_its_connection_is_not_reused(reply: bytes):
    def serve(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(reply)
            time.sleep(0.05)

    server = Server(serve)
    try:
        if reply.endswith(b"HTTP/1.1 200 OK\r\n"):
            # The first answer is whole; what follows it makes the connection unfit to reuse.
            sync = countersign.Client(server.url, "t")
            assert sync._call(Call("GET", "/v1/whoami")) == {}
            time.sleep(0.1)
            assert sync._call(Call("GET", "/v1/whoami")) == {}
            sync.close()
            assert server.connections == 2
            return
        both_fail(server.url, Call("GET", "/v1/whoami"))
    finally:
        server.close()


def test_a_trickled_answer_ends_at_the_calls_timeout():
    def serve(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        try:
            for _ in range(100):
                conn.sendall(b"x")
                time.sleep(0.05)
        except OSError:
            return

    server = Server(serve)
    try:
        started = time.monotonic()
        both_fail(server.url, Call("GET", "/v1/whoami", timeout=0.5))
        assert time.monotonic() - started < 2.5
    finally:
        server.close()


def test_chunked_and_informational_answers_are_read_and_close_is_honoured():
    def serve(conn: socket.socket) -> None:
        while read_request(conn):
            # A 100 Continue first, then the answer in two chunks; then
            # `Connection: close` while the socket stays open: the client
            # must still not send a second request on it.
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n5\r\n{\"ok\"\r\n6\r\n:true}\r\n0\r\n\r\n")

    server = Server(serve)
    try:
        assert both(server.url, Call("GET", "/v1/whoami")) == [{"ok": True}, {"ok": True}]
        assert server.connections == 2
        sync = countersign.Client(server.url, "t")
        assert sync.whoami() == {"ok": True}
        assert sync.whoami() == {"ok": True}
        sync.close()
        assert server.connections == 4
    finally:
        server.close()


def test_a_connection_is_not_reused_after_a_timeout():
    answered = []

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        if not answered:
            answered.append(1)
            time.sleep(0.5)  # the first call gives up meanwhile
            conn.sendall(answer(b'{"late":true}'))  # a late answer must never be read as the next one
            time.sleep(0.5)
            return
        conn.sendall(answer())

    for client_kind in ("sync", "async"):
        answered.clear()
        server = Server(serve)
        try:
            if client_kind == "sync":
                sync = countersign.Client(server.url, "t")
                with pytest.raises(GatewayUnavailable):
                    sync._call(Call("GET", "/v1/whoami", timeout=0.2))
                time.sleep(0.4)
                assert sync.whoami() == {"ok": True}
                sync.close()
            else:
                async def run() -> None:
                    async with countersign.AsyncClient(server.url, "t") as client:
                        with pytest.raises(GatewayUnavailable):
                            await client._call(Call("GET", "/v1/whoami", timeout=0.2))
                        await asyncio.sleep(0.4)
                        assert await client.whoami() == {"ok": True}

                asyncio.run(run())
            assert server.connections == 2
        finally:
            server.close()
