"""Python clients of the HTTP proxy tests: httpx and requests, as agents
use them, against the gateway. Usage: clients.py BASE KEY SCENARIO.
Prints one JSON object with what each client got.

Scenarios:
  read     httpx GET, httpx streaming an SSE response line by line,
           requests GET, requests DELETE that policy forbids;
  async    requests POST with `Prefer: respond-async`, then polling the
           result URL until the response is there (a person approves it
           meanwhile), then once more (gone).
"""

import json
import sys
import time

import httpx
import requests

base, key, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
auth = {"authorization": f"Bearer {key}"}
out = {}

if scenario == "read":
    with httpx.Client(base_url=base, headers=auth) as client:
        r = client.get("/http/items/items/1")
        out["httpx_get"] = {"status": r.status_code, "body": r.json(), "request": r.headers.get("countersign-request")}
        lines = []
        with client.stream("GET", "/http/items/events", params={"count": 3, "every": 0.1}) as s:
            out["httpx_sse_status"] = s.status_code
            for line in s.iter_lines():
                if line.startswith("data:"):
                    lines.append(line)
        out["httpx_sse"] = lines
    r = requests.get(f"{base}/http/items/items/1", headers=auth, timeout=10)
    out["requests_get"] = {"status": r.status_code, "body": r.json()}
    r = requests.delete(f"{base}/http/items/items/protected", headers=auth, timeout=10)
    out["requests_denied"] = {"status": r.status_code, "body": r.json()}
elif scenario == "async":
    r = requests.post(
        f"{base}/http/items/items",
        headers={**auth, "prefer": "respond-async"},
        json={"id": "py", "name": "from python"},
        timeout=10,
    )
    out["accepted"] = {"status": r.status_code, "body": r.json()}
    print(json.dumps({"request": r.json()["request"]}), flush=True)
    # `Location` is relative to this gateway; `result_url` is built from
    # the gateway's configured public URL, which these tests do not set.
    url = base + r.headers["location"]
    deadline = time.time() + 30
    while time.time() < deadline:
        r = requests.get(url, headers=auth, timeout=10)
        if r.status_code != 202:
            break
        time.sleep(0.1)
    out["collected"] = {"status": r.status_code, "body": r.json()}
    out["again"] = requests.get(url, headers=auth, timeout=10).status_code
print(json.dumps(out), flush=True)
