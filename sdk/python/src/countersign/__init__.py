"""countersign: action-level approvals for AI agents — the Python SDK.

`Client` / `AsyncClient` speak the whole HTTP API; `guard()` clears one
action (submit, wait pushed, release, run, report); `countersign.adapters`
plugs the gateway into agent frameworks.
"""

from .client import AsyncClient, Client
from .errors import (
    ActionBlocked,
    ApiError,
    Cancelled,
    CountersignError,
    Denied,
    Expired,
    GatewayUnavailable,
    PayloadMismatch,
    ProtocolError,
    Revoked,
    StillPending,
)
from .guard import Guard, Permit, drain_reports, flush_reports, guard
from .types import AuditPage, Entry, Page, Request, Requirement

__all__ = [
    "ActionBlocked", "ApiError", "AsyncClient", "AuditPage", "Cancelled", "Client", "CountersignError",
    "Denied", "Entry", "Expired", "GatewayUnavailable", "Guard", "Page", "PayloadMismatch", "Permit",
    "ProtocolError", "Request", "Requirement", "Revoked", "StillPending", "drain_reports", "flush_reports", "guard",
]
__version__ = "0.1.0"
