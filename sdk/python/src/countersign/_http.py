"""How the clients and the outcome sender move bytes: httpcore's connection
pools (the layer httpx itself sends through), driven directly.

The SDK's calls are a few JSON requests to one server, so httpx's
`Client` layers — URL merging and re-parsing, header and cookie models,
auth and redirect machinery, and anyio cancel scopes around each of them —
cost more than the gateway's answer on loopback (about 0.3–0.7 ms a call,
see `bench/http_clients.py`). What is kept is what httpx's default
transport configures: the same pool limits and keep-alive, HTTP/1.1 only,
the SSL context httpx builds from `verify` (`httpx.create_ssl_context`, no
environment), no proxies, no redirects followed, and the call's timeout on
connect, write, read and pool alike. Every httpcore error is a transport
error (the caller maps it to `GatewayUnavailable`: fail closed).

On asyncio (Python 3.11+, plain `http://`), the pool's sockets are asyncio
streams (`_AsyncioBackend`: bytes in and out with the call's timeout, no
HTTP in it — h11 and httpcore still frame every request and answer)
instead of anyio's, whose cancel scopes and socket attribute lookups on
every read and write cost about 0.2 ms of CPU a call. `https://`, and
older Pythons, keep httpcore's own backend (anyio).

A client given its own `httpx.Client` / `httpx.AsyncClient` (`http=`) is
driven through it instead, unchanged.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type
from urllib.parse import quote, urlencode, urlsplit

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
)

Header = Tuple[bytes, bytes]


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

    def url(self, path: str, params: Optional[Dict[str, Any]]) -> httpcore.URL:
        target = self.prefix + path
        if params:
            target += "?" + urlencode({k: _param(v) for k, v in params.items()})
        return httpcore.URL(scheme=self.scheme, host=self.host, port=self.port, target=target.encode("ascii"))

    def request(self, path: str, params: Optional[Dict[str, Any]], body: Optional[Any],
                timeout: float) -> Tuple[httpcore.URL, List[Header], Optional[bytes], Dict[str, Any]]:
        if body is None:
            headers, content = self.headers, None
        else:
            content = encode(body)
            headers = self.json_headers + [(b"Content-Length", str(len(content)).encode("ascii"))]
        return self.url(path, params), headers, content, _extensions(timeout)


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


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """One plain TCP connection as an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as e:
            raise httpcore.ReadTimeout(str(e)) from e
        except OSError as e:
            raise httpcore.ReadError(str(e)) from e

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as e:
            raise httpcore.WriteTimeout(str(e)) from e
        except OSError as e:
            raise httpcore.WriteError(str(e)) from e

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(self, ssl_context: Any, server_hostname: Optional[str] = None,
                        timeout: Optional[float] = None) -> httpcore.AsyncNetworkStream:
        # Only plain http:// pools use this backend; TLS stays with anyio's.
        raise httpcore.UnsupportedProtocol("TLS is not handled by this backend")

    def get_extra_info(self, info: str) -> Any:
        sock = self._writer.get_extra_info("socket")
        if info == "is_readable":
            # An idle keep-alive connection that reads is one the server
            # closed (or a stray byte): the pool then drops it.
            return self._reader.at_eof() or _readable(sock)
        if info == "client_addr":
            return None if sock is None else sock.getsockname()
        if info == "server_addr":
            return None if sock is None else sock.getpeername()
        return None


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


class _AsyncioBackend(httpcore.AsyncNetworkBackend):
    """What `httpcore.AsyncConnectionPool` opens plain TCP connections with."""

    async def connect_tcp(self, host: str, port: int, timeout: Optional[float] = None,
                          local_address: Optional[str] = None,
                          socket_options: Optional[Iterable[Any]] = None) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=None if local_address is None else (local_address, 0))
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(str(e)) from e
        except OSError as e:
            raise httpcore.ConnectError(str(e)) from e
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return _AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: Optional[float] = None,
                                  socket_options: Optional[Iterable[Any]] = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("unix sockets are not used")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SyncHttp:
    """Blocking calls over one pool."""

    def __init__(self, server: str, headers: Dict[str, str], verify: Any,
                 http: Optional[httpx.Client] = None) -> None:
        self._target = _Target(server, headers)
        self._httpx = http
        self._pool = None if http is not None else httpcore.ConnectionPool(**_pool_options(self._target, verify))

    def request(self, method: str, path: str, params: Optional[Dict[str, Any]], body: Optional[Any],
                timeout: float) -> Answer:
        """One exchange; raises one of `TRANSPORT_ERRORS` when it fails."""
        if self._httpx is not None:
            r = self._httpx.request(method, path, params=params, json=body, timeout=timeout)
            return Answer(r.status_code, r.content, r.reason_phrase)
        assert self._pool is not None
        url, headers, content, extensions = self._target.request(path, params, body, timeout)
        response = self._pool.request(method, url, headers=headers, content=content, extensions=extensions)
        return Answer(response.status, response.content, _reason(response))

    def close(self) -> None:
        if self._httpx is not None:
            self._httpx.close()
        elif self._pool is not None:
            self._pool.close()


class AsyncHttp:
    """The asyncio twin of `SyncHttp`."""

    def __init__(self, server: str, headers: Dict[str, str], verify: Any,
                 http: Optional[httpx.AsyncClient] = None) -> None:
        self._target = _Target(server, headers)
        self._httpx = http
        # Plain http:// on 3.11+ (asyncio.timeout): asyncio streams, not anyio's.
        backend = None if self._target.https or not hasattr(asyncio, "timeout") else _AsyncioBackend()
        self._pool = None if http is not None else httpcore.AsyncConnectionPool(
            **_pool_options(self._target, verify), network_backend=backend)

    async def request(self, method: str, path: str, params: Optional[Dict[str, Any]], body: Optional[Any],
                      timeout: float) -> Answer:
        if self._httpx is not None:
            r = await self._httpx.request(method, path, params=params, json=body, timeout=timeout)
            return Answer(r.status_code, r.content, r.reason_phrase)
        assert self._pool is not None
        url, headers, content, extensions = self._target.request(path, params, body, timeout)
        response = await self._pool.request(method, url, headers=headers, content=content, extensions=extensions)
        return Answer(response.status, response.content, _reason(response))

    async def aclose(self) -> None:
        if self._httpx is not None:
            await self._httpx.aclose()
        elif self._pool is not None:
            await self._pool.aclose()
