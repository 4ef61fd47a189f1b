"""The Python `kubernetes` client through the gateway, for countersign's tests.

usage: client.py URL TOKEN CA_FILE STEP
STEP: `list` (pods in `web`), `watch` (them), `logs` (follow web-0's log), `create`
(a ConfigMap in `web`), `delete-namespace` (`web`). Prints one JSON line:
{"ok": true, ...} or {"ok": false, "status": HTTP status, "message": the Status message}.
"""

import json
import sys

from kubernetes import client
from kubernetes.client.rest import ApiException

url, token, ca, step = sys.argv[1:5]
config = client.Configuration()
config.host = url
config.api_key = {"authorization": token}
config.api_key_prefix = {"authorization": "Bearer"}
config.ssl_ca_cert = ca
api = client.CoreV1Api(client.ApiClient(config))

try:
    if step == "list":
        pods = api.list_namespaced_pod("web")
        print(json.dumps({"ok": True, "names": [p.metadata.name for p in pods.items]}))
    elif step == "logs":
        stream = api.read_namespaced_pod_log("web-0", "web", follow=True, _preload_content=False)
        lines = [line.decode() for line in stream.stream() for line in line.splitlines() if line]
        print(json.dumps({"ok": True, "lines": lines}))
    elif step == "watch":
        from kubernetes import watch
        events = [(e["type"], e["object"].metadata.name)
                  for e in watch.Watch().stream(api.list_namespaced_pod, "web", timeout_seconds=5)]
        print(json.dumps({"ok": True, "events": events}))
    elif step == "create":
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py"), data={"from": "python"})
        made = api.create_namespaced_config_map("web", body)
        print(json.dumps({"ok": True, "name": made.metadata.name}))
    elif step == "delete-namespace":
        api.delete_namespace("web")
        print(json.dumps({"ok": True}))
except ApiException as e:
    message = json.loads(e.body).get("message") if e.body else None
    print(json.dumps({"ok": False, "status": e.status, "message": message}))
