//! Release and record: what the requester does with its request — cancel
//! it, take its approval (once), and report how the action went.

use countersign_core::events::Attempt;
use countersign_core::lifecycle::{self, settle_deadline};
use countersign_core::{Fingerprint, Moved, Outcome, Principal, PrincipalRef, Refusal, Request, Status, Timestamp};
use countersign_policy::Verdict;
use countersign_store::Update;

use crate::error::GatewayError;
use crate::review::refused_event;
use crate::state::drafts;
use crate::AppState;

impl AppState {
    /// The requester withdraws its request.
    pub async fn cancel(&self, caller: &Principal, id: &str) -> Result<Request, GatewayError> {
        self.visible_request(caller, id).await?;
        let by = caller.reference();
        let now = self.now();
        let updated = self
            .update(
                id,
                Box::new(move |current| {
                    if let Some(expired) = settle_deadline(current, now) {
                        return refuse_after_expiry(&by.to_string(), current, expired, Attempt::Cancel);
                    }
                    match lifecycle::cancel(current, &by, now) {
                        Ok(cancelled) => {
                            Update { events: drafts(cancelled.events), save: Some(cancelled.request), result: Ok(()) }
                        }
                        Err(refusal) => refuse(&by.to_string(), &current.id, Attempt::Cancel, refusal),
                    }
                }),
            )
            .await?;
        updated.result.map_err(GatewayError::Refused)?;
        Ok(updated.request)
    }

    /// The requester takes its approval: single-use, within `valid_for`, and
    /// only if the policy set in force still permits the action with the
    /// approvals given. Otherwise the request is revoked.
    ///
    /// The policy's verdict depends only on the requester and the action,
    /// which never change, so it is computed before the transaction; whether
    /// the approvals meet what it requires is judged on the request as it is
    /// inside the transaction. (Judging it on an earlier read revoked an
    /// approval that landed in between.)
    pub async fn release(&self, caller: &Principal, id: &str) -> Result<Request, GatewayError> {
        let request = self.visible_request(caller, id).await?;
        // An approval counts only while its giver is an active identity.
        // Revoking one withdraws its votes on open requests in the same
        // transaction; this read also catches a vote that landed after the
        // revocation (its giver authenticated just before) and votes stored
        // before withdrawal existed. A revocation committing after this read
        // withdraws the votes itself, before the transaction below.
        let gone = self.revoked_voters(&request).await?;
        let (_in_force, policy) = self.policy_in_force().await;
        let decision = policy.engine.decide(caller, &request.action);
        let judged = Judged {
            fingerprint: request.fingerprint.clone(),
            verdict: decision.verdict,
            policy_hash: decision.policy_hash,
            reason: decision.reason,
        };
        let by = caller.reference();
        let now = self.now();
        let updated = self
            .update(
                id,
                Box::new(move |stored| {
                    let actor = by.to_string();
                    if let Some(expired) = settle_deadline(stored, now) {
                        return refuse_after_expiry(&actor, stored, expired, Attempt::Release);
                    }
                    // As for a vote, only a revocation is recorded here.
                    match lifecycle::withdraw_votes(stored, &gone, now) {
                        Some(revoked)
                            if revoked.request.status == Status::Revoked && stored.status != Status::Revoked =>
                        {
                            revoked_at_release(&actor, revoked)
                        }
                        Some(withdrawn) => release_judged(&actor, &withdrawn.request, &by, &judged, now),
                        None => release_judged(&actor, stored, &by, &judged, now),
                    }
                }),
            )
            .await?;
        updated.result.map_err(GatewayError::Refused)?;
        Ok(updated.request)
    }

    /// The requester reports how the action went; accepted once.
    pub async fn report_outcome(
        &self,
        caller: &Principal,
        id: &str,
        outcome: Outcome,
    ) -> Result<Request, GatewayError> {
        self.visible_request(caller, id).await?;
        self.record_outcome(caller, id, outcome).await
    }

    /// [`AppState::report_outcome`] for a request this gateway submitted
    /// itself for `caller` (an endpoint that runs the action), so known to
    /// exist and to be the caller's: the visibility read, which only turns
    /// someone else's id into `not_found`, is skipped. Whoever reports, the
    /// transition itself still refuses anyone but the requester, inside the
    /// store's transaction, and records the refusal.
    pub(crate) async fn record_outcome(
        &self,
        caller: &Principal,
        id: &str,
        outcome: Outcome,
    ) -> Result<Request, GatewayError> {
        let by = caller.reference();
        let updated = self
            .update(
                id,
                Box::new(move |current| match lifecycle::report_outcome(current, &by, outcome) {
                    Ok(reported) => {
                        Update { events: drafts(reported.events), save: Some(reported.request), result: Ok(()) }
                    }
                    Err(refusal) => refuse(&by.to_string(), &current.id, Attempt::Outcome, refusal),
                }),
            )
            .await?;
        updated.result.map_err(GatewayError::Refused)?;
        Ok(updated.request)
    }
}

/// What the policy set in force says of the action, decided before the
/// transaction that applies it.
struct Judged {
    fingerprint: Fingerprint,
    verdict: Verdict,
    policy_hash: String,
    reason: String,
}

impl Judged {
    /// Why `current` may not be released under this verdict, if it may not.
    fn objection(&self, current: &Request) -> Option<String> {
        if current.fingerprint != self.fingerprint {
            // Never expected (an action does not change), but a verdict on
            // another action must not release this one.
            return Some("the action changed after it was judged".to_owned());
        }
        match &self.verdict {
            Verdict::Allow => None,
            Verdict::Deny => Some(format!("policy set `{}` now denies this action: {}", self.policy_hash, self.reason)),
            Verdict::RequireApproval(requirements) => (!current.quorum_met_for(requirements)).then(|| {
                format!(
                    "the approvals given no longer meet the requirements of policy set `{}`: {}",
                    self.policy_hash, self.reason
                )
            }),
        }
    }
}

/// Releases `current` (the request with any withdrawn votes marked) if
/// the policy set in force does not object; revokes it if it does.
fn release_judged(actor: &str, current: &Request, by: &PrincipalRef, judged: &Judged, now: Timestamp) -> Update {
    match lifecycle::release(current, by, now) {
        Err(refusal) => refuse(actor, &current.id, Attempt::Release, refusal),
        Ok(released) => match judged.objection(current) {
            Some(reason) => revoke_at_release(actor, current, &reason, now),
            None => Update { events: drafts(released.events), save: Some(released.request), result: Ok(()) },
        },
    }
}

/// The approvals it was approved on are gone: `revoked` is saved as is.
fn revoked_at_release(actor: &str, revoked: Moved) -> Update {
    let refusal = Refusal::NotApproved("revoked");
    let mut events = drafts(revoked.events);
    events.push(refused_event(actor, &revoked.request.id, Attempt::Release, &refusal));
    Update { events, save: Some(revoked.request), result: Err(refusal) }
}

/// The policy set in force objects: the approval is withdrawn.
fn revoke_at_release(actor: &str, current: &Request, reason: &str, now: Timestamp) -> Update {
    match lifecycle::revoke(current, reason, now) {
        Ok(revoked) => {
            let refusal = Refusal::NotApproved("revoked");
            let mut events = drafts(revoked.events);
            events.push(refused_event(actor, &current.id, Attempt::Release, &refusal));
            Update { events, save: Some(revoked.request), result: Err(refusal) }
        }
        Err(refusal) => refuse(actor, &current.id, Attempt::Release, refusal),
    }
}

fn refuse(actor: &str, id: &str, attempt: Attempt, refusal: Refusal) -> Update {
    Update { save: None, events: vec![refused_event(actor, id, attempt, &refusal)], result: Err(refusal) }
}

fn refuse_after_expiry(actor: &str, current: &Request, expired: Moved, attempt: Attempt) -> Update {
    debug_assert_eq!(expired.request.status, Status::Expired);
    let mut events = drafts(expired.events);
    events.push(refused_event(actor, &current.id, attempt, &Refusal::Expired));
    Update { events, save: Some(expired.request), result: Err(Refusal::Expired) }
}
