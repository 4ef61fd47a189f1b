//! What an evidence pack holds: plain data, serialised as the JSON format
//! and read by the HTML renderer.

use std::collections::BTreeMap;

use countersign_core::{Outcome, Timestamp};
use serde::Serialize;

use crate::controls::ControlEvidence;

/// One evidence pack.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report format's version, for readers of the JSON.
    pub format: &'static str,
    pub period: Period,
    pub generated_at: Timestamp,
    /// The whole log's verification (not only the period's events: a
    /// period's events are only as good as the chain they hang from).
    pub verification: Verification,
    pub totals: Totals,
    /// Every privileged action submitted in the period, oldest first.
    pub actions: Vec<ActionRecord>,
    /// Actions left out of `actions` past the report's size bound
    /// (`Collector::with_max_actions`); they still count in `totals`.
    pub actions_omitted: u64,
    pub segregation: Segregation,
    pub refusals: Refusals,
    /// From submission to the decision that ended the wait (approved,
    /// denied, expired, cancelled or revoked), for actions that waited.
    pub time_to_decision: Distribution,
    pub closures: Vec<Closure>,
    pub identity_revocations: Vec<IdentityRevocation>,
    pub policy_changes: Vec<PolicyChange>,
    pub controls: Vec<ControlEvidence>,
}

/// The period covered: events at or after `since` and before `until`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Period {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Period {
    pub fn contains(&self, time: Timestamp) -> bool {
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time < u)
    }
}

/// What checking the log found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The hash chain verified from the first event to the last.
    pub chain_ok: bool,
    pub events: u64,
    pub head_seq: u64,
    pub head_hash: String,
    /// Where and why the chain broke.
    pub error: Option<String>,
    /// Events this version could not read (a newer version wrote them).
    pub unreadable_events: u64,
    /// The signed checkpoint the log was checked against, if the caller
    /// had one.
    pub checkpoint: Option<CheckpointEvidence>,
}

/// A signed checkpoint and what checking it against the log found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointEvidence {
    /// The signed note, as stored.
    pub note: String,
    /// The verifier key it was checked with (a C2SP vkey).
    pub key: Option<String>,
    /// The signature verified and the log's Merkle root at the checkpoint's
    /// size equals the checkpoint's root.
    pub ok: bool,
    /// What was checked, or why it failed.
    pub detail: String,
}

/// Counts over the period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub submitted: u64,
    /// Decided by policy alone.
    pub allowed: u64,
    pub held: u64,
    pub denied_by_policy: u64,
    pub approved: u64,
    pub denied_by_approver: u64,
    pub released: u64,
    pub expired: u64,
    pub revoked: u64,
    pub cancelled: u64,
    pub outcomes_succeeded: u64,
    pub outcomes_failed: u64,
}

/// One privileged action, as the log tells it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    pub id: String,
    pub seq: u64,
    pub submitted_at: Timestamp,
    /// The identity that submitted it (`agent:NAME` or `user:NAME`).
    pub requester: String,
    pub on_behalf_of: Option<String>,
    pub kind: String,
    pub resource: String,
    pub fingerprint: String,
    pub justification: Option<String>,
    /// `allowed`, `pending` or `denied`, as the policy decided.
    pub decision: Option<String>,
    pub decision_reason: Option<String>,
    pub policies: Vec<String>,
    /// The policy set's hash at the decision.
    pub policy_hash: Option<String>,
    /// `group×quorum` per requirement, e.g. `dba×2`.
    pub requirements: Vec<String>,
    pub approvals: Vec<VoteRecord>,
    pub denials: Vec<VoteRecord>,
    /// Where the request ended: approved, denied, released, expired,
    /// revoked, cancelled; `None` while it waits.
    pub state: Option<String>,
    pub concluded_at: Option<Timestamp>,
    pub released_at: Option<Timestamp>,
    pub outcome: Option<Outcome>,
}

/// An accepted vote.
#[derive(Debug, Clone, Serialize)]
pub struct VoteRecord {
    /// The identity that voted (the event's actor).
    pub by: String,
    /// The person behind it (lower-cased email).
    pub person: String,
    pub groups: Vec<String>,
    pub at: Timestamp,
    /// `credential` or `idp_session`.
    pub login: Option<String>,
}

/// Segregation of duties, recomputed from the log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Segregation {
    /// Accepted approvals and denials checked.
    pub votes_checked: u64,
    /// Approved actions whose approvers were all distinct people.
    pub approved_with_distinct_approvers: u64,
    pub violations: Vec<Violation>,
}

/// A vote that segregation of duties forbids.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub id: String,
    pub seq: u64,
    pub by: String,
    pub person: String,
    /// What the vote broke.
    pub rule: String,
}

/// Refused attempts in the period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refusals {
    pub total: u64,
    /// Votes refused because the voter asked for the action, owns the
    /// agent that did, or is the person it acts for.
    pub self_approval: u64,
    /// Calls refused before any identity was established: bad, expired or
    /// revoked tokens and keys.
    pub bad_credentials: u64,
    /// Chat callbacks refused: forged, stale or replayed signatures, bad
    /// tokens.
    pub integration: u64,
    /// Refused by the rate limit.
    pub rate_limited: u64,
    /// Every refusal by `event kind/code`.
    pub by_code: BTreeMap<String, u64>,
}

/// A distribution of durations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Distribution {
    pub count: u64,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub max_ms: Option<i64>,
    pub buckets: Vec<Bucket>,
}

/// One bar of a distribution.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub label: &'static str,
    /// Durations below this many milliseconds (the last bucket has none).
    pub below_ms: Option<i64>,
    pub count: u64,
}

/// A request that expired or was revoked.
#[derive(Debug, Clone, Serialize)]
pub struct Closure {
    pub id: String,
    /// `expired` or `revoked`.
    pub kind: &'static str,
    pub at: Timestamp,
    pub reason: String,
}

/// A user or agent revoked.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityRevocation {
    /// `user:NAME` or `agent:NAME`.
    pub identity: String,
    pub by: String,
    pub at: Timestamp,
}

/// A policy set put in force, or refused.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub at: Timestamp,
    pub seq: u64,
    /// `loaded`, `adopted` or `load_failed`.
    pub change: &'static str,
    pub hash: Option<String>,
    pub by: String,
}
