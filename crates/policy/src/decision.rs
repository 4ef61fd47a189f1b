//! What a decision says, and how Cedar's answer becomes one.
//!
//! Cedar's rule is default deny, and a satisfied `forbid` wins over any
//! `permit`. On top of it:
//! - **fail closed**: if any `forbid` policy raised an error while being
//!   evaluated, the verdict is [`Verdict::Deny`], because a broken forbid must
//!   not let through what it was written to stop. An error in a `permit` only
//!   means that permit is not satisfied;
//! - **approvals**: an allowed action needs approval when at least one
//!   satisfied permit carries `@approvers` (see [`crate::annotations`]).

use std::collections::HashMap;

use cedar_policy::{AuthorizationError, Effect, Response};
use countersign_core::Requirement;

use crate::annotations::Approval;

/// The outcome of evaluating one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed at once: no satisfied permit carries approval annotations.
    Allow,
    /// Allowed once every requirement is met (one per satisfied annotated
    /// permit, sorted by policy id).
    RequireApproval(Vec<Requirement>),
    /// Denied: a forbid is satisfied, a forbid failed to evaluate, or no
    /// permit is satisfied.
    Deny,
}

/// A verdict with the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Ids of the determining policies, sorted: the satisfied permits for an
    /// allow (with or without approval); the satisfied forbids for a deny;
    /// the forbids that failed to evaluate for a fail-closed deny; empty for
    /// the default deny.
    pub policies: Vec<String>,
    /// Evaluation errors as ``policy `id`: message``, sorted.
    pub errors: Vec<String>,
    /// A one-line reason for people, e.g. ``allowed by `routine-nonprod` ``.
    pub reason: String,
    /// The hash of the policy set that decided.
    pub policy_hash: String,
}

impl Decision {
    /// A deny for a request that could not be evaluated at all.
    pub(crate) fn unevaluable(message: String, policy_hash: &str) -> Self {
        Self {
            verdict: Verdict::Deny,
            policies: Vec::new(),
            reason: format!("denied: the request could not be evaluated ({message})"),
            errors: vec![message],
            policy_hash: policy_hash.to_owned(),
        }
    }
}

/// What the engine knows about each policy that Cedar does not.
#[derive(Debug, Clone)]
pub(crate) struct PolicyFacts {
    pub(crate) effect: Effect,
    pub(crate) approval: Option<Approval>,
}

/// Turns Cedar's response into a [`Decision`].
pub(crate) fn interpret(response: &Response, facts: &HashMap<String, PolicyFacts>, policy_hash: &str) -> Decision {
    let mut errors = Vec::new();
    let mut failed_forbids = Vec::new();
    for error in response.diagnostics().errors() {
        match error {
            AuthorizationError::PolicyEvaluationError(e) => {
                let id: &str = e.policy_id().as_ref();
                errors.push(format!("policy `{id}`: {}", crate::source::one_line(&e.inner().to_string())));
                // An unknown id cannot happen; treating it as a forbid keeps
                // the fail-closed promise even so.
                let is_forbid = facts.get(id).is_none_or(|f| match f.effect {
                    Effect::Forbid => true,
                    Effect::Permit => false,
                });
                if is_forbid {
                    failed_forbids.push(id.to_owned());
                }
            }
        }
    }
    errors.sort();
    failed_forbids.sort();
    failed_forbids.dedup();
    let mut determining: Vec<String> =
        response.diagnostics().reason().map(|id| AsRef::<str>::as_ref(id).to_owned()).collect();
    determining.sort();

    let decision = |verdict, policies, reason| Decision {
        verdict,
        policies,
        errors: errors.clone(),
        reason,
        policy_hash: policy_hash.to_owned(),
    };
    match response.decision() {
        cedar_policy::Decision::Deny if !determining.is_empty() => {
            let reason = format!("denied by {}", quoted(&determining));
            decision(Verdict::Deny, determining, reason)
        }
        cedar_policy::Decision::Deny | cedar_policy::Decision::Allow if !failed_forbids.is_empty() => {
            let noun = if failed_forbids.len() == 1 { "policy" } else { "policies" };
            let reason = format!("denied: forbid {noun} {} failed to evaluate (fail closed)", quoted(&failed_forbids));
            decision(Verdict::Deny, failed_forbids, reason)
        }
        cedar_policy::Decision::Deny => {
            let reason = match errors.len() {
                0 => "no policy permits this action".to_owned(),
                1 => "no policy permits this action (1 policy failed to evaluate)".to_owned(),
                n => format!("no policy permits this action ({n} policies failed to evaluate)"),
            };
            decision(Verdict::Deny, Vec::new(), reason)
        }
        cedar_policy::Decision::Allow => {
            let requirements: Vec<Requirement> = determining
                .iter()
                .filter_map(|id| facts.get(id)?.approval.as_ref().map(|a| a.requirement(id)))
                .collect();
            if requirements.is_empty() {
                let reason = format!("allowed by {}", quoted(&determining));
                decision(Verdict::Allow, determining, reason)
            } else {
                let reason = format!("needs approval: {}", describe(&requirements));
                decision(Verdict::RequireApproval(requirements), determining, reason)
            }
        }
    }
}

fn quoted(ids: &[String]) -> String {
    ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
}

/// E.g. ``"`prod-needs-sre` (1 of sre); `pii` (2 of dba)"``.
fn describe(requirements: &[Requirement]) -> String {
    requirements
        .iter()
        .map(|r| format!("`{}` ({} of {})", r.policy, r.quorum, r.groups.join(" or ")))
        .collect::<Vec<_>>()
        .join("; ")
}
