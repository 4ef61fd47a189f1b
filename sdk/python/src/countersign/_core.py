"""What the sync and the asyncio client share: how each call is built and how
each answer is read (no I/O here)."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional
from urllib.parse import quote

from ._http import MAX_ANSWER, Answer
from .errors import ApiError, GatewayUnavailable, ProtocolError

DEFAULT_SERVER = "http://127.0.0.1:8470"
#: Seconds one long poll asks the gateway to hold the answer (it allows ≤ 60).
WAIT_SECS = 30
#: Seconds added to a long poll's HTTP timeout for the answer to travel.
WAIT_SLACK = 15.0
#: Seconds allowed for an ordinary call.
CALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Optional[Dict[str, Any]] = None
    body: Optional[Any] = None
    timeout: float = CALL_TIMEOUT


def settings(server: Optional[str], token: Optional[str]) -> "tuple[str, str]":
    """The server and token: as given, else `COUNTERSIGN_SERVER` / `COUNTERSIGN_TOKEN`."""
    server = server or os.environ.get("COUNTERSIGN_SERVER") or DEFAULT_SERVER
    token = token or os.environ.get("COUNTERSIGN_TOKEN") or ""
    if not token:
        raise ValueError("no token: pass `token=` or set COUNTERSIGN_TOKEN")
    if any(c in token for c in "\r\n"):
        raise ValueError("the token holds a line break")
    if not server.startswith(("http://", "https://")):
        raise ValueError(f"the server `{server}` is not an http:// or https:// URL")
    return server.rstrip("/"), token


def tls(verify: Any) -> Any:
    """What httpx checks the gateway's certificate with: as given, else only
    the CA in `COUNTERSIGN_CA_FILE` (PEM) when set, else the system's roots."""
    if verify is not None:
        return verify
    ca_file = os.environ.get("COUNTERSIGN_CA_FILE")
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


def segment(id: str) -> str:
    """A request id as one path segment: nothing in it can change the path."""
    if not isinstance(id, str) or not id:
        raise ValueError("a request id must be a non-empty string")
    return quote(id, safe="")


def action_body(
    kind: str,
    resource: str,
    payload: Any = None,
    *,
    on_behalf_of: Optional[str] = None,
    justification: Optional[str] = None,
    labels: Iterable[str] = (),
    context: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "kind": kind,
        "resource": resource,
        "payload": {} if payload is None else payload,
        "labels": list(labels),
        "context": dict(context or {}),
    }
    if on_behalf_of is not None:
        body["on_behalf_of"] = on_behalf_of
    if justification is not None:
        body["justification"] = justification
    return body


def submit_call(kind: str, resource: str, payload: Any, reuse_open: bool, fields: Mapping[str, Any]) -> Call:
    params = {"reuse": "open"} if reuse_open else None
    return Call("POST", "/v1/actions", params, body=action_body(kind, resource, payload, **fields))


def outcome_body(
    status: str, exit_code: Optional[int], summary: Optional[str], output_sha256: Optional[str]
) -> Dict[str, Any]:
    if status not in ("succeeded", "failed"):
        raise ValueError("an outcome's status is `succeeded` or `failed`")
    body: Dict[str, Any] = {"status": status}
    if exit_code is not None:
        body["exit_code"] = exit_code
    if summary is not None:
        body["summary"] = summary
    if output_sha256 is not None:
        body["output_sha256"] = output_sha256
    return body


def wait_call(id: str, seconds: int) -> Call:
    seconds = max(0, min(int(seconds), 60))
    return Call("GET", f"/v1/actions/{segment(id)}", {"wait": seconds}, timeout=seconds + WAIT_SLACK)


def transport_error(error: Exception) -> GatewayUnavailable:
    return GatewayUnavailable(f"the gateway could not be reached: {type(error).__name__}: {error}")


def read(response: Answer, text: bool = False) -> Any:
    """The answer's JSON (or text), or the typed error it stands for."""
    if len(response.content) > MAX_ANSWER:
        raise ProtocolError("the gateway's answer is too large")
    if response.status_code >= 500:
        code, message = _error(response)
        raise GatewayUnavailable(f"the gateway failed: {response.status_code} {code}: {message}")
    if response.status_code >= 400:
        code, message = _error(response)
        raise ApiError(response.status_code, code, message)
    if text:
        return response.text
    try:
        return response.json()
    except ValueError as e:
        raise ProtocolError("the gateway's answer is not JSON") from e


def json_object(value: Any) -> Dict[str, Any]:
    """An answer that must be a JSON object."""
    if not isinstance(value, dict):
        raise ProtocolError("the gateway's answer is not a JSON object")
    return value


def _error(response: Answer) -> "tuple[str, str]":
    try:
        error = response.json().get("error", {})
        return str(error.get("code", "unknown")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return "unknown", response.reason_phrase
