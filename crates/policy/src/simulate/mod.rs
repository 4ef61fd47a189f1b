//! Policy simulation: the actions an audit log recorded, decided again by a
//! candidate policy set, and what would change.
//!
//! The pieces, all without I/O (the caller reads the store and prints):
//! - [`Replayer`] reads stored events in log order and pairs each
//!   `action.submitted` with its `action.decided`, rebuilding the principal
//!   as the log describes it at that point (groups, owner, email from the
//!   `identity.*` events; else the directory the caller hands in);
//! - [`evaluate`] decides a batch with the candidate engine on several
//!   threads; facts are derived again from each recorded payload, in the
//!   SQL dialect the engine was given for the resource, as the gateway does;
//! - [`Report`] compares each recorded decision with the candidate's and
//!   keeps the counts, the per-policy attribution and a few examples.
//!
//! What counts as a change: the outcome (`allowed`, `pending`, `denied`)
//! differs, or both are `pending` but the approver groups or quorums of
//! the requirements differ. Determining policies that differ with the same
//! outcome and requirements (a renamed policy, say) are counted apart and
//! are not a change.

mod log;
mod report;

pub use log::{Malformed, Recorded, ReplayStats, Replayer, MAX_AWAITING};
pub use report::{Candidate, Change, Example, PolicyImpact, Report, Side, MAX_EXAMPLES_PER_CHANGE, PAYLOAD_PREVIEW};

use countersign_audit::AuditEvent;
use countersign_core::events::Parsed;
use serde::Serialize;

use crate::{PolicyEngine, Verdict};

/// What a decision did with an action when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Pending,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Pending => "pending",
            Self::Denied => "denied",
        }
    }
}

/// Reads each event's body into its typed form, on `threads` threads, in
/// order. Parsing is the costly half of reading a log, and needs no state.
pub fn parse_events(events: &[AuditEvent], threads: usize) -> Vec<Parsed> {
    parallel_map(events, threads, AuditEvent::parsed)
}

/// Decides every recorded action with `engine`, on `threads` threads; the
/// answers are in the order of `batch`.
pub fn evaluate(engine: &PolicyEngine, batch: &[Recorded], threads: usize) -> Vec<Candidate> {
    parallel_map(batch, threads, |recorded| {
        let decision = engine.decide(&recorded.principal, &recorded.action);
        let (outcome, requirements) = match decision.verdict {
            Verdict::Allow => (Outcome::Allowed, Vec::new()),
            Verdict::RequireApproval(requirements) => (Outcome::Pending, requirements),
            Verdict::Deny => (Outcome::Denied, Vec::new()),
        };
        Candidate {
            outcome,
            policies: decision.policies,
            requirements,
            reason: decision.reason,
            errors: decision.errors,
        }
    })
}

/// Items below this many are mapped on the calling thread: spawning costs
/// more than it saves.
const SERIAL_BELOW: usize = 256;

/// `items.iter().map(f).collect()`, in contiguous chunks on up to `threads`
/// scoped threads.
fn parallel_map<T: Sync, U: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = threads.max(1);
    if threads == 1 || items.len() < SERIAL_BELOW {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<U>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                // A panic in `f` is a bug; re-raise it where it can be seen
                // rather than return a short answer.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<u32> = (0..10_000).collect();
        for threads in [0, 1, 2, 3, 7] {
            let doubled = parallel_map(&items, threads, |n| n * 2);
            assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>(), "{threads} threads");
        }
        assert!(parallel_map(&[] as &[u32], 2, |n| *n).is_empty());
    }

    /// Facts come from the recorded payload, in the dialect the engine
    /// was given for the resource: the same text is ambiguous on a
    /// resource of unknown dialect and plain PostgreSQL on `pg-db`.
    #[test]
    fn evaluation_derives_facts_in_the_resources_dialect() {
        use std::collections::BTreeMap;
        use std::sync::Arc;
        use std::time::Duration;

        use countersign_core::{Action, Principal, PrincipalKind, Timestamp};
        use serde_json::json;

        let text = "permit(principal, action, resource);\n\
                    @id(\"ambiguous\") forbid(principal, action, resource)\n\
                    when { context.facts has sql && context.facts.sql.dialect_ambiguous };\n\
                    @id(\"ddl\") @approvers(\"dba\") permit(principal, action, resource)\n\
                    when { context.facts has sql && context.facts.sql.is_ddl };";
        let engine = PolicyEngine::from_sources(
            vec![crate::PolicySource { file: "t.cedar".into(), text: text.into() }],
            None,
            crate::Defaults { timeout: Duration::from_secs(60), valid_for: Duration::from_secs(60) },
        )
        .unwrap()
        .with_sql_dialects(Arc::new(BTreeMap::from([("pg-db".to_owned(), "postgres".to_owned())])));
        let recorded = |resource: &str| Recorded {
            seq: 1,
            time: Timestamp(0),
            id: resource.into(),
            principal: Principal {
                kind: PrincipalKind::Agent,
                name: "bot".into(),
                email: None,
                owner: None,
                groups: vec![],
            },
            principal_known: true,
            action: Action {
                kind: "sql.execute".into(),
                resource: resource.into(),
                payload: json!({"statement": "SELECT 'a\\'; DROP TABLE users; -- '"}),
                on_behalf_of: None,
                justification: None,
                labels: vec![],
                context: serde_json::Map::new(),
            },
            outcome: Outcome::Allowed,
            policies: vec![],
            requirements: vec![],
            policy_hash: String::new(),
        };
        let batch: Vec<Recorded> = (0..600).map(|i| recorded(if i % 2 == 0 { "pg-db" } else { "other-db" })).collect();
        let candidates = evaluate(&engine, &batch, 2);
        assert_eq!(candidates.len(), batch.len());
        for (i, candidate) in candidates.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(candidate.outcome, Outcome::Pending, "{candidate:?}");
                assert_eq!(candidate.requirements[0].groups, ["dba"]);
            } else {
                assert_eq!(candidate.outcome, Outcome::Denied, "{candidate:?}");
                assert_eq!(candidate.policies, ["ambiguous"]);
            }
        }
    }
}
