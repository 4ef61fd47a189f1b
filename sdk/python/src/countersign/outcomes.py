"""Outcome reports sent off the caller's path (`background_report=True`).

One daemon thread per client, with its own pooled keep-alive connection,
sends the reports in order. A report the gateway cannot take yet (it is
down, or answers 5xx) is retried with backoff for `RETRY_FOR` seconds; one
it refuses (4xx: already reported, not the requester's) is not retried.
Either way nothing is lost silently: a report given up is logged as an
error and kept in `undelivered`, and `flush()` returns how many are left.

`flush()` waits for the queue to empty; `close()` (the client's `close` /
`aclose`) flushes, and at interpreter exit every sender still open is
flushed for up to `EXIT_FLUSH` seconds. A process that dies without
exiting (SIGKILL, power loss) loses the reports still queued: the gateway
then shows the request `allowed` or `released` with no outcome, which an
auditor reads as "ran, result unknown".
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import httpx

from . import _core
from ._http import TRANSPORT_ERRORS, SyncHttp
from .errors import ApiError, GatewayUnavailable, ProtocolError

log = logging.getLogger("countersign")

#: Seconds a report is retried while the gateway cannot take it.
RETRY_FOR = 30.0
#: Seconds the interpreter's exit waits for reports still queued.
EXIT_FLUSH = 10.0

_open: "weakref.WeakSet[OutcomeSender]" = weakref.WeakSet()


@dataclass(frozen=True)
class Report:
    id: str
    body: Dict[str, Any]
    #: Called with the gateway's answer (the request's JSON) once recorded.
    done: Optional[Callable[[Any], None]] = None


class OutcomeSender:
    """A queue of outcome reports and the thread that sends them."""

    def __init__(self, server: str, headers: Dict[str, str], verify: Any,
                 http: Optional[httpx.Client] = None) -> None:
        self._http = SyncHttp(server, headers, verify, http)
        self._queue: "queue.Queue[Optional[Report]]" = queue.Queue()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        #: Reports given up (refused, or the gateway unreachable past `RETRY_FOR`).
        self.undelivered: List[Report] = []
        _open.add(self)

    def send(self, report: Report) -> None:
        """Queues a report; returns at once."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the outcome sender is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="countersign-outcomes", daemon=True)
                self._thread.start()
        self._queue.put(report)

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits until every queued report is recorded or given up (at most
        `timeout` seconds); returns how many are still queued."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._queue.all_tasks_done.wait(left)
            return self._queue.unfinished_tasks

    def close(self, timeout: Optional[float] = None) -> None:
        left = self.flush(timeout)
        if left:
            log.error("%d outcome report(s) were not sent before close; their requests show no outcome", left)
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(1.0)
        self._http.close()
        _open.discard(self)

    def _run(self) -> None:
        while True:
            report = self._queue.get()
            try:
                if report is None:
                    return
                self._deliver(report)
            finally:
                self._queue.task_done()

    def _deliver(self, report: Report) -> None:
        started = time.monotonic()
        backoff = 0.1
        while True:
            try:
                answer = self._post(report)
            except GatewayUnavailable as e:
                if time.monotonic() - started > RETRY_FOR:
                    return self._give_up(report, e)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except (ApiError, ProtocolError) as e:
                return self._give_up(report, e)
            if report.done is not None:
                try:
                    report.done(answer)
                except Exception as e:  # a caller's callback must not stop the sender
                    log.warning("an outcome callback failed: %s", e)
            return

    def _post(self, report: Report) -> Any:
        path = f"/v1/actions/{_core.segment(report.id)}/outcome"
        try:
            response = self._http.request("POST", path, None, report.body, _core.CALL_TIMEOUT)
        except TRANSPORT_ERRORS as e:
            raise _core.transport_error(e) from e
        return _core.read(response)

    def _give_up(self, report: Report, error: Exception) -> None:
        self.undelivered.append(report)
        log.error("the outcome of request %s was not recorded: %s", report.id, error)


@atexit.register
def _flush_at_exit() -> None:
    for sender in list(_open):
        left = sender.flush(EXIT_FLUSH)
        if left:
            log.error("%d outcome report(s) were still queued at exit; their requests show no outcome", left)
