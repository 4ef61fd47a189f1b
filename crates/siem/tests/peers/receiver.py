"""An HTTP receiver for the SIEM sink tests, checking each request the way
the real service would:

- POST /v1/logs: OTLP/HTTP logs, decoded with the OpenTelemetry protobuf
  definitions (PyPI `opentelemetry-proto`); answers ExportLogsServiceResponse.
- POST /services/collector/event: a Splunk HEC stand-in checking Splunk's
  documented request format (`Authorization: Splunk <token>`; a body of one
  or more concatenated JSON event objects, each with a non-empty `event`,
  `time` in epoch seconds, `host`/`source`/`sourcetype`/`index` strings);
  answers with HEC's documented status codes and {"text", "code"} bodies.
- POST /ocsf: one OCSF event, validated against the OCSF schema
  (ocsf_check.py).

Every accepted event is appended to OUT as one JSON line
{"via", "event", ...}. Options: --fail-first N answers 503 to the first N
requests (a receiver that is down); --delay-ms D holds each answer D ms.
Prints "listening PORT" once ready.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

import ocsf_check

MAX_BODY = 4 * 1024 * 1024
lock = threading.Lock()
state = {"requests": 0}


def hec_events(body):
    """The events of a HEC body, or (status, code, text) of Splunk's refusal."""
    text = body.decode("utf-8", "strict").strip()
    if not text:
        return (400, 5, "No data")
    decoder, at, events = json.JSONDecoder(), 0, []
    while at < len(text):
        try:
            obj, end = decoder.raw_decode(text, at)
        except ValueError:
            return (400, 6, "Invalid data format")
        if not isinstance(obj, dict):
            return (400, 6, "Invalid data format")
        if "event" not in obj:
            return (400, 12, "Event field is required")
        if obj["event"] in ("", None, {}):
            return (400, 13, "Event field cannot be blank")
        if "time" in obj:
            t = obj["time"]
            if isinstance(t, str):
                try:
                    float(t)
                except ValueError:
                    return (400, 6, "Invalid data format")
            elif not isinstance(t, (int, float)) or isinstance(t, bool):
                return (400, 6, "Invalid data format")
        for key in ("host", "source", "sourcetype", "index"):
            if key in obj and not isinstance(obj[key], str):
                return (400, 6, "Invalid data format")
        if "fields" in obj and not isinstance(obj["fields"], dict):
            return (400, 6, "Invalid data format")
        events.append(obj)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return events


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, via, event, **extra):
        line = json.dumps({"via": via, "event": event, **extra}, sort_keys=True)
        with lock:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self.answer(413, b"{}")
        body = self.rfile.read(length)
        with lock:
            state["requests"] += 1
            failing = state["requests"] <= args.fail_first
        if failing:
            return self.answer(503, b'{"text":"Server is busy","code":9}')
        if self.path == "/v1/logs":
            return self.otlp(body)
        if self.path == "/services/collector/event":
            return self.hec(body)
        if self.path == "/ocsf":
            return self.ocsf(body)
        return self.answer(404, b"{}")

    def otlp(self, body):
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self.answer(415, b"{}")
        try:
            request = ExportLogsServiceRequest.FromString(body)
        except Exception:
            return self.answer(400, b"{}")
        for resource_logs in request.resource_logs:
            resource = MessageToDict(resource_logs.resource)
            for scope_logs in resource_logs.scope_logs:
                for log in scope_logs.log_records:
                    self.record("otlp", MessageToDict(log), resource=resource, scope=scope_logs.scope.name)
        self.answer(200, ExportLogsServiceResponse().SerializeToString(), "application/x-protobuf")

    def hec(self, body):
        auth = self.headers.get("Authorization")
        if not auth:
            return self.answer(401, b'{"text":"Token is required","code":2}')
        if auth != f"Splunk {args.token}":
            return self.answer(403, b'{"text":"Invalid token","code":4}')
        try:
            events = hec_events(body)
        except UnicodeDecodeError:
            events = (400, 6, "Invalid data format")
        if isinstance(events, tuple):
            status, code, text = events
            return self.answer(status, json.dumps({"text": text, "code": code}).encode())
        for event in events:
            self.record("hec", event)
        self.answer(200, b'{"text":"Success","code":0}')

    def ocsf(self, body):
        try:
            event = json.loads(body)
        except ValueError:
            return self.answer(400, b'{"error":"not JSON"}')
        problems = ocsf_check.validate(event)
        if problems:
            self.record("ocsf-invalid", event, problems=problems)
            return self.answer(400, json.dumps({"problems": problems}).encode())
        self.record("ocsf", event)
        self.answer(200, b"{}")


parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--token", default="")
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--delay-ms", type=int, default=0)
args = parser.parse_args()

server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
