"""`guard()`: clear one action with the gateway, run it, report how it went.

    with countersign.guard("db.migrate", "prod-db", {"version": 42}) as permit:
        migrate(42)

    @countersign.guard("payments.refund", "stripe")
    def refund(order_id: str, cents: int): ...

Submit → (if pending) wait, pushed by the gateway → release (single use) →
check that what was released is what was submitted → run → report the outcome
(`succeeded`, or `failed` when the body raised). The outcome is queued for the
client's background sender (`background_report=True`, the default; see
`countersign.outcomes`), so the caller does not wait for it;
`background_report=False` awaits it. The submission asks the gateway to reuse
this caller's open request for the same action (`reuse_open=True`). Anything else raises before
the body runs: `Denied`, `Expired`, `Revoked`, `Cancelled`, `StillPending`
(the caller's own timeout; the request is cancelled unless it was reused, as
another identical call may wait on it), `GatewayUnavailable`
(fail closed), `PayloadMismatch`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union

from . import outcomes
from .client import AsyncClient, Client
from .errors import ApiError, GatewayUnavailable, PayloadMismatch, ProtocolError, StillPending, blocked
from .types import Request

log = logging.getLogger("countersign")

F = TypeVar("F", bound=Callable[..., Any])
#: Codes with which `release` refuses a request that is no longer runnable.
CLOSED_CODES = {"expired", "not_approved", "not_open", "already_released"}
SUMMARY_LIMIT = 500


async def drain_reports() -> None:
    """Waits for every outcome report still queued (`background_report=True`):
    those sent on this event loop, then (off the loop) the sender threads'."""
    loop = asyncio.get_running_loop()
    for sender in list(outcomes._loops):
        if sender.loop is loop:
            await sender.drain()
    await loop.run_in_executor(None, flush_reports)


def flush_reports(timeout: Optional[float] = None) -> int:
    """Waits for every report queued in the sender threads (and those left on
    event loops that ended); returns how many are left."""
    outcomes.hand_over_stranded()
    return sum(sender.flush(timeout) for sender in list(outcomes._open))


def json_copy(payload: Any) -> Any:
    """The payload as the gateway will store it; refuses what JSON cannot carry."""
    try:
        return json.loads(json.dumps(payload, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"the payload is not plain JSON ({e}); pass `payload=` explicitly") from e


def call_payload(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """A decorated call as an action payload: the function and its arguments."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return {"function": f"{fn.__module__}.{fn.__qualname__}", "arguments": dict(bound.arguments)}


class _TakenByAnother(Exception):
    """A reused request was released by another identical call first."""


class Permit:
    """The clearance to run one action: the `allowed` or `released` request.

    Set `summary`, `exit_code` or `output` (hashed, never sent) to shape the
    outcome reported when the block ends.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.id = request.id
        self.summary: Optional[str] = None
        self.exit_code: Optional[int] = None
        self.output_sha256: Optional[str] = None
        self.reported: Optional[Request] = None

    def set_output(self, output: Union[bytes, str]) -> None:
        data = output.encode() if isinstance(output, str) else output
        self.output_sha256 = hashlib.sha256(data).hexdigest()

    @property
    def waited(self) -> bool:
        """Whether a human approved it (it was `pending` first)."""
        return self.request.status == "released"


def check_released(view: Request, submitted: Request, payload: Any) -> None:
    """Refuses to run anything but the submitted action."""
    if view.status != "released":
        raise blocked(view) if view.status in ("denied", "expired", "revoked", "cancelled") else PayloadMismatch(
            f"request {view.id} is `{view.status}` after release, not `released`; not running"
        )
    if view.payload != payload:
        raise PayloadMismatch(f"the released request {view.id} does not carry the submitted payload; not running")
    if not view.fingerprint or view.fingerprint != submitted.fingerprint:
        raise PayloadMismatch(f"the released request {view.id} has another fingerprint; not running")


def _outcome(permit: Permit, error: Optional[BaseException]) -> Dict[str, Any]:
    summary = permit.summary
    if error is not None and summary is None:
        summary = f"{type(error).__name__}: {error}"
    return {
        "status": "failed" if error is not None else "succeeded",
        "exit_code": permit.exit_code,
        "summary": summary[:SUMMARY_LIMIT] if summary else None,
        "output_sha256": permit.output_sha256,
    }


class Guard:
    """One guarded action; a context manager (sync and async) and a decorator."""

    def __init__(
        self,
        kind: str,
        resource: str,
        payload: Any = None,
        *,
        client: Union[Client, AsyncClient, None] = None,
        justification: Optional[str] = None,
        labels: Iterable[str] = (),
        context: Optional[Mapping[str, Any]] = None,
        on_behalf_of: Optional[str] = None,
        timeout: Optional[float] = None,
        on_pending: Optional[Callable[[Request], Any]] = None,
        background_report: bool = True,
    ) -> None:
        self.kind = kind
        self.resource = resource
        self.payload = payload
        self.client = client
        self.fields = {
            "justification": justification,
            "labels": list(labels),
            "context": dict(context or {}),
            "on_behalf_of": on_behalf_of,
        }
        self.timeout = timeout
        self.on_pending = on_pending
        # The outcome is queued for the client's background sender while
        # the caller goes on (one round trip off its path); see `outcomes`.
        self.background_report = background_report
        self._open: List[Permit] = []

    def _payload(self, given: Any) -> Any:
        payload = self.payload if given is None else given
        # The gateway stores a missing payload as `{}`; compare like with like.
        return {} if payload is None or callable(payload) else payload

    # the blocking path
    def _sync_client(self) -> Client:
        if self.client is None:
            self.client = Client()
        if not isinstance(self.client, Client):
            raise TypeError("a blocking guard needs a `countersign.Client`")
        return self.client

    def clear(self, payload: Any = None) -> Permit:
        """Submit, wait, release: a `Permit`, or the error that stops the action.

        The action is submitted with `reuse_open=True`: this caller's open
        request for the exact same action (asked again, resumed elsewhere)
        is waited on or taken instead of a new one."""
        return self._clear_copy(json_copy(self._payload(payload)))

    def _clear_copy(self, payload: Any) -> Permit:
        """`clear` of a payload that is already a JSON copy (an adapter's `tool_payload`)."""
        client = self._sync_client()
        try:
            return self._clear(client, payload, reuse_open=True)
        except _TakenByAnother:
            # An identical call released the shared request first: this one
            # is another action run, and needs its own request.
            return self._clear(client, payload, reuse_open=False)

    def _clear(self, client: Client, payload: Any, reuse_open: bool) -> Permit:
        submitted = client.submit(self.kind, self.resource, payload, reuse_open=reuse_open, **self.fields)
        if submitted.status == "allowed":
            return Permit(submitted)
        if submitted.status == "pending":
            if self.on_pending is not None:
                self.on_pending(submitted)
            decided = client.wait(submitted.id, self.timeout)
        elif submitted.status == "approved":
            decided = submitted
        else:
            raise blocked(submitted)
        if decided.pending:
            if submitted.reused:
                # Another identical call may be waiting on it: left open.
                raise StillPending(decided, f"request {decided.id} was still pending after {self.timeout} s")
            try:
                client.cancel(submitted.id)
            except (ApiError, GatewayUnavailable) as e:
                log.warning("cancelling request %s failed: %s", submitted.id, e)
            raise StillPending(decided, f"request {decided.id} was still pending after {self.timeout} s; cancelled")
        if decided.status != "approved":
            raise blocked(decided)
        try:
            released = client.release(submitted.id)
        except ApiError as e:
            if submitted.reused and e.code == "already_released":
                raise _TakenByAnother() from e
            if e.code in CLOSED_CODES:
                raise blocked(client.get(submitted.id)) from e
            raise
        check_released(released, submitted, payload)
        return Permit(released)

    def report(self, permit: Permit, error: Optional[BaseException] = None) -> None:
        """Reports the outcome; a failure to report is logged, never raised (the action ran)."""
        client = self._sync_client()
        body = _outcome(permit, error)
        if self.background_report:
            client.report_outcome_later(permit.id, **body, done=functools.partial(setattr, permit, "reported"))
            return
        for attempt in range(3):
            try:
                permit.reported = client.report_outcome(permit.id, **body)
                return
            except GatewayUnavailable as e:
                last: Exception = e
                time.sleep(0.2 * (attempt + 1))
            except (ApiError, ProtocolError) as e:
                last = e
                break
        log.warning("the outcome of request %s was not recorded: %s", permit.id, last)

    def __enter__(self) -> Permit:
        permit = self.clear()
        self._open.append(permit)
        return permit

    def __exit__(self, kind: Any, error: Optional[BaseException], tb: Any) -> None:
        self.report(self._open.pop(), error)

    # the asyncio path
    def _async_client(self) -> AsyncClient:
        if self.client is None:
            self.client = AsyncClient()
        if not isinstance(self.client, AsyncClient):
            raise TypeError("an async guard needs a `countersign.AsyncClient`")
        return self.client

    async def aclear(self, payload: Any = None) -> Permit:
        return await self._aclear_copy(json_copy(self._payload(payload)))

    async def _aclear_copy(self, payload: Any) -> Permit:
        """`aclear` of a payload that is already a JSON copy (an adapter's `tool_payload`)."""
        client = self._async_client()
        try:
            return await self._aclear(client, payload, reuse_open=True)
        except _TakenByAnother:
            return await self._aclear(client, payload, reuse_open=False)

    async def _aclear(self, client: AsyncClient, payload: Any, reuse_open: bool) -> Permit:
        submitted = await client.submit(self.kind, self.resource, payload, reuse_open=reuse_open, **self.fields)
        if submitted.status == "allowed":
            return Permit(submitted)
        if submitted.status == "approved":
            decided = submitted
        elif submitted.status == "pending":
            if self.on_pending is not None:
                shown = self.on_pending(submitted)
                if inspect.isawaitable(shown):
                    await shown
            try:
                decided = await client.wait(submitted.id, self.timeout)
            except asyncio.CancelledError:
                # The task was cancelled while waiting: so is the request,
                # unless it was reused (another identical call may wait on it).
                if not submitted.reused:
                    await asyncio.shield(self._cancel(client, submitted.id))
                raise
        else:
            raise blocked(submitted)
        if decided.pending:
            if submitted.reused:
                raise StillPending(decided, f"request {decided.id} was still pending after {self.timeout} s")
            await self._cancel(client, submitted.id)
            raise StillPending(decided, f"request {decided.id} was still pending after {self.timeout} s; cancelled")
        if decided.status != "approved":
            raise blocked(decided)
        try:
            released = await client.release(submitted.id)
        except ApiError as e:
            if submitted.reused and e.code == "already_released":
                raise _TakenByAnother() from e
            if e.code in CLOSED_CODES:
                raise blocked(await client.get(submitted.id)) from e
            raise
        check_released(released, submitted, payload)
        return Permit(released)

    @staticmethod
    async def _cancel(client: AsyncClient, id: str) -> None:
        try:
            await client.cancel(id)
        except (ApiError, GatewayUnavailable) as e:
            log.warning("cancelling request %s failed: %s", id, e)

    async def areport(self, permit: Permit, error: Optional[BaseException] = None) -> None:
        client = self._async_client()
        body = _outcome(permit, error)
        if self.background_report:
            client.report_outcome_later(permit.id, **body, done=functools.partial(setattr, permit, "reported"))
            return
        for attempt in range(3):
            try:
                permit.reported = await client.report_outcome(permit.id, **body)
                return
            except GatewayUnavailable as e:
                last: Exception = e
                await asyncio.sleep(0.2 * (attempt + 1))
            except (ApiError, ProtocolError) as e:
                last = e
                break
        log.warning("the outcome of request %s was not recorded: %s", permit.id, last)

    async def __aenter__(self) -> Permit:
        permit = await self.aclear()
        self._open.append(permit)
        return permit

    async def __aexit__(self, kind: Any, error: Optional[BaseException], tb: Any) -> None:
        await self.areport(self._open.pop(), error)

    # the decorator
    def payload_for(self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        if callable(self.payload):
            return self.payload(*args, **kwargs)
        if self.payload is None:
            return call_payload(fn, args, kwargs)
        return self.payload

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                permit = await self.aclear(self.payload_for(fn, args, kwargs))
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as e:
                    await self.areport(permit, e)
                    raise
                await self.areport(permit)
                return result

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            permit = self.clear(self.payload_for(fn, args, kwargs))
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:
                self.report(permit, e)
                raise
            self.report(permit)
            return result

        return guarded  # type: ignore[return-value]


def guard(kind: str, resource: str, payload: Any = None, **options: Any) -> Guard:
    """A guarded action: `with guard(...)`, `async with guard(...)`, or `@guard(...)`.

    As a decorator, `payload` may be a function of the call's arguments; left
    out, the payload is the function's name and its bound arguments, so the
    approval binds to the exact call.
    """
    return Guard(kind, resource, payload, **options)
