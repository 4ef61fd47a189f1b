"""What one gateway call costs the Python side, per HTTP client: the same
`GET /healthz` (no storage) and `POST /v1/actions` (one fsynced decision)
over httpx (sync, asyncio, sync in a worker thread), httpcore directly, and
a bare asyncio stream on one keep-alive connection (the floor: no client
library at all). The differences are what the client library costs.

    .venv-sdk-python/bin/python sdk/python/bench/http_clients.py --bin target/release/countersign

A benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Awaitable, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]

import httpcore  # noqa: E402
import httpx  # noqa: E402


async def timed(n: int, once: Callable[[], Awaitable[Any]]) -> float:
    for _ in range(n // 10):
        await once()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def bench(url: str, token: str, n: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    action = {"kind": "bench.call", "resource": "staging-x", "payload": {"n": 1}}
    body = json.dumps(action).encode()
    sync = httpx.Client(base_url=url, headers=auth)
    asy = httpx.AsyncClient(base_url=url, headers=auth)
    worker = ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()
    core_headers = [(b"Host", url[len("http://"):].encode()), (b"Authorization", auth["Authorization"].encode())]
    core_post = core_headers + [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode())]
    core_sync = httpcore.ConnectionPool()
    core_async = httpcore.AsyncConnectionPool()
    host, port = url[len("http://"):].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))

    async def bare(method: str, path: str, data: bytes = b"") -> bytes:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth['Authorization']}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await reader.readexactly(length)

    async def run_sync(fn: Callable[[], Any]) -> None:
        fn()

    variants = {
        "httpx sync": (lambda: run_sync(lambda: sync.get("/healthz")),
                       lambda: run_sync(lambda: sync.post("/v1/actions", json=action))),
        "httpx asyncio": (lambda: asy.get("/healthz"), lambda: asy.post("/v1/actions", json=action)),
        "httpx sync in a thread": (
            lambda: loop.run_in_executor(worker, lambda: sync.get("/healthz")),
            lambda: loop.run_in_executor(worker, lambda: sync.post("/v1/actions", json=action))),
        "httpcore sync": (lambda: run_sync(lambda: core_sync.request("GET", url + "/healthz", headers=core_headers)),
                          lambda: run_sync(lambda: core_sync.request("POST", url + "/v1/actions", headers=core_post,
                                                                     content=body))),
        "httpcore asyncio": (lambda: core_async.request("GET", url + "/healthz", headers=core_headers),
                             lambda: core_async.request("POST", url + "/v1/actions", headers=core_post, content=body)),
        "bare asyncio stream": (lambda: bare("GET", "/healthz"), lambda: bare("POST", "/v1/actions", body)),
    }
    print(f"{'client':24} {'healthz p50':>12} {'submit p50':>12}  (ms, {n} calls each)")
    for name, (health, submit) in variants.items():
        print(f"{name:24} {await timed(n, health):12.3f} {await timed(n, submit):12.3f}", flush=True)
    writer.close()
    sync.close()
    await asy.aclose()
    core_sync.close()
    await core_async.aclose()
    worker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(HERE.parents[2] / "target" / "release" / "countersign"))
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    os.environ["CS_SDK_BIN"] = args.bin
    import conftest

    with tempfile.TemporaryDirectory() as tmp:
        gateway = conftest.Gateway(Path(tmp))
        try:
            asyncio.run(bench(gateway.url, gateway.tokens["bot"], args.n))
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
