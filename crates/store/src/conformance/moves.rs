//! Scenarios for the atomic move: a transition decides on the request as
//! it is inside the store's transaction, and the store reports what it saw.

use std::sync::{Arc, Mutex, PoisonError};

use countersign_audit::AuditDraft;
use countersign_core::{lifecycle, PrincipalRef, Refusal, Request, Status, VoteKind};
use serde_json::json;

use super::{draft, exclusions_for, must, ops_approver, pending, verified_log, MINUTE, T0};
use crate::{Store, Update, UpdateFn, Updated};

/// What one transition saw: the status and the number of votes.
type Seen = Arc<Mutex<Vec<(Status, usize)>>>;

fn saw(seen: &Seen, request: &Request) {
    seen.lock().unwrap_or_else(PoisonError::into_inner).push((request.status, request.votes.len()));
}

/// An approval by `ops` member `i`.
fn approve(i: usize, seen: Seen) -> UpdateFn {
    Box::new(move |r: &Request| {
        saw(&seen, r);
        let approver = ops_approver(&format!("ap{i}"), &format!("ap{i}@example.com"));
        match lifecycle::vote(r, &approver, &exclusions_for(r), VoteKind::Approve, None, T0.plus(MINUTE))
            .map(|m| m.request)
        {
            Ok(next) => {
                let mut events = vec![draft("approval.accepted", json!({"id": r.id, "by": i}))];
                if next.status != r.status {
                    events.push(draft("action.approved", json!({"id": r.id})));
                }
                Update { save: Some(next), events, result: Ok(()) }
            }
            Err(refusal) => Update {
                save: None,
                events: vec![draft("attempt.refused", json!({"id": r.id, "code": refusal.code()}))],
                result: Err(refusal),
            },
        }
    })
}

/// A release that judges the approvals on the request it is given, as a
/// gateway must: if they do not meet the requirements it revokes.
fn release(seen: Seen) -> UpdateFn {
    Box::new(move |r: &Request| {
        saw(&seen, r);
        let now = T0.plus(2 * MINUTE);
        match lifecycle::release(r, &r.principal.clone(), now).map(|m| m.request) {
            Ok(next) if r.quorum_met() => {
                Update { save: Some(next), events: vec![draft("action.released", json!({"id": r.id}))], result: Ok(()) }
            }
            Ok(_) => match lifecycle::revoke(r, "the approvals do not meet the requirements", now).map(|m| m.request) {
                Ok(revoked) => Update {
                    save: Some(revoked),
                    events: vec![draft("action.revoked", json!({"id": r.id}))],
                    result: Err(Refusal::NotApproved("revoked")),
                },
                Err(refusal) => Update { save: None, events: Vec::new(), result: Err(refusal) },
            },
            Err(refusal) => Update {
                save: None,
                events: vec![AuditDraft::raw(
                    "agent:bot",
                    "attempt.refused",
                    json!({"id": r.id, "code": refusal.code()}),
                )],
                result: Err(refusal),
            },
        }
    })
}

/// Twenty times: two approvals (quorum 2) race a requester that keeps
/// trying to release. The approvals are both counted, the release succeeds
/// exactly once and only after both, nothing is revoked, and every answer
/// reports the status its transition saw inside the transaction.
pub async fn release_racing_approvals_sees_them<S: Store>(store: Arc<S>) {
    for round in 0..20usize {
        let id = format!("rel-{round:02}");
        must(store.insert_request(pending(&id, PrincipalRef::agent("bot"), 2), Vec::new()).await, "insert");
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        let approvals_done = Arc::new(tokio::sync::Notify::new());
        let mut voters = Vec::new();
        for i in 0..2 {
            let (store, barrier, id) = (Arc::clone(&store), Arc::clone(&barrier), id.clone());
            voters.push(tokio::spawn(async move {
                barrier.wait().await;
                let seen: Seen = Arc::default();
                let updated =
                    must(store.update_request(&id, approve(i + round * 2, Arc::clone(&seen))).await, "approve");
                (updated, seen)
            }));
        }
        let releaser = {
            let (store, barrier, id, done) =
                (Arc::clone(&store), Arc::clone(&barrier), id.clone(), Arc::clone(&approvals_done));
            tokio::spawn(async move {
                barrier.wait().await;
                let mut answers: Vec<(Updated, Seen)> = Vec::new();
                let mut approvals_over = false;
                // Poll until released or refused for good; once the
                // approvals have answered, one more try must settle it.
                for _ in 0..10_000 {
                    let seen: Seen = Arc::default();
                    let updated = must(store.update_request(&id, release(Arc::clone(&seen))).await, "release");
                    let settled = !matches!(updated.result, Err(Refusal::NotApproved("pending")));
                    answers.push((updated, seen));
                    if settled || approvals_over {
                        break;
                    }
                    approvals_over = tokio::time::timeout(std::time::Duration::ZERO, done.notified()).await.is_ok();
                    tokio::task::yield_now().await;
                }
                answers
            })
        };
        let mut answers = Vec::new();
        for voter in voters {
            answers.push(must(voter.await, "approve task"));
        }
        approvals_done.notify_one();
        let releases = must(releaser.await, "release task");
        for (updated, _) in &answers {
            assert_eq!(updated.result, Ok(()), "round {round}: both approvals are accepted");
        }
        let released: Vec<&Updated> = releases.iter().map(|(u, _)| u).filter(|u| u.result.is_ok()).collect();
        let stored = must(store.request(&id).await, "get").map(|r| (r.status, r.approvals().count()));
        assert_eq!(
            (released.len(), stored),
            (1, Some((Status::Released, 2))),
            "round {round}: released once both approvals are accepted, never revoked"
        );
        for (updated, seen) in answers.iter().chain(releases.iter()) {
            let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
            assert_eq!(seen.len(), 1, "round {round}: a transition runs once");
            assert_eq!(updated.before, seen[0].0, "round {round}: `before` is what the transition saw");
            assert_eq!(
                updated.changed,
                updated.request.status != seen[0].0 || updated.request.votes.len() != seen[0].1
            );
        }
    }
    let log = verified_log(&*store).await;
    assert_eq!(log.iter().filter(|e| e.kind == "action.revoked").count(), 0, "nothing is revoked");
    assert_eq!(log.iter().filter(|e| e.kind == "action.released").count(), 20);
    assert_eq!(log.iter().filter(|e| e.kind == "action.approved").count(), 20);
}
