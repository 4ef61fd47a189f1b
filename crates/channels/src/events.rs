//! What the outbox delivers: the changes of requests, read back from the
//! audit log, where each was committed together with the change itself.
//!
//! [`classify`] reads every stored event into its typed form and decides,
//! for each kind, whether it is a change of a request: a new kind of event
//! does not compile here until that is decided.

use countersign_audit::AuditEvent;
use countersign_core::events::{Event, Parsed};
use countersign_core::{Status, Timestamp};
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
    let known = match event.parsed() {
        Parsed::Known(known) => known,
        // A kind this version does not write (a newer replica's), or a body
        // not in the shape it writes: not a change it knows how to show.
        Parsed::Unknown(_) => return None,
    };
    let (kind, request_id) = match known {
        Event::ActionDecided(decided) => match decided.status {
            Status::Pending => (ChangeKind::Pending, decided.id),
            Status::Allowed => (ChangeKind::Allowed, decided.id),
            Status::Denied => (ChangeKind::Denied, decided.id),
            // A decision is never one of these.
            Status::Approved | Status::Released | Status::Expired | Status::Cancelled | Status::Revoked => return None,
        },
        Event::ApprovalAccepted(vote) => (ChangeKind::Approval, vote.id),
        Event::DenialAccepted(vote) => (ChangeKind::Denial, vote.id),
        Event::CommentAdded(comment) => (ChangeKind::Comment, comment.id),
        Event::ActionApproved(concluded) => (ChangeKind::Approved, concluded.id),
        Event::ActionDenied(concluded) => (ChangeKind::Denied, concluded.id),
        Event::ActionReleased(released) => (ChangeKind::Released, released.id),
        Event::ActionExpired(closed) => (ChangeKind::Expired, closed.id),
        Event::ActionCancelled(cancelled) => (ChangeKind::Cancelled, cancelled.id),
        Event::ActionRevoked(closed) => (ChangeKind::Revoked, closed.id),
        Event::OutcomeReported(reported) => (ChangeKind::Outcome, reported.id),
        Event::ActionEscalated(escalated) => (ChangeKind::Escalated, escalated.id),
        // The submission shows with its decision, which follows it; a
        // withdrawn vote shows when it changes the decision (a revocation).
        Event::ActionSubmitted(_)
        | Event::VotesWithdrawn(_)
        | Event::AttemptRefused(_)
        | Event::PolicyLoaded(_)
        | Event::PolicyLoadFailed(_)
        | Event::PolicyAdopted(_)
        | Event::UserCreated(_)
        | Event::UserUpdated(_)
        | Event::UserRevoked(_)
        | Event::AgentCreated(_)
        | Event::AgentRevoked(_)
        | Event::IdentityBound(_)
        | Event::IdentityBindingRefused(_)
        | Event::ConsoleLogin(_)
        | Event::ConsoleLogout(_)
        | Event::RequestRejected(_)
        | Event::IntegrationRejected(_)
        | Event::RefusalsAggregated(_)
        | Event::McpUpstreamMessageDropped(_)
        | Event::ChannelStarted(_)
        | Event::ChannelClick(_)
        | Event::WebhookDelivery(_)
        | Event::DatabaseSessionOpened(_)
        | Event::DatabaseSessionClosed(_) => return None,
    };
    Some(Change {
        seq: event.seq,
        hash: event.hash.clone(),
        kind,
        request_id,
        actor: event.actor.clone(),
        time: event.time,
        details: event.body_value(),
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

    const DECIDED: &str = r#"{"errors":[],"expires_at":null,"id":"r1","policies":["p"],"policy_hash":"sha256:00","reason":"needs sre","requirements":[],"status":"pending"}"#;

    #[test]
    fn request_changes_are_recognised() {
        let c = classify(&event("action.decided", DECIDED)).unwrap();
        assert_eq!((c.kind, c.request_id.as_str(), c.seq), (ChangeKind::Pending, "r1", 7));
        assert_eq!(c.details, serde_json::from_str::<Value>(DECIDED).unwrap(), "details are the body as stored");
        let expired = r#"{"id":"r1","reason":"the deadline passed without a decision"}"#;
        assert_eq!(classify(&event("action.expired", expired)).unwrap().kind, ChangeKind::Expired);
        let refused = r#"{"attempt":"approve","code":"self_approval","id":"r1","message":"no"}"#;
        assert!(classify(&event("attempt.refused", refused)).is_none());
        assert!(classify(&event("attempt.refused", r#"{"id":"r1"}"#)).is_none());
        assert!(classify(&event("webhook.delivery", r#"{"id":"r1"}"#)).is_none());
        assert!(classify(&event("action.approved", r#"{"no_id":1}"#)).is_none());
    }

    #[test]
    fn events_this_version_cannot_read_are_no_change() {
        assert!(classify(&event("action.renamed", r#"{"id":"r1"}"#)).is_none(), "an unknown kind");
        assert!(classify(&event("action.expired", r#"{"id":"r1"}"#)).is_none(), "a body not in the written shape");
        assert!(classify(&event("action.expired", "not json")).is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ChangeKind::ALL.len());
    }
}
