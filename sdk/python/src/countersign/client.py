"""Typed clients for the whole HTTP API: `Client` (blocking) and
`AsyncClient` (asyncio), with the same methods.

Waiting is pushed: `wait()` holds a long poll (`GET /v1/actions/{id}?wait=N`)
that the gateway answers the moment the request is decided; it only asks again
when a poll's own window (≤ 60 s) ends with the request still pending.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional

import httpx

from . import _core
from ._core import Call
from ._http import TRANSPORT_ERRORS, AsyncHttp, SyncHttp
from .errors import GatewayUnavailable
from .outcomes import LoopSender, OutcomeSender, Report
from .types import AuditPage, Page, Request

#: How long a gateway that stops answering mid-wait is retried.
RECONNECT_FOR = 30.0


def _on_recorded(done: Optional[Callable[[Request], None]]) -> Optional[Callable[[Any], None]]:
    if done is None:
        return None
    return lambda answer: done(Request.from_json(answer))


def _page(data: Any) -> Page:
    return Page([Request.from_json(a) for a in data.get("actions", [])], data.get("next_cursor"))


def _list_params(status: Optional[str], kind: Optional[str], resource: Optional[str], limit: Optional[int],
                 cursor: Optional[str]) -> Dict[str, Any]:
    params = {"status": status, "kind": kind, "resource": resource, "limit": limit, "cursor": cursor}
    return {k: v for k, v in params.items() if v is not None}


def _poll_secs(deadline: Optional[float]) -> int:
    if deadline is None:
        return _core.WAIT_SECS
    return max(0, min(_core.WAIT_SECS, int(deadline - time.monotonic() + 0.999)))


class Client:
    """Blocking client. `Client(server, token)`, or from COUNTERSIGN_SERVER / COUNTERSIGN_TOKEN."""

    def __init__(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        *,
        verify: Any = None,
        http: Optional[httpx.Client] = None,
    ) -> None:
        self.server, token = _core.settings(server, token)
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": "countersign-python"}
        self._verify = _core.tls(verify)
        # httpcore's pool, driven directly (see `_http`); a given httpx client is used as is.
        self._http = SyncHttp(self.server, self._headers, self._verify, http)
        self._outcomes: Optional[OutcomeSender] = None

    @property
    def outcomes(self) -> OutcomeSender:
        """The background sender of outcome reports (see `countersign.outcomes`)."""
        if self._outcomes is None:
            self._outcomes = OutcomeSender(self.server, self._headers, self._verify)
        return self._outcomes

    def report_outcome_later(
        self,
        id: str,
        status: str,
        *,
        exit_code: Optional[int] = None,
        summary: Optional[str] = None,
        output_sha256: Optional[str] = None,
        done: Optional[Callable[[Request], None]] = None,
    ) -> None:
        """Queues the outcome report for the background sender; returns at once."""
        body = _core.outcome_body(status, exit_code, summary, output_sha256)
        _core.segment(id)  # refused here, not later in the sender
        self.outcomes.send(Report(id, body, _on_recorded(done)))

    def flush_outcomes(self, timeout: Optional[float] = None) -> int:
        """Waits for queued outcome reports; returns how many are left."""
        return 0 if self._outcomes is None else self._outcomes.flush(timeout)

    def close(self) -> None:
        if self._outcomes is not None:
            self._outcomes.close()
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, call: Call, text: bool = False) -> Any:
        try:
            response = self._http.request(call.method, call.path, call.params, call.body, call.timeout)
        except TRANSPORT_ERRORS as e:
            raise _core.transport_error(e) from e
        return _core.read(response, text)

    def _dict(self, call: Call) -> Dict[str, Any]:
        return _core.json_object(self._call(call))

    def _text(self, call: Call) -> str:
        return str(self._call(call, text=True))

    # requester
    def submit(self, kind: str, resource: str, payload: Any = None, *, reuse_open: bool = False,
               **fields: Any) -> Request:
        """`POST /v1/actions`: `allowed`, `denied` or `pending`.

        `reuse_open=True` (`?reuse=open`): when this caller already has an
        open request for the exact same action, the gateway answers with it
        (`reused`, and `approved` if it was approved) instead of a new one."""
        return Request.from_json(self._call(_core.submit_call(kind, resource, payload, reuse_open, fields)))

    def get(self, id: str, wait: int = 0) -> Request:
        """`GET /v1/actions/{id}`, holding the answer up to `wait` s while pending."""
        return Request.from_json(self._call(_core.wait_call(id, wait)))

    def wait(self, id: str, timeout: Optional[float] = None) -> Request:
        """Until the request leaves `pending` (or `timeout` s pass: then it is still pending)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        lost: Optional[float] = None
        backoff = 0.25
        while True:
            started = time.monotonic()
            try:
                request = self.get(id, wait=_poll_secs(deadline))
            except GatewayUnavailable:
                lost = lost or time.monotonic()
                if time.monotonic() - lost > RECONNECT_FOR or (deadline is not None and time.monotonic() > deadline):
                    raise
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            lost, backoff = None, 0.25
            if not request.pending or (deadline is not None and time.monotonic() >= deadline):
                return request
            # A gateway that answers "pending" without holding the call
            # must not turn this into a busy loop.
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    def release(self, id: str) -> Request:
        """Take the single-use approval: `released`."""
        return Request.from_json(self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/release", body={})))

    def cancel(self, id: str) -> Request:
        return Request.from_json(self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/cancel", body={})))

    def report_outcome(
        self,
        id: str,
        status: str,
        *,
        exit_code: Optional[int] = None,
        summary: Optional[str] = None,
        output_sha256: Optional[str] = None,
    ) -> Request:
        body = _core.outcome_body(status, exit_code, summary, output_sha256)
        return Request.from_json(self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/outcome", body=body)))

    # anyone
    def list(self, status: Optional[str] = None, kind: Optional[str] = None, resource: Optional[str] = None,
             limit: Optional[int] = None, cursor: Optional[str] = None) -> Page:
        return _page(self._call(Call("GET", "/v1/actions", _list_params(status, kind, resource, limit, cursor))))

    def iter_actions(self, status: Optional[str] = None, kind: Optional[str] = None,
                     resource: Optional[str] = None) -> Iterator[Request]:
        """Every visible request, newest first, following `next_cursor`."""
        cursor = None
        while True:
            page = self.list(status, kind, resource, None, cursor)
            yield from page.actions
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def comment(self, id: str, comment: str) -> Request:
        return Request.from_json(self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/comments", body={"comment": comment})))

    def whoami(self) -> Dict[str, Any]:
        return self._dict(Call("GET", "/v1/whoami"))

    # approvers
    def approve(self, id: str, comment: Optional[str] = None) -> Request:
        return Request.from_json(self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/approve", body={"comment": comment})))

    def deny(self, id: str, comment: Optional[str] = None) -> Request:
        return Request.from_json(self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/deny", body={"comment": comment})))

    # auditors and admins
    def audit(self, after: int = 0, limit: Optional[int] = None) -> AuditPage:
        params = {"after": after} if limit is None else {"after": after, "limit": limit}
        data = self._call(Call("GET", "/v1/audit", params))
        return AuditPage(list(data.get("events", [])), int(data.get("next_after", after)))

    def audit_checkpoint(self) -> str:
        return self._text(Call("GET", "/v1/audit/checkpoint"))

    def audit_key(self) -> str:
        return self._text(Call("GET", "/v1/audit/key"))

    def inclusion_proof(self, seq: int, size: Optional[int] = None) -> Dict[str, Any]:
        params = {"seq": seq} if size is None else {"seq": seq, "size": size}
        return self._dict(Call("GET", "/v1/audit/proof/inclusion", params))

    def consistency_proof(self, first: int, to: Optional[int] = None) -> Dict[str, Any]:
        params = {"from": first} if to is None else {"from": first, "to": to}
        return self._dict(Call("GET", "/v1/audit/proof/consistency", params))

    def policies(self) -> Dict[str, Any]:
        return self._dict(Call("GET", "/v1/policies"))

    def reload_policies(self) -> Dict[str, Any]:
        return self._dict(Call("POST", "/v1/policies/reload"))

    # operations
    def healthy(self) -> bool:
        try:
            self._call(Call("GET", "/healthz"), text=True)
            return True
        except GatewayUnavailable:
            return False

    def ready(self) -> bool:
        try:
            self._call(Call("GET", "/readyz"), text=True)
            return True
        except GatewayUnavailable:
            return False

    def openapi(self) -> Dict[str, Any]:
        return self._dict(Call("GET", "/openapi.json"))

    def metrics(self) -> str:
        """Prometheus text."""
        return self._text(Call("GET", "/metrics"))


class AsyncClient:
    """The asyncio twin of `Client`: the same methods, awaited."""

    def __init__(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        *,
        verify: Any = None,
        http: Optional[httpx.AsyncClient] = None,
    ) -> None:
        self.server, token = _core.settings(server, token)
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": "countersign-python"}
        self._verify = _core.tls(verify)
        self._http = AsyncHttp(self.server, self._headers, self._verify, http)
        self._outcomes: Optional[OutcomeSender] = None
        self._loop_outcomes: Optional[LoopSender] = None

    @property
    def outcomes(self) -> OutcomeSender:
        """The background sender thread of outcome reports: what is queued
        off an event loop, and what the loop's own sender could not send."""
        if self._outcomes is None:
            self._outcomes = OutcomeSender(self.server, self._headers, self._verify)
        return self._outcomes

    def report_outcome_later(self, id: str, status: str, *, exit_code: Optional[int] = None,
                             summary: Optional[str] = None, output_sha256: Optional[str] = None,
                             done: Optional[Callable[[Request], None]] = None) -> None:
        """Queues the outcome report; returns at once. On a running event loop
        it is sent by a task on that loop, else by the sender thread (see
        `countersign.outcomes`)."""
        body = _core.outcome_body(status, exit_code, summary, output_sha256)
        _core.segment(id)  # refused here, not later in the sender
        report = Report(id, body, _on_recorded(done))
        try:
            loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or (self._outcomes is not None and self._outcomes.busy):
            # Off a loop; or behind reports the thread still holds, to keep the order.
            self.outcomes.send(report)
            return
        sender = self._loop_outcomes
        if sender is None or sender.loop is not loop:
            if sender is not None:
                sender.hand_over()  # its loop has ended: the thread sends what it held
            sender = self._loop_outcomes = LoopSender(loop, self._post_report, lambda: self.outcomes)
        sender.send(report)

    async def _post_report(self, report: Report) -> Any:
        return await self._call(Call("POST", f"/v1/actions/{_core.segment(report.id)}/outcome", body=report.body))

    async def _drain_loop(self, timeout: Optional[float]) -> int:
        sender = self._loop_outcomes
        if sender is None:
            return 0
        if sender.loop is asyncio.get_running_loop():
            return await sender.drain(timeout)
        sender.hand_over()
        return 0

    async def flush_outcomes(self, timeout: Optional[float] = None) -> int:
        """Waits for queued outcome reports (the thread's off the event loop); returns how many are left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        left = await self._drain_loop(timeout)
        sender = self._outcomes
        if sender is None:
            return left
        rest = None if deadline is None else max(0.0, deadline - time.monotonic())
        return left + await asyncio.get_running_loop().run_in_executor(None, sender.flush, rest)

    async def aclose(self) -> None:
        await self._drain_loop(None)
        sender = self._outcomes
        if sender is not None:
            await asyncio.get_running_loop().run_in_executor(None, sender.close)
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, call: Call, text: bool = False) -> Any:
        try:
            response = await self._http.request(call.method, call.path, call.params, call.body, call.timeout)
        except TRANSPORT_ERRORS as e:
            raise _core.transport_error(e) from e
        return _core.read(response, text)

    async def _dict(self, call: Call) -> Dict[str, Any]:
        return _core.json_object(await self._call(call))

    async def _text(self, call: Call) -> str:
        return str(await self._call(call, text=True))

    async def submit(self, kind: str, resource: str, payload: Any = None, *, reuse_open: bool = False,
                     **fields: Any) -> Request:
        return Request.from_json(await self._call(_core.submit_call(kind, resource, payload, reuse_open, fields)))

    async def get(self, id: str, wait: int = 0) -> Request:
        return Request.from_json(await self._call(_core.wait_call(id, wait)))

    async def wait(self, id: str, timeout: Optional[float] = None) -> Request:
        deadline = None if timeout is None else time.monotonic() + timeout
        lost: Optional[float] = None
        backoff = 0.25
        while True:
            started = time.monotonic()
            try:
                request = await self.get(id, wait=_poll_secs(deadline))
            except GatewayUnavailable:
                lost = lost or time.monotonic()
                if time.monotonic() - lost > RECONNECT_FOR or (deadline is not None and time.monotonic() > deadline):
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            lost, backoff = None, 0.25
            if not request.pending or (deadline is not None and time.monotonic() >= deadline):
                return request
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    async def release(self, id: str) -> Request:
        return Request.from_json(await self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/release", body={})))

    async def cancel(self, id: str) -> Request:
        return Request.from_json(await self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/cancel", body={})))

    async def report_outcome(self, id: str, status: str, *, exit_code: Optional[int] = None,
                             summary: Optional[str] = None, output_sha256: Optional[str] = None) -> Request:
        body = _core.outcome_body(status, exit_code, summary, output_sha256)
        return Request.from_json(await self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/outcome", body=body)))

    async def list(self, status: Optional[str] = None, kind: Optional[str] = None, resource: Optional[str] = None,
                   limit: Optional[int] = None, cursor: Optional[str] = None) -> Page:
        return _page(await self._call(Call("GET", "/v1/actions", _list_params(status, kind, resource, limit, cursor))))

    async def iter_actions(self, status: Optional[str] = None, kind: Optional[str] = None,
                           resource: Optional[str] = None) -> AsyncIterator[Request]:
        cursor = None
        while True:
            page = await self.list(status, kind, resource, None, cursor)
            for action in page.actions:
                yield action
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def comment(self, id: str, comment: str) -> Request:
        return Request.from_json(await self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/comments", body={"comment": comment})))

    async def whoami(self) -> Dict[str, Any]:
        return await self._dict(Call("GET", "/v1/whoami"))

    async def approve(self, id: str, comment: Optional[str] = None) -> Request:
        return Request.from_json(await self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/approve", body={"comment": comment})))

    async def deny(self, id: str, comment: Optional[str] = None) -> Request:
        return Request.from_json(await self._call(Call("POST", f"/v1/actions/{_core.segment(id)}/deny", body={"comment": comment})))

    async def audit(self, after: int = 0, limit: Optional[int] = None) -> AuditPage:
        params = {"after": after} if limit is None else {"after": after, "limit": limit}
        data = await self._call(Call("GET", "/v1/audit", params))
        return AuditPage(list(data.get("events", [])), int(data.get("next_after", after)))

    async def audit_checkpoint(self) -> str:
        return await self._text(Call("GET", "/v1/audit/checkpoint"))

    async def audit_key(self) -> str:
        return await self._text(Call("GET", "/v1/audit/key"))

    async def inclusion_proof(self, seq: int, size: Optional[int] = None) -> Dict[str, Any]:
        params = {"seq": seq} if size is None else {"seq": seq, "size": size}
        return await self._dict(Call("GET", "/v1/audit/proof/inclusion", params))

    async def consistency_proof(self, first: int, to: Optional[int] = None) -> Dict[str, Any]:
        params = {"from": first} if to is None else {"from": first, "to": to}
        return await self._dict(Call("GET", "/v1/audit/proof/consistency", params))

    async def policies(self) -> Dict[str, Any]:
        return await self._dict(Call("GET", "/v1/policies"))

    async def reload_policies(self) -> Dict[str, Any]:
        return await self._dict(Call("POST", "/v1/policies/reload"))

    async def healthy(self) -> bool:
        try:
            await self._call(Call("GET", "/healthz"), text=True)
            return True
        except GatewayUnavailable:
            return False

    async def ready(self) -> bool:
        try:
            await self._call(Call("GET", "/readyz"), text=True)
            return True
        except GatewayUnavailable:
            return False

    async def openapi(self) -> Dict[str, Any]:
        return await self._dict(Call("GET", "/openapi.json"))

    async def metrics(self) -> str:
        return await self._text(Call("GET", "/metrics"))
