//! What the outbox delivers: the changes of requests, read back from the
//! audit log, where each was committed together with the change itself.

use countersign_audit::AuditEvent;
use countersign_core::Timestamp;
use serde_json::Value;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Decided: waits for people.
    Pending,
    /// Decided: routine.
    Allowed,
    /// Someone approved (the request may still wait for more).
    Approval,
    /// Someone denied.
    Denial,
    Comment,
    Approved,
    Denied,
    Released,
    Expired,
    Cancelled,
    Revoked,
    Outcome,
    /// Still pending past a requirement's `@escalate_after`.
    Escalated,
}

/// What a chat channel does with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardMove {
    /// Post the card where it is not yet, update it where it is, and tell
    /// the requester's owner once the request is decided.
    Show,
    /// Notify the requirement's escalation target.
    Escalate,
}

impl ChangeKind {
    /// What a chat channel does with this change: nothing for a routine
    /// decision, which has no card.
    pub fn card_move(self) -> Option<CardMove> {
        match self {
            Self::Escalated => Some(CardMove::Escalate),
            Self::Allowed => None,
            Self::Pending
            | Self::Approval
            | Self::Denial
            | Self::Comment
            | Self::Approved
            | Self::Denied
            | Self::Released
            | Self::Expired
            | Self::Cancelled
            | Self::Revoked
            | Self::Outcome => Some(CardMove::Show),
        }
    }

    pub const ALL: [ChangeKind; 13] = [
        Self::Pending,
        Self::Allowed,
        Self::Approval,
        Self::Denial,
        Self::Comment,
        Self::Approved,
        Self::Denied,
        Self::Released,
        Self::Expired,
        Self::Cancelled,
        Self::Revoked,
        Self::Outcome,
        Self::Escalated,
    ];

    /// The name webhooks filter on and CloudEvents types end with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Allowed => "allowed",
            Self::Approval => "approval",
            Self::Denial => "denial",
            Self::Comment => "comment",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Revoked => "revoked",
            Self::Outcome => "outcome",
            Self::Escalated => "escalated",
        }
    }

    /// The change shows on a review card (a chat message must be updated).
    pub fn shows_on_card(self) -> bool {
        self.card_move() == Some(CardMove::Show)
    }
}

/// One change of one request, at its place in the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The audit sequence number: the outbox cursor.
    pub seq: u64,
    /// The audit event's hash: a stable, unique delivery id.
    pub hash: String,
    pub kind: ChangeKind,
    pub request_id: String,
    /// `user:NAME`, `agent:NAME` or `system`.
    pub actor: String,
    pub time: Timestamp,
    /// The audit event's body.
    pub details: Value,
}

/// The change an audit event records, if it records one. Refused attempts,
/// identity and policy events, and the channels' own records are not
/// changes of a request.
pub fn classify(event: &AuditEvent) -> Option<Change> {
    let details = event.body_value();
    let kind = match event.kind.as_str() {
        "action.decided" => match details.get("status").and_then(Value::as_str) {
            Some("pending") => ChangeKind::Pending,
            Some("allowed") => ChangeKind::Allowed,
            Some("denied") => ChangeKind::Denied,
            Some(_) | None => return None,
        },
        "approval.accepted" => ChangeKind::Approval,
        "denial.accepted" => ChangeKind::Denial,
        "comment.added" => ChangeKind::Comment,
        "action.approved" => ChangeKind::Approved,
        "action.denied" => ChangeKind::Denied,
        "action.released" => ChangeKind::Released,
        "action.expired" => ChangeKind::Expired,
        "action.cancelled" => ChangeKind::Cancelled,
        "action.revoked" => ChangeKind::Revoked,
        "outcome.reported" => ChangeKind::Outcome,
        "action.escalated" => ChangeKind::Escalated,
        _ => return None,
    };
    let request_id = details.get("id").and_then(Value::as_str)?.to_owned();
    Some(Change {
        seq: event.seq,
        hash: event.hash.clone(),
        kind,
        request_id,
        actor: event.actor.clone(),
        time: event.time,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, body: &str) -> AuditEvent {
        AuditEvent {
            seq: 7,
            time: Timestamp(1),
            actor: "system".into(),
            kind: kind.into(),
            body: body.into(),
            prev_hash: String::new(),
            hash: "h".into(),
        }
    }

    #[test]
    fn request_changes_are_recognised() {
        let c = classify(&event("action.decided", r#"{"id":"r1","status":"pending"}"#)).unwrap();
        assert_eq!((c.kind, c.request_id.as_str(), c.seq), (ChangeKind::Pending, "r1", 7));
        assert_eq!(classify(&event("action.expired", r#"{"id":"r1"}"#)).unwrap().kind, ChangeKind::Expired);
        assert!(classify(&event("attempt.refused", r#"{"id":"r1"}"#)).is_none());
        assert!(classify(&event("webhook.delivery", r#"{"id":"r1"}"#)).is_none());
        assert!(classify(&event("action.approved", r#"{"no_id":1}"#)).is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ChangeKind::ALL.len());
    }
}
