"""What every adapter tells the model, and how a tool call becomes an action."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ActionBlocked, CountersignError, GatewayUnavailable
from ..types import Request


def tool_payload(tool: str, arguments: Any) -> Any:
    """A tool call as an action payload: the approval binds to the tool and its exact arguments."""
    if isinstance(arguments, str):
        arguments = json.loads(arguments or "{}")
    return json.loads(json.dumps({"tool": tool, "arguments": arguments}, allow_nan=False))


def blocked_message(request: Request) -> str:
    """What the model reads when a call was not cleared: the status, who, why."""
    if request.status in ("pending", "approved"):
        return (f"countersign has not approved this action (request {request.id} is {request.status}; "
                "nobody released it through the gateway). It did not run.")
    who = request.denials if request.status == "denied" else []
    by = ", ".join(e.by + (f" ({e.comment})" if e.comment else "") for e in who)
    text = f"countersign {request.status} this action (request {request.id})"
    if by:
        text += f"; by {by}"
    if request.reason:
        text += f"; {request.reason}"
    if request.policies:
        text += f" (policies: {', '.join(request.policies)})"
    return text + ". It did not run. Do not retry it unchanged."


def error_message(error: CountersignError) -> str:
    if isinstance(error, ActionBlocked):
        return blocked_message(error.request)
    if isinstance(error, GatewayUnavailable):
        return "countersign could not be reached, so this action did not run (fail closed)."
    return f"countersign did not clear this action, so it did not run: {error}"


def pending_message(request: Request) -> str:
    groups = sorted({g for r in request.requirements for g in r.groups})
    asked = f" from {' or '.join(groups)}" if groups else ""
    return f"waiting for approval{asked} (countersign request {request.id})"

