//! Escalation: a requirement annotated `@escalate_after("10m")` and
//! `@escalate_to("…")` whose request is still pending by then gets one
//! `action.escalated` audit event; the outbox then notifies the target
//! like any other change, durably and with retries.

use countersign_audit::AuditDraft;
use countersign_core::clock::format_duration;
use countersign_core::events::{Escalated, Event};
use countersign_core::{Request, Status, Timestamp};
use countersign_gateway::kv::Lease;
use countersign_gateway::AppState;
use countersign_store::{Cursor, RequestFilter, StoreError};

use crate::outbox::{OutboxOptions, KV};

/// Pending requests read per page.
const PAGE: usize = 500;

/// Checks pending requests every `options.escalation_tick` until shutdown.
pub async fn run(state: AppState, options: OutboxOptions) {
    let mut lease = Lease::new(state.key_values(KV), state.clock(), "lease:escalation", options.lease);
    loop {
        tokio::time::sleep(options.escalation_tick).await;
        if state.is_shutting_down() {
            return;
        }
        if !lease.hold().await {
            continue;
        }
        if let Err(e) = scan(&state, state.now()).await {
            tracing::warn!(error = %e, "escalation check failed; will retry");
        }
    }
}

/// Escalates every requirement that is due at `now` and not yet escalated;
/// returns how many. Each is escalated once, even across processes: the
/// claim is a compare-and-set in the key-value area.
pub async fn scan(state: &AppState, now: Timestamp) -> Result<usize, StoreError> {
    // Every pending request, page by page: a flood of newer ones must not
    // keep an older one from escalating.
    let mut filter = RequestFilter { status: Some(Status::Pending), limit: PAGE, ..RequestFilter::default() };
    let mut escalated = 0;
    loop {
        let page = state.requests(&filter).await?;
        let last = page.len() < PAGE;
        filter.after = page.last().map(Cursor::after);
        escalated += escalate_due(state, page, now).await?;
        if last || filter.after.is_none() {
            return Ok(escalated);
        }
    }
}

/// Escalates the due requirements of `pending`; returns how many.
async fn escalate_due(state: &AppState, pending: Vec<Request>, now: Timestamp) -> Result<usize, StoreError> {
    let mut escalated = 0;
    for request in pending {
        for requirement in &request.requirements {
            let (Some(after), Some(to)) = (requirement.routing.escalate_after, &requirement.routing.escalate_to) else {
                continue;
            };
            let met = request.approvals_for(requirement) >= usize::try_from(requirement.quorum).unwrap_or(usize::MAX);
            if met || request.created_at.plus(after) > now {
                continue;
            }
            let key = format!("escalated:{}:{}", request.id, requirement.policy);
            if !state.key_values(KV).compare_and_set(&key, None, Some(now.to_rfc3339())).await? {
                continue;
            }
            let escalated_event = Escalated {
                id: request.id.clone(),
                policy: requirement.policy.clone(),
                to: to.clone(),
                after: format_duration(after),
            };
            state.append_audit(vec![AuditDraft::new("system", Event::ActionEscalated(escalated_event))]).await?;
            escalated += 1;
        }
    }
    Ok(escalated)
}
