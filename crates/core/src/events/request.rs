//! The events of a request's life: submission and decision, votes, release
//! and outcome, the moves that close it, comments, escalations, and refused
//! moves. [`crate::lifecycle`] returns most of them with the move itself.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Event, RefusalFields};
use crate::lifecycle::{Assurance, Refusal};
use crate::{Fingerprint, Outcome, PersonKey, Request, Requirement, Status, Timestamp, VoteKind};

/// `action.submitted`: the action exactly as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    pub id: String,
    pub fingerprint: Fingerprint,
    pub kind: String,
    pub resource: String,
    pub payload: Value,
    pub on_behalf_of: Option<String>,
    pub justification: Option<String>,
    pub labels: Vec<String>,
    pub context: Map<String, Value>,
}

impl Submitted {
    /// The submission of `request`.
    pub fn of(request: &Request) -> Self {
        let action = &request.action;
        Self {
            id: request.id.clone(),
            fingerprint: request.fingerprint.clone(),
            kind: action.kind.clone(),
            resource: action.resource.clone(),
            payload: action.payload.clone(),
            on_behalf_of: action.on_behalf_of.clone(),
            justification: action.justification.clone(),
            labels: action.labels.clone(),
            context: action.context.clone(),
        }
    }
}

/// `action.decided`: what the policy set in force decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub id: String,
    /// `allowed`, `pending` or `denied`.
    pub status: Status,
    pub reason: String,
    pub policies: Vec<String>,
    pub errors: Vec<String>,
    pub policy_hash: String,
    pub requirements: Vec<Requirement>,
    pub expires_at: Option<Timestamp>,
}

/// `approval.accepted` and `denial.accepted`: an accepted vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteAccepted {
    pub id: String,
    pub fingerprint: Fingerprint,
    pub person: PersonKey,
    pub groups: Vec<String>,
    pub comment: Option<String>,
    /// How the voter signed in; absent from votes recorded before step-up
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
}

/// How a voter signed in, as the audit record says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Login {
    /// A token, an API key, a chat click.
    Credential,
    /// A web session, with when the identity provider authenticated them.
    IdpSession { auth_time: Timestamp },
}

impl From<Assurance> for Login {
    fn from(assurance: Assurance) -> Self {
        match assurance {
            Assurance::Credential => Self::Credential,
            Assurance::IdpLogin { auth_time, .. } => Self::IdpSession { auth_time },
        }
    }
}

/// `action.approved` and `action.denied`: a vote decided the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concluded {
    pub id: String,
    pub reason: String,
    /// When an approval stops being usable (`null` for a denial, unless it
    /// vetoed an approval).
    pub release_by: Option<Timestamp>,
}

/// `action.released`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub id: String,
    pub fingerprint: Fingerprint,
}

/// `outcome.reported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReported {
    pub id: String,
    pub fingerprint: Fingerprint,
    pub outcome: Outcome,
}

/// `action.cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    pub id: String,
}

/// `action.expired` and `action.revoked`: the request closed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub id: String,
    pub reason: String,
}

/// `votes.withdrawn`: the votes of `by` on the request stopped counting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VotesWithdrawn {
    pub id: String,
    /// `user:NAME` or `agent:NAME`.
    pub by: String,
}

/// `action.escalated`: a requirement still pending past `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalated {
    pub id: String,
    /// The policy that imposed the requirement.
    pub policy: String,
    /// The `@escalate_to` target.
    pub to: String,
    /// The `@escalate_after` delay, e.g. `10m`.
    pub after: String,
}

/// `comment.added`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentAdded {
    pub id: String,
    pub text: String,
}

/// `attempt.refused`: a move the state machine refused, or a login the
/// console's form refused (a bounded refusal record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttemptRefused {
    Move(MoveRefused),
    Record(RefusalFields),
}

/// A move on a request that the state machine refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Strict, so that a refusal record never reads as a move.
#[serde(deny_unknown_fields)]
pub struct MoveRefused {
    pub id: String,
    pub attempt: Attempt,
    /// [`Refusal::code`].
    pub code: String,
    /// The refusal, in words.
    pub message: String,
}

/// What the refused caller attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attempt {
    Approve,
    Deny,
    Cancel,
    Release,
    Outcome,
}

impl From<VoteKind> for Attempt {
    fn from(kind: VoteKind) -> Self {
        match kind {
            VoteKind::Approve => Self::Approve,
            VoteKind::Deny => Self::Deny,
        }
    }
}

impl Event {
    /// `attempt.refused` for a move on request `id`.
    pub fn refused(id: &str, attempt: Attempt, refusal: &Refusal) -> Self {
        Self::AttemptRefused(AttemptRefused::Move(MoveRefused {
            id: id.to_owned(),
            attempt,
            code: refusal.code().to_owned(),
            message: refusal.to_string(),
        }))
    }
}
