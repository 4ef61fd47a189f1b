//! Fixtures for tests of the approval loop: a pending request built one
//! way, for this crate's tests and (with the `testing` feature) for the
//! tests of the crates above, so that a change to [`Request`] is made once.
//!
//! This lives here, not in `countersign-testkit`, because this crate's own
//! unit tests use it: a test kit that depends on this crate would hand them
//! a second, incompatible copy of every type.

use std::time::Duration;

use serde_json::Value;

use crate::{Action, Fingerprint, PrincipalRef, Request, Requirement, Status, Timestamp};

/// How long a fixture requirement holds a request before it expires.
pub const TIMEOUT: Duration = Duration::from_secs(1800);
/// How long an approval of a fixture requirement stays valid.
pub const VALID_FOR: Duration = Duration::from_secs(600);

/// An action of `kind` on `resource`, naming no one, with no
/// justification, labels or context.
pub fn action(kind: &str, resource: &str, payload: Value) -> Action {
    Action {
        kind: kind.to_owned(),
        resource: resource.to_owned(),
        payload,
        on_behalf_of: None,
        justification: None,
        labels: Vec::new(),
        context: serde_json::Map::new(),
    }
}

/// `quorum` approvals from `groups` under `policy`, held for [`TIMEOUT`]
/// and valid for [`VALID_FOR`], routed by default.
pub fn requirement(policy: &str, groups: &[&str], quorum: u32) -> Requirement {
    Requirement {
        policy: policy.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        quorum,
        timeout: TIMEOUT,
        valid_for: VALID_FOR,
        routing: Default::default(),
    }
}

/// Request `id`: `principal` asked for `action` at `created_at`, and it
/// waits on `requirements` (the policies that set them matched; it expires
/// at the shortest timeout, never when nothing is required). No owner, no
/// votes yet.
#[expect(clippy::expect_used, reason = "a fixture: an action that cannot be fingerprinted is a broken test")]
pub fn pending(
    id: &str,
    principal: PrincipalRef,
    action: Action,
    requirements: Vec<Requirement>,
    created_at: Timestamp,
) -> Request {
    let fingerprint = Fingerprint::of(&action, &principal).expect("a fixture action has a fingerprint");
    let expires_at = requirements.iter().map(|r| r.timeout).min().map(|timeout| created_at.plus(timeout));
    Request {
        id: id.to_owned(),
        fingerprint,
        principal,
        owner: None,
        action,
        status: Status::Pending,
        reason: "approval required".to_owned(),
        policies: requirements.iter().map(|r| r.policy.clone()).collect(),
        policy_hash: "sha256:00".to_owned(),
        requirements,
        created_at,
        expires_at,
        approved_at: None,
        release_by: None,
        released_at: None,
        closed_at: None,
        votes: Vec::new(),
        comments: Vec::new(),
        outcome: None,
    }
}
