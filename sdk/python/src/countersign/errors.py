"""Typed errors of the countersign SDK.

Every way an action can fail to be cleared is an exception, so a caller that
forgets to handle one runs nothing (fail closed): the gateway refusing a call
(`ApiError`, with the gateway's stable `code`), the gateway unreachable
(`GatewayUnavailable`), and a request that ended without a usable approval
(`ActionBlocked` and its kinds: `Denied`, `Expired`, `Revoked`, `Cancelled`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .types import Request


class CountersignError(Exception):
    """Base of every error this SDK raises."""


class GatewayUnavailable(CountersignError):
    """The gateway could not be reached, timed out, or answered 5xx.

    Nothing ran: an unreachable gateway never counts as an approval.
    """


class ApiError(CountersignError):
    """The gateway refused a call: `{"error": {"code", "message"}}` and a 4xx."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ProtocolError(CountersignError):
    """The gateway's answer does not read as the API says it should."""


class ActionBlocked(CountersignError):
    """The action was not cleared to run; `request` is the gateway's view."""

    status = "blocked"

    def __init__(self, request: "Request", message: Optional[str] = None) -> None:
        self.request = request
        self.id = request.id
        self.reason = request.reason
        super().__init__(message or f"{self.status}: request {request.id}: {request.reason}")


class Denied(ActionBlocked):
    """Denied by policy at submission, or by an approver."""

    status = "denied"


class Expired(ActionBlocked):
    """Nobody decided before the deadline, or the approval was not released in time."""

    status = "expired"


class Revoked(ActionBlocked):
    """The approval no longer holds (policy change, revoked identity)."""

    status = "revoked"


class Cancelled(ActionBlocked):
    """The request was cancelled (by the requester, or on timeout)."""

    status = "cancelled"


class StillPending(ActionBlocked):
    """The caller's own `timeout` ran out while the request was pending; it was cancelled."""

    status = "pending"


class PayloadMismatch(CountersignError):
    """The released request is not the action that was submitted; nothing ran."""


BLOCKED = {"denied": Denied, "expired": Expired, "revoked": Revoked, "cancelled": Cancelled}


def blocked(request: "Request") -> ActionBlocked:
    """The typed error for a request that ended without running."""
    kind = BLOCKED.get(request.status)
    if kind is None:
        return ActionBlocked(request, f"request {request.id} is `{request.status}`, not runnable")
    return kind(request)
