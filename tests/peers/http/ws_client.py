"""A WebSocket client of the HTTP proxy tests (PyPI `websockets`, its
synchronous client), as an agent uses the gateway: its countersign key
as the bearer, the gateway's `/http/<name>/ws/…` URL.

usage: ws_client.py WS_URL KEY STEP [ARG]

Steps (each prints one JSON object on one line; `cut` and `hold` print
a first line once connecting or connected, so a test can act then):
- echo: a text and a binary message echoed, then a normal close;
- hold: says it connects, then waits (up to 60 s) to be switched, then echo;
- refused: the handshake fails: the status and the JSON body;
- cut [COMMAND]: asks for a stream (`ticks 100`, or COMMAND), says it is
  open after the first message, then reads until the gateway closes it:
  the close code, reason, and the messages seen before;
- big N: sends a message of N bytes: how the gateway closes;
- say TEXT: sends TEXT, prints the API's answer, closes;
- stall COMMAND: asks for a stream, says it is open after the first
  message, then stops reading for 20 s (a peer that never reads).
"""

import json
import sys
import time

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

URL, KEY, STEP = sys.argv[1], sys.argv[2], sys.argv[3]
ARG = sys.argv[4] if len(sys.argv) > 4 else None
HEADERS = {"Authorization": f"Bearer {KEY}"}


def out(value):
    print(json.dumps(value), flush=True)


def opened(ws):
    return {
        "subprotocol": ws.subprotocol,
        "headers": {k.lower(): v for k, v in ws.response.headers.raw_items()},
    }


def echo(ws):
    ws.send("hello")
    text = ws.recv(timeout=10)
    ws.send(b"\x00\x01binary")
    data = ws.recv(timeout=10)
    ws.close(code=1000, reason="done")
    return {"text": text, "binary": data.hex(), "close_code": ws.close_code}


def main():
    if STEP == "hold":
        out({"connecting": True})
    try:
        ws = connect(URL, additional_headers=HEADERS, subprotocols=["echo.v1"], open_timeout=60, max_size=None,
                     max_queue=4)
    except InvalidStatus as e:
        body = e.response.body.decode("utf-8", "replace")
        try:
            body = json.loads(body)
        except ValueError:
            pass
        return out({"refused": True, "status": e.response.status_code, "body": body,
                    "headers": {k.lower(): v for k, v in e.response.headers.raw_items()}})
    with ws:
        return run(ws)


def run(ws):
    info = opened(ws)
    if STEP in ("echo", "hold"):
        return out({**info, **echo(ws)})
    if STEP == "cut":
        ws.send(ARG or "ticks 100")
        ticks = [ws.recv(timeout=10)]
        out({"open": True, **info})
        started = time.monotonic()
        try:
            while True:
                ticks.append(ws.recv(timeout=30))
        except ConnectionClosed as e:
            rcvd = e.rcvd
            return out({"ticks": len(ticks), "after": time.monotonic() - started,
                        "close_code": rcvd.code if rcvd else None, "close_reason": rcvd.reason if rcvd else None})
        except TimeoutError:
            return out({"ticks": len(ticks), "timeout": True})
    if STEP == "stall":
        ws.send(ARG)
        ws.recv(timeout=10)
        out({"open": True, **info})
        time.sleep(20)
        return out({"stalled": True})
    if STEP == "say":
        ws.send(ARG)
        answer = ws.recv(timeout=10)
        ws.close(code=1000)
        return out({"answer": answer if isinstance(answer, str) else answer.hex()})
    if STEP == "big":
        try:
            ws.send(b"y" * int(ARG))
            ws.recv(timeout=10)
            return out({"answered": True})
        except ConnectionClosed as e:
            rcvd = e.rcvd
            return out({"close_code": rcvd.code if rcvd else None, "close_reason": rcvd.reason if rcvd else None})
    raise SystemExit(f"unknown step {STEP}")


if __name__ == "__main__":
    main()
