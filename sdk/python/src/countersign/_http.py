"""How the clients and the outcome sender move bytes.

The SDK's calls are a few JSON requests to one server. Over plain
`http://` they go through `_SyncPool` / `_AsyncPool`: keep-alive HTTP/1.1
connections (a socket, or an asyncio stream on Python 3.11+) with h11 — the
parser httpcore itself frames HTTP/1.1 with — building every request and
parsing every answer. httpx's `Client` layers (URL and header models,
auth and redirect machinery, anyio cancel scopes) and httpcore's pool
(anyio locks, request queue, trace hooks) around those same h11 calls cost
more CPU than the gateway's answer on loopback, and inside an agent
framework that code runs with cold caches, at about twice its cost
(`bench/http_clients.py`, `bench/overhead.py`). What is kept is what
httpx's default transport does: HTTP/1.1, up to 20 idle connections kept
5 s, one reused only after a clean exchange and when nothing is waiting to
be read on it (a server that closed it), no proxies, no redirects followed,
the call's timeout on every step. An answer larger than `MAX_ANSWER`,
malformed, cut short, or a socket error or timeout is a transport error
(`TRANSPORT_ERRORS`; the caller maps it to `GatewayUnavailable`: fail
closed), and the connection is closed, never reused.

`https://` (and asyncio on Python < 3.11) goes through httpcore's own
connection pool with the SSL context httpx builds from `verify`
(`httpx.create_ssl_context`, no environment). A client given its own
`httpx.Client` / `httpx.AsyncClient` (`http=`) is driven through it instead,
unchanged.
"""
from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type
from urllib.parse import quote, urlencode, urlsplit

import h11
import httpcore
import httpx

#: What a failed exchange raises: every httpcore error (the pool maps OS
#: and TLS errors to these), as httpx's own transport maps them.
TRANSPORT_ERRORS: Tuple[Type[Exception], ...] = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
    httpcore.ConnectionNotAvailable,
    httpx.HTTPError,
    h11.ProtocolError,
)

Header = Tuple[bytes, bytes]
#: Idle keep-alive connections a pool keeps, and for how long (httpx's defaults).
KEEPALIVE = 20
KEEPALIVE_EXPIRY = 5.0
READ_SIZE = 65536
#: The largest answer read (the gateway's own limits keep answers far below).
MAX_ANSWER = 16 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer: what `_core.read` looks at."""

    status_code: int
    content: bytes
    reason_phrase: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def encode(body: Any) -> bytes:
    """A JSON body as httpx's `json=` encodes it (compact, UTF-8, no NaN)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class _Target:
    """The server split once: scheme, host, port, path prefix and the
    headers every call sends."""

    def __init__(self, server: str, headers: Dict[str, str]) -> None:
        url = urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"the server `{server}` is not an http:// or https:// URL")
        self.https = url.scheme == "https"
        self.scheme = url.scheme.encode("ascii")
        self.host = url.hostname.encode("idna")
        self.port = url.port
        self.prefix = quote(url.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
        default = 443 if self.https else 80
        host = url.hostname if ":" not in url.hostname else f"[{url.hostname}]"
        authority = host if self.port in (None, default) else f"{host}:{self.port}"
        self.headers: List[Header] = [(b"Host", authority.encode("idna"))]
        self.headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.json_headers = self.headers + [(b"Content-Type", b"application/json")]

    def target(self, path: str, params: Optional[Dict[str, Any]]) -> bytes:
        """The request line's target: the path prefix, the path, the encoded query."""
        target = self.prefix + path
        if params:
            target += "?" + urlencode({k: _param(v) for k, v in params.items()})
        return target.encode("ascii")

    def request(self, path: str, params: Optional[Dict[str, Any]],
                body: Optional[Any]) -> Tuple[bytes, List[Header], Optional[bytes]]:
        if body is None:
            return self.target(path, params), self.headers, None
        content = encode(body)
        return (self.target(path, params), self.json_headers + [(b"Content-Length", str(len(content)).encode("ascii"))],
                content)

    def url(self, target: bytes) -> httpcore.URL:
        return httpcore.URL(scheme=self.scheme, host=self.host, port=self.port, target=target)


def _extensions(timeout: float) -> Dict[str, Any]:
    """The call's timeout on connect, write, read and pool alike (as httpx's `timeout=`)."""
    return {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}


def _param(value: Any) -> str:
    # As httpx renders query values.
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _reason(response: httpcore.Response) -> str:
    reason = response.extensions.get("reason_phrase", b"")
    return reason.decode("ascii", errors="replace") if isinstance(reason, bytes) else str(reason)


def _pool_options(target: _Target, verify: Any) -> Dict[str, Any]:
    # httpx's default transport: the same limits, HTTP/1.1, no retries.
    return {
        "ssl_context": httpx.create_ssl_context(verify=verify, trust_env=False) if target.https else None,
        "max_connections": 100,
        "max_keepalive_connections": 20,
        "keepalive_expiry": 5.0,
        "http1": True,
        "http2": False,
    }


class _Reading:
    """One answer as h11 parses it from the bytes read (sans I/O): its
    status, reason and body, at most `MAX_ANSWER` bytes of it."""

    __slots__ = ("conn", "status", "reason", "body", "size")

    def __init__(self, conn: h11.Connection) -> None:
        self.conn = conn
        self.status = 0
        self.reason = b""
        self.body: List[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> Optional[Answer]:
        """The whole answer once `data` (b"" at the end of the stream) completes it; else None."""
        self.conn.receive_data(data)
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Response):
                self.status, self.reason = event.status_code, event.reason
            elif isinstance(event, h11.Data):
                self.size += len(event.data)
                if self.size > MAX_ANSWER:
                    raise httpcore.RemoteProtocolError("the answer is larger than the client reads")
                self.body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return Answer(self.status, b"".join(self.body), self.reason.decode("ascii", errors="replace"))
            elif isinstance(event, h11.ConnectionClosed):
                raise httpcore.RemoteProtocolError("the server closed the connection without a whole answer")
            # An informational (1xx) answer comes before the real one: skipped.


def _request_bytes(conn: h11.Connection, method: str, target: bytes, headers: List[Header],
                   content: Optional[bytes]) -> bytes:
    data = conn.send(h11.Request(method=method, target=target, headers=headers))
    if content:
        data += conn.send(h11.Data(data=content))
    return data + conn.send(h11.EndOfMessage())


def _reusable(conn: h11.Connection) -> bool:
    """Whether the exchange ended cleanly with both sides keeping the connection; readies it for the next.

    Bytes already read past the answer mean the two sides disagree on where
    it ended (a smuggled or stray answer): never read as the next one."""
    if conn.our_state is h11.DONE and conn.their_state is h11.DONE and conn.trailing_data == (b"", False):
        conn.start_next_cycle()
        return True
    return False


def _readable(sock: Any) -> bool:
    """Whether a socket has something to read now (or is closed)."""
    if sock is None or sock.fileno() < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
        return bool(readable)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _SyncConnection:
    __slots__ = ("sock", "h11", "idle_since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0


class _SyncPool:
    """Keep-alive HTTP/1.1 connections to one plain-http server, h11 framing
    every request and answer. A connection is reused only after a clean
    exchange, within `KEEPALIVE_EXPIRY`, and when nothing waits to be read
    on it (a server that closed it, or sent a stray byte): else closed."""

    def __init__(self, target: _Target) -> None:
        self._address = (target.host.decode("ascii"), target.port or 80)
        self._idle: List[_SyncConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _take(self) -> Optional[_SyncConnection]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if time.monotonic() - conn.idle_since < KEEPALIVE_EXPIRY and not _readable(conn.sock):
                    return conn
                conn.sock.close()
        return None

    def _give_back(self, conn: _SyncConnection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < KEEPALIVE:
                self._idle.append(conn)
                return
        conn.sock.close()

    def request(self, method: str, target: bytes, headers: List[Header], content: Optional[bytes],
                timeout: float) -> Answer:
        # One deadline for the whole call, connecting included (as the
        # asyncio twin's single `asyncio.timeout`): a slow connect followed
        # by a trickled answer does not get the timeout twice.
        deadline = time.monotonic() + timeout
        conn = self._take()
        try:
            if conn is None:
                try:
                    sock = socket.create_connection(self._address, timeout)
                except socket.timeout as e:
                    raise httpcore.ConnectTimeout(str(e)) from e
                except OSError as e:
                    raise httpcore.ConnectError(str(e)) from e
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _SyncConnection(sock)
            # A server trickling its answer a byte at a time does not hold
            # the caller past the deadline either.
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("connecting took the call's whole timeout")
            conn.sock.settimeout(left)
            reading = _Reading(conn.h11)
            try:
                conn.sock.sendall(_request_bytes(conn.h11, method, target, headers, content))
                answer = None
                while answer is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise httpcore.ReadTimeout("the answer did not come within the call's timeout")
                    conn.sock.settimeout(left)
                    answer = reading.feed(conn.sock.recv(READ_SIZE))
            except socket.timeout as e:
                raise httpcore.ReadTimeout(str(e)) from e
            except OSError as e:
                raise httpcore.ReadError(str(e)) from e
        except BaseException:
            if conn is not None:
                conn.sock.close()
            raise
        if _reusable(conn.h11):
            self._give_back(conn)
        else:
            conn.sock.close()
        return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.sock.close()


class _AsyncConnection:
    __slots__ = ("reader", "writer", "h11", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0


def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except RuntimeError:
        pass  # its loop is closed already (a task dropped with it): the transport's finalizer closes the socket


class _AsyncPool:
    """The asyncio twin of `_SyncPool` (one event loop; Python 3.11+ for `asyncio.timeout`)."""

    def __init__(self, target: _Target) -> None:
        self._host = target.host.decode("ascii")
        self._port = target.port or 80
        self._idle: List[_AsyncConnection] = []
        self._closed = False

    def _take(self) -> Optional[_AsyncConnection]:
        while self._idle:
            conn = self._idle.pop()
            if (time.monotonic() - conn.idle_since < KEEPALIVE_EXPIRY and not conn.reader.at_eof()
                    and not _readable(conn.writer.get_extra_info("socket"))):
                return conn
            _close(conn.writer)
        return None

    async def _connect(self) -> _AsyncConnection:
        try:
            reader, writer = await asyncio.open_connection(self._host, self._port, limit=READ_SIZE)
        except TimeoutError:
            raise
        except OSError as e:
            raise httpcore.ConnectError(str(e)) from e
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _AsyncConnection(reader, writer)

    async def request(self, method: str, target: bytes, headers: List[Header], content: Optional[bytes],
                      timeout: float) -> Answer:
        conn = self._take()
        fresh = conn is None
        try:
            async with asyncio.timeout(timeout):
                if conn is None:
                    conn = await self._connect()
                fresh = False
                reading = _Reading(conn.h11)
                conn.writer.write(_request_bytes(conn.h11, method, target, headers, content))
                await conn.writer.drain()
                answer = None
                while answer is None:
                    answer = reading.feed(await conn.reader.read(READ_SIZE))
        except BaseException as e:
            if conn is not None:
                _close(conn.writer)
            if isinstance(e, TimeoutError):
                raise (httpcore.ConnectTimeout if fresh else httpcore.ReadTimeout)(str(e)) from e
            if isinstance(e, OSError):
                raise httpcore.ReadError(str(e)) from e
            raise
        if _reusable(conn.h11) and not self._closed and len(self._idle) < KEEPALIVE:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            _close(conn.writer)
        return answer

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn.writer)


class SyncHttp:
    """Blocking calls: over `_SyncPool` (plain http://), httpcore's pool (https://), or a given httpx client."""

    def __init__(self, server: str, headers: Dict[str, str], verify: Any,
                 http: Optional[httpx.Client] = None) -> None:
        self._target = _Target(server, headers)
        self._httpx = http
        self._plain = _SyncPool(self._target) if http is None and not self._target.https else None
        self._pool = httpcore.ConnectionPool(**_pool_options(self._target, verify)) \
            if http is None and self._target.https else None

    def request(self, method: str, path: str, params: Optional[Dict[str, Any]], body: Optional[Any],
                timeout: float) -> Answer:
        """One exchange; raises one of `TRANSPORT_ERRORS` when it fails."""
        if self._httpx is not None:
            r = self._httpx.request(method, path, params=params, json=body, timeout=timeout)
            return Answer(r.status_code, r.content, r.reason_phrase)
        target, headers, content = self._target.request(path, params, body)
        if self._plain is not None:
            return self._plain.request(method, target, headers, content, timeout)
        assert self._pool is not None
        response = self._pool.request(method, self._target.url(target), headers=headers, content=content,
                                      extensions=_extensions(timeout))
        return Answer(response.status, response.content, _reason(response))

    def close(self) -> None:
        if self._httpx is not None:
            self._httpx.close()
        if self._plain is not None:
            self._plain.close()
        if self._pool is not None:
            self._pool.close()


class AsyncHttp:
    """The asyncio twin of `SyncHttp` (`_AsyncPool` needs Python 3.11+: older ones use httpcore's pool)."""

    def __init__(self, server: str, headers: Dict[str, str], verify: Any,
                 http: Optional[httpx.AsyncClient] = None) -> None:
        self._target = _Target(server, headers)
        self._httpx = http
        own = http is None and not self._target.https and hasattr(asyncio, "timeout")
        self._plain = _AsyncPool(self._target) if own else None
        self._pool = httpcore.AsyncConnectionPool(**_pool_options(self._target, verify)) \
            if http is None and not own else None

    async def request(self, method: str, path: str, params: Optional[Dict[str, Any]], body: Optional[Any],
                      timeout: float) -> Answer:
        if self._httpx is not None:
            r = await self._httpx.request(method, path, params=params, json=body, timeout=timeout)
            return Answer(r.status_code, r.content, r.reason_phrase)
        target, headers, content = self._target.request(path, params, body)
        if self._plain is not None:
            return await self._plain.request(method, target, headers, content, timeout)
        assert self._pool is not None
        response = await self._pool.request(method, self._target.url(target), headers=headers, content=content,
                                            extensions=_extensions(timeout))
        return Answer(response.status, response.content, _reason(response))

    async def aclose(self) -> None:
        if self._httpx is not None:
            await self._httpx.aclose()
        if self._plain is not None:
            await self._plain.aclose()
        if self._pool is not None:
            await self._pool.aclose()
