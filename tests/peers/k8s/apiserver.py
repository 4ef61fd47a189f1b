"""A stand-in Kubernetes API server for countersign's tests.

Serves what kubectl and the Python `kubernetes` client need for the test
scenarios, as a real API server answers them: discovery (/version, /api,
/api/v1, /apis), pods (get, list, watch, logs with follow — `tail-0` in
`stream` logs a line every 0.3 s for a minute, a stream to cut — exec
over WebSocket or SPDY, attach over WebSocket, port-forward over SPDY
tunneled in WebSocket or a plain SPDY upgrade, echoing upper-cased), configmaps (get,
list, create, patch, update, delete, with dryRun=All), namespaces (get,
delete), deployments (apps/v1) and secrets (get, create, patch, update,
delete, with dryRun=All). A DELETE that carries a body reads its dryRun
from the DeleteOptions in the body alone, as the real API server does
(the query's dryRun is then ignored). A dry run of an object whose name
starts with `broken` is refused (500), one of an object whose name starts
with `slow` takes 5 seconds, to test previews that fail.
Production (namespace `prod`) starts with a ConfigMap `app`, a Deployment
`api`, a Secret `db` and a ConfigMap `broken`, each as `kubectl apply`
left it. Every request must carry `Authorization: Bearer <token>` (the
gateway's credential); anything else is a 401 Status.

Every request is appended, as one JSON line, to the log file given on the
command line (method, path, query, the Authorization and Impersonate-*
headers, body, and `wrote`: whether it changed anything), so tests can
see exactly what reached the server and that nothing was written before
an approval.

usage: apiserver.py PORT TOKEN LOGFILE
"""

import base64
import hashlib
import json
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT, TOKEN, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
LOCK = threading.Lock()
NOW = "2026-01-01T00:00:00Z"

# (resource, namespace, name) -> object, for configmaps, secrets, deployments.
OBJECTS = {}
KINDS = {"configmaps": ("ConfigMap", "v1"), "secrets": ("Secret", "v1"), "deployments": ("Deployment", "apps/v1")}


def seed(resource, ns, name, body):
    kind, version = KINDS[resource]
    manifest = {"apiVersion": version, "kind": kind, "metadata": {"name": name, "namespace": ns}, **body}
    obj = json.loads(json.dumps(manifest))
    obj["metadata"].update({"uid": f"uid-{ns}-{name}", "resourceVersion": "1", "creationTimestamp": NOW,
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                            json.dumps(manifest, sort_keys=True)}})
    OBJECTS[(resource, ns, name)] = obj


seed("configmaps", "prod", "app", {"data": {"level": "info", "region": "eu-west-1"}})
seed("configmaps", "prod", "broken", {"data": {"level": "info"}})
seed("configmaps", "prod", "slow", {"data": {"level": "info"}})
seed("secrets", "prod", "db", {"type": "Opaque", "data": {"password": "aHVudGVyMi1zM2NyM3Q="}})
# The gateway's own token, kept in the cluster (as a ServiceAccount's
# Secret keeps it), alone and inside a kubeconfig: reading it through the
# gateway must not hand it to the agent.
seed("secrets", "web", "gateway-token", {"type": "Opaque", "data": {
    "token": base64.b64encode(TOKEN.encode()).decode(),
    "kubeconfig": base64.b64encode(f"users:\n- name: gateway\n  user:\n    token: {TOKEN}\n".encode()).decode(),
}})
seed("deployments", "prod", "api", {"spec": {
    "replicas": 2, "selector": {"matchLabels": {"app": "api"}},
    "template": {"metadata": {"labels": {"app": "api"}},
                 "spec": {"containers": [{"name": "api", "image": "registry.example/api:1.0",
                                          "ports": [{"containerPort": 8080}]}]}}}})
NAMESPACES = {"default", "web", "prod", "kube-system", "stream"}
PODS = {
    ("web", "web-0"): "web",
    ("prod", "api-0"): "api",
    # Logs and attach go on for a minute (a stream to cut).
    ("stream", "tail-0"): "forever",
}


def status(code, reason, message):
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code}


def pod(ns, name):
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}",
                         "resourceVersion": "1", "creationTimestamp": NOW},
            "spec": {"containers": [{"name": PODS[(ns, name)], "image": "busybox"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": PODS[(ns, name)], "ready": True, "restartCount": 0, "image": "busybox",
                 "imageID": "", "state": {"running": {"startedAt": NOW}}}]}}


def namespace(name):
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "uid": f"uid-ns-{name}", "resourceVersion": "1", "creationTimestamp": NOW},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def resource(name, kind, namespaced, verbs):
    return {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs}


API_V1 = {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
    resource("pods", "Pod", True, ["get", "list", "watch", "create", "delete"]),
    resource("pods/log", "Pod", True, ["get"]),
    resource("pods/exec", "PodExecOptions", True, ["create", "get"]),
    resource("pods/attach", "PodAttachOptions", True, ["create", "get"]),
    resource("pods/portforward", "PodPortForwardOptions", True, ["create", "get"]),
    resource("configmaps", "ConfigMap", True,
             ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    resource("secrets", "Secret", True, ["create", "delete", "get", "list", "patch", "update"]),
    resource("namespaces", "Namespace", False, ["create", "delete", "get", "list", "patch", "update", "watch"]),
]}
APPS_V1 = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
    resource("deployments", "Deployment", True, ["create", "delete", "get", "list", "patch", "update"])]}
APPS_V1["resources"][0]["shortNames"] = ["deploy"]
APPS_GROUP = {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
              "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}
for r in API_V1["resources"]:
    if r["name"] == "pods":
        r["shortNames"] = ["po"]
    if r["name"] == "configmaps":
        r["shortNames"] = ["cm"]
    if r["name"] == "namespaces":
        r["shortNames"] = ["ns"]


def named_list(value):
    return isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value)


def merge(target, patch):
    """JSON merge patch, with lists of named things (containers) merged by
    name and `$` directives dropped: enough of a strategic merge for what
    kubectl apply sends here."""
    if named_list(patch) and named_list(target):
        out = [dict(i) for i in target]
        for item in patch:
            match = next((i for i, t in enumerate(out) if t["name"] == item["name"]), None)
            if match is None:
                out.append(item)
            else:
                out[match] = merge(out[match], item)
        return out
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def spdy_frames(read):
    """The SPDY/3.1 frames in the bytes `read` gives (None at the end):
    (control frame type or None for data, stream id, flags, whole frame)."""
    buffer = b""
    while True:
        chunk = read()
        if chunk is None:
            return
        buffer += chunk
        while len(buffer) >= 8:
            length = int.from_bytes(buffer[5:8], "big")
            if len(buffer) < 8 + length:
                break
            frame, buffer = buffer[:8 + length], buffer[8 + length:]
            if frame[0] & 0x80:
                kind = struct.unpack(">H", frame[2:4])[0]
                stream_id = struct.unpack(">I", frame[8:12])[0] & 0x7FFFFFFF if length >= 4 else 0
                yield kind, stream_id, frame[4], frame
            else:
                yield None, struct.unpack(">I", frame[:4])[0] & 0x7FFFFFFF, frame[4], frame


class Spdy:
    """What the stand-in sends in a SPDY/3.1 session. Header blocks are
    compressed as one zlib stream (SPDY/3), without the preset dictionary
    (a reader ignores it then); those received are never read."""

    def __init__(self, write):
        self.write = write
        self.compress = zlib.compressobj()

    def reply(self, stream_id):
        block = self.compress.compress(b"\0\0\0\0") + self.compress.flush(zlib.Z_SYNC_FLUSH)
        body = struct.pack(">I", stream_id) + block
        self.write(struct.pack(">HHI", 0x8003, 2, len(body)) + body)

    def data(self, stream_id, payload, fin=False):
        self.write(struct.pack(">II", stream_id, (0x01000000 if fin else 0) | len(payload)) + payload)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY every
    # keep-alive answer waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        self.record()
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        """Logs the request once, before it is answered."""
        if self.recorded:
            return
        self.recorded = True
        entry = {"method": self.command, "path": urlsplit(self.path).path, "query": urlsplit(self.path).query,
                 "authorization": self.headers.get("Authorization"),
                 "impersonate": {k: v for k, v in self.headers.items() if k.lower().startswith("impersonate-")},
                 "cookie": self.headers.get("Cookie"),
                 "body": self.body.decode("utf-8", "replace")[:10000],
                 "wrote": self.wrote}
        with LOCK, open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.body, self.recorded, self.wrote = body, False, False
        try:
            return self.dispatch(body)
        finally:
            self.record()

    def dispatch(self, body):
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(*status(401, "Unauthorized", "Unauthorized"))
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        dry = query.get("dryRun") == ["All"]
        parts = [p for p in url.path.split("/") if p]
        method = self.command
        if parts == ["version"]:
            return self.reply(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-countersign-standin",
                                    "platform": "linux/amd64"})
        if parts == ["api"]:
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if parts == ["apis"]:
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [APPS_GROUP]})
        if parts == ["apis", "apps"]:
            return self.reply(200, {"kind": "APIGroup", "apiVersion": "v1", **APPS_GROUP})
        if parts == ["apis", "apps", "v1"]:
            return self.reply(200, APPS_V1)
        if parts == ["api", "v1"]:
            return self.reply(200, API_V1)
        if method == "DELETE" and body:
            # A DELETE's options come from its body when it has one: the
            # query's dryRun is ignored (the gateway must say it twice).
            try:
                dry = json.loads(body).get("dryRun") == ["All"]
            except (ValueError, AttributeError):
                return self.reply(*status(400, "BadRequest", "the DeleteOptions cannot be read"))
        if parts[:3] == ["apis", "apps", "v1"] and parts[3:4] == ["namespaces"] and parts[5:6] == ["deployments"]:
            return self.objects("deployments", method, parts[4], parts[6] if len(parts) > 6 else None, body, dry)
        if parts[:2] != ["api", "v1"]:
            return self.reply(*status(404, "NotFound", "the server could not find the requested resource"))
        rest = parts[2:]
        if rest[:1] == ["namespaces"] and len(rest) <= 2:
            return self.namespaces(method, rest[1] if len(rest) == 2 else None, dry)
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, kind, rest = rest[1], rest[2], rest[3:]
            if kind == "pods":
                return self.pods(method, ns, rest, query)
            if kind in ("configmaps", "secrets"):
                return self.objects(kind, method, ns, rest[0] if rest else None, body, dry)
        return self.reply(*status(404, "NotFound", "the server could not find the requested resource"))

    def namespaces(self, method, name, dry):
        if name is None:
            return self.reply(200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                    "items": [namespace(n) for n in sorted(NAMESPACES)]})
        if name not in NAMESPACES:
            return self.reply(*status(404, "NotFound", f'namespaces "{name}" not found'))
        if method == "GET":
            return self.reply(200, namespace(name))
        if method == "DELETE":
            if not dry:
                NAMESPACES.discard(name)
                self.wrote = True
            ns = namespace(name)
            ns["status"]["phase"] = "Terminating"
            return self.reply(200, ns)
        return self.reply(*status(405, "MethodNotAllowed", "not supported"))

    def pods(self, method, ns, rest, query):
        if not rest and query.get("watch", [""])[0] in ("true", "1"):
            # A watch: events as they happen, one JSON object a line.
            self.record()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for kind in ("ADDED", "MODIFIED", "DELETED"):
                for (n, p) in PODS:
                    if n == ns:
                        line = (json.dumps({"type": kind, "object": pod(n, p)}) + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                        time.sleep(0.2)
            self.wfile.write(b"0\r\n\r\n")
            return None
        if not rest:
            items = [pod(n, p) for (n, p) in PODS if n == ns]
            return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                    "items": items})
        name = rest[0]
        if (ns, name) not in PODS:
            return self.reply(*status(404, "NotFound", f'pods "{name}" not found'))
        if rest[1:] == ["exec"] and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.exec_websocket(name, query.get("command", []))
        if rest[1:] == ["exec"] and self.headers.get("Upgrade", "").lower() == "spdy/3.1":
            return self.exec_spdy(name, query)
        if rest[1:] == ["attach"] and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.attach_websocket(name, PODS[(ns, name)] == "forever")
        if rest[1:] == ["portforward"] and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.portforward_websocket()
        if rest[1:] == ["portforward"] and self.headers.get("Upgrade", "").lower() == "spdy/3.1":
            return self.portforward_spdy()
        if rest[1:] == ["log"] and method == "GET":
            follow = query.get("follow") == ["true"]
            forever = PODS[(ns, name)] == "forever"
            self.record()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            lines = 200 if forever else 5 if follow else 2
            for i in range(lines):
                chunk = f"log line {i} from {name}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                if follow:
                    time.sleep(0.3 if forever else 0.2)
            self.wfile.write(b"0\r\n\r\n")
            return None
        if not rest[1:] and method == "GET":
            return self.reply(200, pod(ns, name))
        return self.reply(*status(405, "MethodNotAllowed", "not supported by the stand-in"))

    def switch_websocket(self, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")):
        """Switches to a channel protocol (v5 or v4) over WebSocket; the
        frame writer, or None when no protocol was offered (answered)."""
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = next((p for p in protocols if p in offered), None)
        if protocol is None:
            self.reply(*status(400, "BadRequest", "no supported stream protocol"))
            return None
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.record()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()

        def frame(payload):
            head = bytes([0x82, len(payload)]) if len(payload) < 126 else bytes([0x82, 126]) + len(payload).to_bytes(2, "big")
            self.wfile.write(head + payload)
            self.wfile.flush()

        return frame

    def finish_websocket(self, frame):
        frame(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        self.wfile.write(bytes([0x88, 0x02, 0x03, 0xE8]))
        self.wfile.flush()
        self.close_connection = True

    def exec_websocket(self, name, command):
        """exec over WebSocket (the v4/v5 channel protocols): the command's
        "output" on stdout (channel 1), then a Success status (channel 3)."""
        frame = self.switch_websocket()
        if frame is not None:
            frame(b"\x01" + f"ran in {name}: {' '.join(command)}\n".encode())
            self.finish_websocket(frame)

    def attach_websocket(self, name, forever):
        """attach over WebSocket: the container's "output", a line every
        0.3 s on stdout (channel 1); `tail-0` goes on for a minute, the
        others stop after three lines (Success status)."""
        frame = self.switch_websocket()
        if frame is None:
            return
        lines = 200 if forever else 3
        for i in range(lines):
            frame(b"\x01" + f"attached to {name}: line {i}\n".encode())
            self.wfile.flush()
            time.sleep(0.3)
        self.finish_websocket(frame)

    def read_websocket(self):
        """The next message from the client: (opcode, payload), masked
        frames unmasked and fragments joined; None once it is gone."""
        data, first = b"", None
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return None
            fin, opcode, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode >= 8:
                return opcode, payload
            first = opcode if first is None else first
            data += payload
            if fin:
                return first, data

    def portforward_websocket(self):
        """port-forward as kubectl >= 1.31 asks for it: SPDY/3.1 tunneled
        in WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`)."""
        frame = self.switch_websocket(("SPDY/3.1+portforward.k8s.io",))
        if frame is None:
            return

        def read():
            while True:
                message = self.read_websocket()
                if message is None or message[0] == 8:
                    return None
                if message[0] == 9:
                    self.wfile.write(bytes([0x8A, len(message[1])]) + message[1])
                    continue
                return message[1]

        self.spdy_echo(read, frame)

    def portforward_spdy(self):
        """port-forward as older kubectl (or KUBECTL_PORT_FORWARD_WEBSOCKETS
        =false) asks for it: the connection upgraded to SPDY/3.1."""
        if "portforward.k8s.io" not in self.headers.get("X-Stream-Protocol-Version", ""):
            return self.reply(*status(400, "BadRequest", "no supported stream protocol"))
        self.record()
        self.send_response(101)
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", "SPDY/3.1")
        self.send_header("X-Stream-Protocol-Version", "portforward.k8s.io")
        self.end_headers()
        self.wfile.flush()

        def write(data):
            self.wfile.write(data)
            self.wfile.flush()

        self.spdy_echo(lambda: self.rfile.read1(65536) or None, write)
        return None

    def spdy_echo(self, read, write):
        """A SPDY/3.1 session as the pod side of port-forward: every stream
        kubectl opens (an error stream, then a data stream, per connection)
        is answered, and what comes on a stream is echoed back on it,
        upper-cased, as if the pod's port served an echo. `read` gives the
        next bytes (None at the end), `write` sends bytes."""
        spdy = Spdy(write)
        for kind, stream_id, flags, frame in spdy_frames(read):
            if kind == 1:  # SYN_STREAM
                spdy.reply(stream_id)
            elif kind == 6:  # PING: echoed
                write(frame)
            elif kind is None:
                body = frame[8:]
                if body:
                    spdy.data(stream_id, body.upper())
                if flags & 0x01:
                    spdy.data(stream_id, b"", fin=True)
        self.close_connection = True

    def exec_spdy(self, name, query):
        """exec over a SPDY/3.1 upgrade (KUBECTL_REMOTE_COMMAND_WEBSOCKETS
        =false): kubectl opens the error stream, then stdin, stdout and
        stderr as asked (in that order); once they are open the command's
        "output" goes on stdout and a Success status on the error stream."""
        offered = [p.strip() for v in self.headers.get_all("X-Stream-Protocol-Version", []) for p in v.split(",")]
        if "v4.channel.k8s.io" not in offered:
            return self.reply(*status(400, "BadRequest", "no supported stream protocol"))
        self.record()
        self.send_response(101)
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", "SPDY/3.1")
        self.send_header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
        self.end_headers()
        self.wfile.flush()

        def write(data):
            self.wfile.write(data)
            self.wfile.flush()

        asked = lambda key: query.get(key) == ["true"]
        wanted = ["error"] + [k for k in ("stdin", "stdout") if asked(k)]
        wanted += ["stderr"] if asked("stderr") and not asked("tty") else []
        wanted += ["resize"] if asked("tty") else []
        spdy, opened = Spdy(write), {}
        for kind, stream_id, _flags, frame in spdy_frames(lambda: self.rfile.read1(65536) or None):
            if kind == 6:
                write(frame)
            if kind != 1:
                continue
            spdy.reply(stream_id)
            opened[wanted[len(opened)]] = stream_id
            if len(opened) == len(wanted):
                command = " ".join(query.get("command", []))
                if "stdout" in opened:
                    spdy.data(opened["stdout"], f"ran in {name} over SPDY: {command}\n".encode())
                for stream in ("stdout", "stderr"):
                    if stream in opened:
                        spdy.data(opened[stream], b"", fin=True)
                spdy.data(opened["error"], json.dumps({"metadata": {}, "status": "Success"}).encode(), fin=True)
                break
        time.sleep(0.5)
        self.close_connection = True
        return None

    def objects(self, resource, method, ns, name, body, dry):
        kind, version = KINDS[resource]
        if dry and (name or "").startswith("slow"):
            time.sleep(5)
        if dry and (name or "").startswith("broken"):
            return self.reply(*status(500, "InternalError",
                                      'Internal error occurred: failed calling webhook "policy.example": '
                                      "the stand-in refuses dry runs of this object"))
        if name is None and method == "GET":
            items = [o for (r, n, _), o in sorted(OBJECTS.items()) if r == resource and n == ns]
            return self.reply(200, {"kind": f"{kind}List", "apiVersion": version,
                                    "metadata": {"resourceVersion": "1"}, "items": items})
        if name is None and method == "DELETE":
            keys = [k for k in sorted(OBJECTS) if k[0] == resource and k[1] == ns]
            items = [OBJECTS[k] for k in keys]
            if not dry:
                for k in keys:
                    del OBJECTS[k]
                self.wrote = bool(keys)
            return self.reply(200, {"kind": f"{kind}List", "apiVersion": version,
                                    "metadata": {"resourceVersion": "1"}, "items": items})
        if name is None and method == "POST":
            obj = json.loads(body)
            obj.setdefault("metadata", {})
            obj["metadata"].update({"namespace": ns, "uid": f"uid-{ns}-{obj['metadata'].get('name')}",
                                    "resourceVersion": "1", "creationTimestamp": NOW})
            key = (resource, ns, obj["metadata"].get("name"))
            if key in OBJECTS:
                return self.reply(*status(409, "AlreadyExists", f'{resource} "{key[2]}" already exists'))
            if not dry:
                OBJECTS[key] = obj
                self.wrote = True
            return self.reply(201, obj)
        key = (resource, ns, name)
        if key not in OBJECTS:
            return self.reply(*status(404, "NotFound", f'{resource} "{name}" not found'))
        if method == "GET":
            return self.reply(200, OBJECTS[key])
        if method == "PATCH":
            obj = merge(OBJECTS[key], json.loads(body))
            obj["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion", "1")) + 1)
            if not dry:
                OBJECTS[key] = obj
                self.wrote = True
            return self.reply(200, obj)
        if method == "PUT":
            obj = json.loads(body)
            if not dry:
                OBJECTS[key] = obj
                self.wrote = True
            return self.reply(200, obj)
        if method == "DELETE":
            obj = OBJECTS[key]
            if not dry:
                del OBJECTS[key]
                self.wrote = True
            return self.reply(200, obj)
        return self.reply(*status(405, "MethodNotAllowed", "not supported"))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"listening on {PORT}", flush=True)
    server.serve_forever()
