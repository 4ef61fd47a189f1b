//! The audit log read back: every event, checked against the chain or
//! not, the bodies of one kind, and refusals however they were recorded.

use countersign_audit::{AuditEvent, ChainVerifier};
use countersign_gateway::AppState;
use countersign_store::Store;
use serde_json::Value;

/// More events than any test writes.
const ALL: usize = 100_000;

/// Every audit event, in order.
pub async fn events(store: &dyn Store) -> Vec<AuditEvent> {
    store.audit_events(0, ALL).await.unwrap()
}

/// Every audit event, after checking the chain verifies.
pub async fn verified(store: &dyn Store) -> Vec<AuditEvent> {
    checked(events(store).await)
}

/// Every audit event a gateway reads back, after checking the chain verifies.
pub async fn verified_through(state: &AppState) -> Vec<AuditEvent> {
    checked(state.audit_events(0, ALL).await.unwrap())
}

fn checked(events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    let mut verifier = ChainVerifier::new();
    for e in &events {
        verifier.push(e).unwrap();
    }
    events
}

/// The bodies of the audit events of `kind`, in order.
pub async fn bodies(store: &dyn Store, kind: &str) -> Vec<Value> {
    events(store).await.into_iter().filter(|e| e.kind == kind).map(|e| e.body_value()).collect()
}

/// How many refusals of `kind` (by `actor`, if given) were audited after
/// flushing every count, in a log that verifies: those recorded one by one, plus those counted
/// into `refusals.aggregated` events (the gateway records the first few
/// from a source in a window and counts the rest).
pub async fn refusals_accounted(state: &AppState, kind: &str, actor: Option<&str>) -> u64 {
    state.flush_refusals(true).await;
    let events = verified_through(state).await;
    let by = |e: &&AuditEvent| actor.is_none_or(|a| e.actor == a);
    let recorded = events.iter().filter(by).filter(|e| e.kind == kind).count() as u64;
    let counted: u64 = events
        .iter()
        .filter(by)
        .filter(|e| e.kind == "refusals.aggregated")
        .map(|e| e.body_value()["count"].as_u64().unwrap())
        .sum();
    recorded + counted
}
