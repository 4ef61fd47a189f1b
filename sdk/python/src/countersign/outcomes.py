"""Outcome reports sent off the caller's path (`background_report=True`).

An `AsyncClient` called on a running event loop sends them as one task on
that loop (`LoopSender`), in order, over the client's connections: no second
thread wakes per report, none takes the GIL from the caller's (measured:
0.1–0.6 ms less per gated tool call inside an agent framework, see the
README). Whatever that task has not delivered when the loop ends (the
task cancelled by `asyncio.run`, or dropped), or when the gateway cannot
be reached, goes on, in order, to the client's sender thread below — a
report cut off mid-send is sent again, and "already reported" then counts
as delivered.

Otherwise (a blocking `Client`, or no loop running) one daemon thread per
client, with its own pooled keep-alive connection, sends the reports in
order. A report the gateway cannot take yet (it is down, or answers 5xx) is
retried with backoff for `RETRY_FOR` seconds; one it refuses (4xx: already
reported, not the requester's) is not retried.
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

import asyncio
import atexit
import dataclasses
import logging
import queue
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional

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
_loops: "weakref.WeakSet[LoopSender]" = weakref.WeakSet()
#: The gateway's answer to a second outcome for one request.
ALREADY_REPORTED = "outcome_already_reported"


@dataclass(frozen=True)
class Report:
    id: str
    body: Dict[str, Any]
    #: Called with the gateway's answer (the request's JSON) once recorded.
    done: Optional[Callable[[Any], None]] = None
    #: Sent before, perhaps recorded (cut off mid-send): "already reported" is delivered.
    again: bool = False


def _recorded(report: Report, answer: Any) -> None:
    if report.done is not None:
        try:
            report.done(answer)
        except Exception as e:  # a caller's callback must not stop the sender
            log.warning("an outcome callback failed: %s", e)


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

    @property
    def busy(self) -> bool:
        """Whether reports are queued or being sent (a later one must queue behind them)."""
        return self._queue.unfinished_tasks > 0

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
            except ApiError as e:
                if report.again and e.code == ALREADY_REPORTED:
                    return  # the first send was recorded
                return self._give_up(report, e)
            except ProtocolError as e:
                return self._give_up(report, e)
            return _recorded(report, answer)

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


class LoopSender:
    """One `AsyncClient`'s reports on one event loop: a queue and the one
    task that sends it, in order; what it cannot send goes to `thread()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, post: Callable[[Report], Awaitable[Any]],
                 thread: Callable[[], OutcomeSender]) -> None:
        self.loop = loop
        self._post = post
        self._thread = thread
        self._queue: Deque[Report] = deque()
        self._task: "Optional[asyncio.Task[None]]" = None
        #: Whether `_queue[0]` is being sent (it may be recorded already).
        self._sending = False
        _loops.add(self)

    def send(self, report: Report) -> None:
        """Queues a report; returns at once (called on `loop`)."""
        self._queue.append(report)
        if self._task is None:
            self._task = self.loop.create_task(self._run())
            # Also when the task is cancelled before it ever ran (the loop ending).
            self._task.add_done_callback(self._ended)

    async def _run(self) -> None:
        try:
            while self._queue:
                report = self._queue[0]
                self._sending = True
                try:
                    answer = await self._post(report)
                except GatewayUnavailable:
                    # The thread retries with backoff for RETRY_FOR; all that
                    # is queued follows it, so the order holds.
                    self.hand_over()
                    return
                except (ApiError, ProtocolError) as e:
                    if not self._took(report):
                        return
                    if not (report.again and isinstance(e, ApiError) and e.code == ALREADY_REPORTED):
                        self._thread()._give_up(report, e)
                    continue
                if not self._took(report):
                    return
                _recorded(report, answer)
        except BaseException:
            # Cancelled (the loop is ending) or closed unfinished (the loop dropped).
            self.hand_over()
            raise

    def _took(self, report: Report) -> bool:
        """Takes the report just sent off the queue, unless it was handed over meanwhile (then the thread has it)."""
        if not self._queue or self._queue[0] is not report:
            return False
        self._queue.popleft()
        self._sending = False
        return True

    def _ended(self, task: "asyncio.Task[None]") -> None:
        self._task = None
        self.hand_over()

    def hand_over(self) -> None:
        """Gives every report not yet delivered to the sender thread, in order."""
        again, self._sending = self._sending, False
        if not self._queue:
            return
        thread = self._thread()
        while self._queue:
            report = self._queue.popleft()
            if again:
                report, again = dataclasses.replace(report, again=True), False
            try:
                thread.send(report)
            except RuntimeError as e:  # the client was closed meanwhile
                thread._give_up(report, e)

    async def drain(self, timeout: Optional[float] = None) -> int:
        """Waits (on `loop`) until the task has sent all it holds; returns how many are left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._task is not None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            await asyncio.wait({self._task}, timeout=left)
        return len(self._queue)

    def stranded(self) -> bool:
        """Whether it holds reports its loop will never send (closed, or no longer running)."""
        return bool(self._queue) and (self.loop.is_closed() or not self.loop.is_running())


def hand_over_stranded() -> None:
    """Reports left on event loops that ended go to their sender threads."""
    for sender in list(_loops):
        if sender.stranded():
            sender.hand_over()


@atexit.register
def _flush_at_exit() -> None:
    hand_over_stranded()
    for sender in list(_open):
        left = sender.flush(EXIT_FLUSH)
        if left:
            log.error("%d outcome report(s) were still queued at exit; their requests show no outcome", left)
