//! The stored approval request: the action, the decision that was made
//! about it, and everything that happened to it since.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Action, Fingerprint, PersonKey, PrincipalRef, Timestamp};

/// Where a request stands.
///
/// `Allowed` and `Released` may still receive one outcome report; `Denied`,
/// `Expired`, `Cancelled` and `Revoked` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Routine: the policy allowed it without approval.
    Allowed,
    /// The policy denied it, or an approver did.
    Denied,
    /// Waiting for approvals.
    Pending,
    /// Every requirement is met; waiting for the requester to release it.
    Approved,
    /// The requester took the approval (single use) and may run the action.
    Released,
    /// Not decided before its deadline, or approved but not released in time.
    Expired,
    /// Withdrawn by the requester.
    Cancelled,
    /// Withdrawn by a policy change or an identity revocation.
    Revoked,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Allowed,
        Status::Denied,
        Status::Pending,
        Status::Approved,
        Status::Released,
        Status::Expired,
        Status::Cancelled,
        Status::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No further transition is possible from a final status.
    pub fn is_final(self) -> bool {
        match self {
            Self::Denied | Self::Expired | Self::Cancelled | Self::Revoked => true,
            Self::Allowed | Self::Pending | Self::Approved | Self::Released => false,
        }
    }

    /// The action may run (an outcome may be reported).
    pub fn may_run(self) -> bool {
        match self {
            Self::Allowed | Self::Released => true,
            Self::Denied | Self::Pending | Self::Approved | Self::Expired | Self::Cancelled | Self::Revoked => false,
        }
    }

    /// Still waiting on people or on the requester.
    pub fn is_open(self) -> bool {
        match self {
            Self::Pending | Self::Approved => true,
            Self::Allowed | Self::Denied | Self::Released | Self::Expired | Self::Cancelled | Self::Revoked => false,
        }
    }
}

/// One approval requirement, from one satisfied permit with approval
/// annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// The id of the policy that imposed it.
    pub policy: String,
    /// Members of any of these groups may approve.
    pub groups: Vec<String>,
    /// Distinct people needed.
    pub quorum: u32,
    /// How long the request may wait for this requirement.
    #[serde(with = "duration_millis")]
    pub timeout: Duration,
    /// How long an approval stays usable before release.
    #[serde(with = "duration_millis")]
    pub valid_for: Duration,
    /// Where people hear of it and what a chat click may do. Absent from
    /// requests stored before it existed, which decode with the default.
    #[serde(default, skip_serializing_if = "Routing::is_empty")]
    pub routing: Routing,
}

impl Requirement {
    pub fn admits(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// How a requirement reaches the people who decide it, from the policy
/// annotations `@slack_channel`, `@teams_channel`, `@escalate_after`,
/// `@escalate_to` and `@step_up`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// The Slack channel the review card goes to, instead of the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
    /// The Teams conversation the review card goes to, instead of the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_channel: Option<String>,
    /// Still pending this long after submission: notify `escalate_to`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_duration_millis")]
    pub escalate_after: Option<Duration>,
    /// A channel (`#name`) or an approver group to notify on escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    /// A chat account alone cannot approve: approving needs a fresh login.
    #[serde(default, skip_serializing_if = "is_false")]
    pub step_up: bool,
}

impl Routing {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoteKind {
    Approve,
    Deny,
}

/// An accepted approval or denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub kind: VoteKind,
    /// The identity that voted.
    pub by: PrincipalRef,
    /// The person behind it.
    pub person: PersonKey,
    /// The approver's groups when they voted: quorum is counted from these.
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub at: Timestamp,
    /// The voter's identity was revoked while the request was open: the
    /// vote stays on record but no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<Timestamp>,
}

/// A note on a request; it does not affect the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub by: PrincipalRef,
    pub text: String,
    pub at: Timestamp,
}

/// How the action went, as the requester reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
}

/// The reported result of running the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_sha256: Option<String>,
    pub reported_at: Timestamp,
}

/// An approval request and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub fingerprint: Fingerprint,
    pub principal: PrincipalRef,
    /// The owner of the requesting agent when it asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub action: Action,
    pub status: Status,
    /// Why the status is what it is, in words.
    pub reason: String,
    /// The policies that determined the decision.
    pub policies: Vec<String>,
    /// The hash of the policy set that decided.
    pub policy_hash: String,
    pub requirements: Vec<Requirement>,
    pub created_at: Timestamp,
    /// Pending requests expire here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
    /// An approval must be released before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_by: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Timestamp>,
    /// When the request reached a final status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    #[serde(default)]
    pub votes: Vec<Vote>,
    #[serde(default)]
    pub comments: Vec<Comment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl Request {
    /// Approvals that count: accepted, and not withdrawn by a revocation of
    /// the identity that gave them.
    pub fn approvals(&self) -> impl Iterator<Item = &Vote> {
        self.votes.iter().filter(|v| v.kind == VoteKind::Approve && v.withdrawn_at.is_none())
    }

    /// The identities whose votes on this request still count.
    pub fn counted_voters(&self) -> impl Iterator<Item = &PrincipalRef> {
        self.votes.iter().filter(|v| v.withdrawn_at.is_none()).map(|v| &v.by)
    }

    /// Distinct people who approved and belong to `requirement`'s groups.
    pub fn approvals_for(&self, requirement: &Requirement) -> usize {
        let mut people: Vec<&PersonKey> =
            self.approvals().filter(|v| requirement.admits(&v.groups)).map(|v| &v.person).collect();
        people.sort();
        people.dedup();
        people.len()
    }

    /// The instant this request moves on by itself: `expires_at` while
    /// pending, `release_by` while approved, none once it can no longer
    /// expire. Expiry (and the stores' deadline index) read this one rule.
    pub fn deadline(&self) -> Option<Timestamp> {
        match self.status {
            Status::Pending => self.expires_at,
            Status::Approved => self.release_by,
            Status::Allowed
            | Status::Denied
            | Status::Released
            | Status::Expired
            | Status::Cancelled
            | Status::Revoked => None,
        }
    }

    /// Every requirement has its quorum of distinct people.
    pub fn quorum_met(&self) -> bool {
        self.quorum_met_for(&self.requirements)
    }

    /// The approvals given meet every one of `requirements` (those a policy
    /// set imposes now, say, rather than those stored with the request).
    pub fn quorum_met_for(&self, requirements: &[Requirement]) -> bool {
        requirements.iter().all(|r| self.approvals_for(r) >= usize::try_from(r.quorum).unwrap_or(usize::MAX))
    }
}

mod duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod optional_duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_stored_before_routing_still_decode() {
        let old = r#"{"policy":"p","groups":["sre"],"quorum":1,"timeout":1000,"valid_for":2000}"#;
        let r: Requirement = serde_json::from_str(old).unwrap();
        assert!(r.routing.is_empty());
        assert_eq!(serde_json::to_string(&r).unwrap(), old, "an empty routing is not written");
        let routed = Requirement {
            routing: Routing {
                slack_channel: Some("#prod".into()),
                escalate_after: Some(Duration::from_secs(600)),
                step_up: true,
                ..Routing::default()
            },
            ..r
        };
        let text = serde_json::to_string(&routed).unwrap();
        assert_eq!(serde_json::from_str::<Requirement>(&text).unwrap(), routed);
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("nope"), None);
    }
}
