"""The upstream API of the HTTP proxy tests: a FastAPI app served by
uvicorn on a port of its own choosing (printed as `port N` once bound).
It serves WebSockets too (`/ws/<name>`, through uvicorn's `websockets`
implementation): an echo that also answers `close`, `big N` (a binary
message of N bytes), `ticks N` (N text messages, 0.25 s apart) and
`flood N` (N text messages, 1 ms apart).

It checks the gateway's credential itself (UPSTREAM_TOKEN) and remembers,
for GET /_seen, how often each method and path was called and what the
last request looked like: whether it carried the
expected credential, whether any header held an agent key or a cookie, and
which headers came, so tests can tell what the gateway forwarded without
the API ever echoing the credential back.
"""

import asyncio
import os
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from sse_starlette.sse import EventSourceResponse

TOKEN = os.environ["UPSTREAM_TOKEN"]
app = FastAPI(title="items")
items = {"1": {"id": "1", "name": "first"}}
seen = {}
# How many times each "METHOD /path" reached the API (not GET /_seen).
calls = {}


@app.middleware("http")
async def check_credential(request: Request, call_next):
    if request.url.path != "/_seen":
        body = await request.body()
        key = f"{request.method} {request.url.path}"
        calls[key] = calls.get(key, 0) + 1
        seen.clear()
        seen.update(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "credential_ok": request.headers.get("authorization") == f"Bearer {TOKEN}",
                "agent_key_seen": any("csa_" in v for v in request.headers.values()),
                "cookie_seen": "cookie" in request.headers,
                "headers": sorted(k for k in request.headers.keys() if k != "authorization"),
                "host": request.headers.get("host"),
                "body": body.decode("utf-8", "replace"),
            }
        )
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"detail": "bad credential"}, status_code=401)
    return await call_next(request)


@app.get("/_seen", operation_id="lastSeen")
async def last_seen():
    return {**seen, "calls": calls}


@app.get("/items/{item_id}", operation_id="getItem")
async def get_item(item_id: str):
    if item_id not in items:
        return JSONResponse({"detail": "no such item"}, status_code=404)
    return items[item_id]


@app.post("/items", operation_id="createItem", status_code=201)
async def create_item(request: Request):
    item = await request.json()
    items[str(item["id"])] = item
    return item


@app.delete("/items/{item_id}", operation_id="deleteItem", status_code=204)
async def delete_item(item_id: str):
    items.pop(item_id, None)
    return Response(status_code=204)


@app.get("/events", operation_id="streamEvents")
async def events(count: int = 5, every: float = 0.2):
    async def generate():
        for i in range(count):
            yield {"event": "tick", "id": str(i), "data": f"tick {i}"}
            await asyncio.sleep(every)

    return EventSourceResponse(generate())


@app.get("/chunks", operation_id="streamChunks")
async def chunks(count: int = 3):
    async def generate():
        for i in range(count):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0.05)

    return StreamingResponse(generate(), media_type="text/plain", headers={"set-cookie": "upstream=secret"})


@app.get("/elsewhere", operation_id="redirectElsewhere")
async def elsewhere(to: str):
    return RedirectResponse(to, status_code=302)


def echoed(request: Request):
    """A careless API: it says back the request's headers, the gateway's
    credential among them, in its body and in a header."""
    auth = request.headers.get("authorization", "")
    return JSONResponse({"headers": dict(request.headers)}, headers={"x-echo-authorization": auth})


@app.get("/echo", operation_id="echoRequest")
async def echo(request: Request):
    return echoed(request)


@app.post("/echo", operation_id="echoPost")
async def echo_post(request: Request):
    return echoed(request)


@app.get("/echo/text", operation_id="echoText")
async def echo_text(request: Request, cut: int = 0):
    """Careless, in plain text, ending with the first `cut` characters of
    the token: an end that could begin the credential."""
    auth = request.headers.get("authorization", "")
    return Response(f"{auth}\n{auth.removeprefix('Bearer ')[:cut]}", media_type="text/plain")


@app.websocket("/ws/{name}")
async def websocket(ws: WebSocket, name: str):
    key = f"WS /ws/{name}"
    calls[key] = calls.get(key, 0) + 1
    seen.clear()
    seen.update(
        {
            "method": "WS",
            "path": ws.url.path,
            "credential_ok": ws.headers.get("authorization") == f"Bearer {TOKEN}",
            "agent_key_seen": any("csa_" in v for v in ws.headers.values()),
            "cookie_seen": "cookie" in ws.headers,
            "headers": sorted(k for k in ws.headers.keys() if k != "authorization"),
            "subprotocols": ws.scope.get("subprotocols", []),
        }
    )
    if ws.headers.get("authorization") != f"Bearer {TOKEN}":
        # Before the switch: uvicorn answers 403.
        await ws.close(code=1008)
        return
    offered = ws.scope.get("subprotocols", [])
    await ws.accept(subprotocol="echo.v1" if "echo.v1" in offered else None)
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            if text == "whoami":
                # Careless too: the handshake's credential, said back.
                await ws.send_text(ws.headers.get("authorization", ""))
                continue
            if text == "close":
                await ws.close(code=1000, reason="asked to")
                return
            if text is not None and text.startswith("big "):
                await ws.send_bytes(b"x" * int(text[4:]))
            elif text is not None and text.startswith("bulk "):
                # Megabytes as fast as they go: a reader that stops
                # reading stalls whoever writes to it.
                for _ in range(int(text[5:])):
                    await ws.send_bytes(b"x" * 1_000_000)
            elif text is not None and text.startswith("flood "):
                # A busy stream: a message every millisecond.
                for i in range(int(text[6:])):
                    await ws.send_text(f"flood {i}")
                    await asyncio.sleep(0.001)
            elif text is not None and text.startswith("ticks "):
                for i in range(int(text[6:])):
                    await ws.send_text(f"tick {i}")
                    await asyncio.sleep(0.25)
            elif text is not None:
                await ws.send_text(text)
            else:
                await ws.send_bytes(data)
    except WebSocketDisconnect:
        return


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections on Linux: without it, a response
    # written in two parts waits for the client's delayed ACK (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    print(f"port {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
