"""The API's JSON shapes as typed, read-only records.

Each record keeps the whole JSON it was read from in `raw`, so fields a newer
gateway adds are never lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .errors import ProtocolError

JSON = Any


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"the gateway's answer has no string `{key}`")
    return value


def _opt(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Requirement:
    policy: str
    groups: List[str]
    quorum: int
    approvals: int
    timeout_seconds: int
    valid_for_seconds: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Requirement":
        return cls(
            policy=str(data.get("policy", "")),
            groups=[str(g) for g in data.get("groups", [])],
            quorum=int(data.get("quorum", 0)),
            approvals=int(data.get("approvals", 0)),
            timeout_seconds=int(data.get("timeout_seconds", 0)),
            valid_for_seconds=int(data.get("valid_for_seconds", 0)),
        )


@dataclass(frozen=True)
class Entry:
    """An approval, denial or comment."""

    by: str
    at: str
    comment: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Entry":
        return cls(by=str(data.get("by", "")), at=str(data.get("at", "")), comment=_opt(data, "comment"))


@dataclass(frozen=True)
class Request:
    """A request as `GET /v1/actions/{id}` (and every move) shows it.

    The answer to a submission has fewer fields; those it lacks are empty.
    """

    id: str
    status: str
    reason: str
    fingerprint: str
    kind: str = ""
    resource: str = ""
    payload: JSON = None
    requester: str = ""
    policies: List[str] = field(default_factory=list)
    requirements: List[Requirement] = field(default_factory=list)
    approvals: List[Entry] = field(default_factory=list)
    denials: List[Entry] = field(default_factory=list)
    comments: List[Entry] = field(default_factory=list)
    expires_at: Optional[str] = None
    release_by: Optional[str] = None
    outcome: Optional[Dict[str, Any]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> "Request":
        if not isinstance(data, dict):
            raise ProtocolError("the gateway's answer is not a JSON object")
        given = data.get("approval")
        approval: Dict[str, Any] = given if isinstance(given, dict) else {}
        requirements = data.get("requirements") or approval.get("requirements") or []
        outcome = data.get("outcome")
        return cls(
            id=_str(data, "id"),
            status=_str(data, "status"),
            reason=str(data.get("reason", "")),
            fingerprint=str(data.get("fingerprint", "")),
            kind=str(data.get("kind", "")),
            resource=str(data.get("resource", "")),
            payload=data.get("payload"),
            requester=str(data.get("requester", "")),
            policies=[str(p) for p in data.get("policies", [])],
            requirements=[Requirement.from_json(r) for r in requirements if isinstance(r, dict)],
            approvals=[Entry.from_json(e) for e in data.get("approvals", []) if isinstance(e, dict)],
            denials=[Entry.from_json(e) for e in data.get("denials", []) if isinstance(e, dict)],
            comments=[Entry.from_json(e) for e in data.get("comments", []) if isinstance(e, dict)],
            expires_at=_opt(data, "expires_at") or _opt(approval, "expires_at"),
            release_by=_opt(data, "release_by"),
            outcome=outcome if isinstance(outcome, dict) else None,
            raw=data,
        )

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    @property
    def reused(self) -> bool:
        """A submission with `reuse_open=True` answered with an earlier open request."""
        return self.raw.get("reused") is True

    def describe(self) -> str:
        """One line for a model or a log: the status, who decided, why."""
        text = f"{self.status}: request {self.id}"
        who = self.denials if self.status == "denied" else self.approvals
        if who:
            notes = [e.by + (f" ({e.comment})" if e.comment else "") for e in who]
            text += " by " + ", ".join(notes)
        if self.reason:
            text += f": {self.reason}"
        return text


@dataclass(frozen=True)
class Page:
    actions: List[Request]
    next_cursor: Optional[str]


@dataclass(frozen=True)
class AuditPage:
    events: List[Dict[str, Any]]
    next_after: int
