"""A real MCP client (the Python SDK) driven line by line by the Rust tests.

Usage:
  py_client.py stdio COMMAND [ARG...]     launch COMMAND (env passes through)
  py_client.py http URL                   Streamable HTTP; token in MCP_BEARER

Commands on stdin, one JSON object a line; answers on stdout, likewise:
  {"op": "list"}                                  -> {"op": "list", "tools": [...]}
  {"op": "call", "tag": T, "name": N, "args": {}, "progress": true}
                                                  -> {"op": "result", "tag": T, "isError": b, "text": s, "progress": [...]}
                                                     or {"op": "error", "tag": T, "message": s}
  {"op": "cancel", "tag": T}                      -> cancels call T (the SDK sends notifications/cancelled)
  {"op": "quit"}
"""

import json
import os
import sys

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text_of(result):
    parts = []
    for block in getattr(result, "content", None) or []:
        t = getattr(block, "text", None)
        if t is not None:
            parts.append(t)
    return "\n".join(parts)


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        env = {k: v for k, v in os.environ.items() if k.startswith("COUNTERSIGN_") or k in ("RUST_LOG",)}
        server = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:], env=env)
        http = None
    else:
        http = httpx2.AsyncClient(
            headers={"Authorization": "Bearer " + os.environ.get("MCP_BEARER", "")},
            timeout=httpx2.Timeout(120.0, read=300.0),
        )
        server = streamable_http_client(sys.argv[2], http_client=http)
    async with Client(server, read_timeout_seconds=300) as client:
        version = None
        for attr in ("initialize_result", "discover_result"):
            res = getattr(getattr(client, "session", None), attr, None)
            if res is not None:
                version = getattr(res, "protocol_version", None) or str(getattr(res, "supported_versions", ""))
        say({"op": "ready", "protocol": version})
        calls = {}
        async with anyio.create_task_group() as tg:

            async def call(tag, name, args, want_progress):
                seen = []

                async def on_progress(progress, total, message):
                    seen.append(message)

                scope = anyio.CancelScope()
                calls[tag] = scope
                with scope:
                    try:
                        result = await client.call_tool(
                            name, args, progress_callback=on_progress if want_progress else None
                        )
                        say({"op": "result", "tag": tag, "isError": bool(getattr(result, "is_error", False)),
                             "text": text_of(result), "progress": seen})
                    except Exception as e:  # noqa: BLE001 - report whatever the SDK raised
                        say({"op": "error", "tag": tag, "message": str(e)})
                if scope.cancelled_caught:
                    say({"op": "cancelled", "tag": tag})

            async for line in anyio.wrap_file(sys.stdin):
                cmd = json.loads(line)
                op = cmd["op"]
                if op == "list":
                    try:
                        res = await client.list_tools()
                        say({"op": "list", "tools": [t.name for t in res.tools]})
                    except Exception as e:  # noqa: BLE001
                        say({"op": "error", "tag": "list", "message": str(e)})
                elif op == "call":
                    tg.start_soon(call, cmd["tag"], cmd["name"], cmd.get("args", {}), cmd.get("progress", False))
                elif op == "cancel":
                    calls[cmd["tag"]].cancel()
                elif op == "quit":
                    tg.cancel_scope.cancel()
                    break
    if http is not None:
        await http.aclose()


anyio.run(main)
