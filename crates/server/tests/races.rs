//! Rule 6: approve, deny, cancel, expire and revoke racing on one request
//! end in exactly one final state — fired in parallel, many times.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use countersign_core::lifecycle::settle_deadline;
use countersign_core::Timestamp;
use countersign_testkit::{gateway, shell};
use serde_json::json;

const ROUNDS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_moves_end_in_exactly_one_final_state() {
    let g = gateway().await;
    let mut winners_seen = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..ROUNDS {
        let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
        let approve = g.approve("alice", &id);
        let deny = g.deny("bob", &id);
        let cancel_path = format!("/v1/actions/{id}/cancel");
        let cancel = g.call("POST", &cancel_path, Some("bot"), None);
        let revoke = g.state.revoke_request(&id, "race test".into());
        let expire = async {
            // Every few rounds, also race the deadline: the store applies it
            // as if `expires_at` had just passed.
            if round % 3 == 0 {
                let now = Timestamp::now();
                let update: countersign_store::UpdateFn = Box::new(move |current| {
                    let mut due = current.clone();
                    due.expires_at = Some(now);
                    match settle_deadline(&due, now) {
                        Some(expired) => countersign_store::Update {
                            events: vec![countersign_audit::AuditDraft::raw(
                                "system",
                                "action.expired",
                                json!({"id": expired.request.id}),
                            )],
                            save: Some(expired.request),
                            result: Ok(()),
                        },
                        None => countersign_store::Update { save: None, events: vec![], result: Ok(()) },
                    }
                });
                g.store.update_request(&id, update).await.unwrap();
            }
        };
        let (a, d, c, rv, _) = tokio::join!(approve, deny, cancel, revoke, expire);
        rv.unwrap();
        let final_status = g.status_of(&id).await;
        // Approval is not final (an approved request can still be vetoed,
        // cancelled or revoked before release); exactly one move reaches a
        // final state, and the HTTP answers agree with the store.
        let final_wins: Vec<&str> = [(&d, "denied"), (&c, "cancelled")]
            .iter()
            .filter(|(r, _)| r.0 == StatusCode::OK)
            .map(|(_, s)| *s)
            .collect();
        assert!(final_wins.len() <= 1, "round {round}: several final moves won: {final_wins:?}");
        if let Some(winner) = final_wins.first() {
            assert_eq!(*winner, final_status, "round {round}");
        }
        for answer in [&a, &d, &c] {
            assert!(answer.0 == StatusCode::OK || answer.0 == StatusCode::CONFLICT, "round {round}: {}", answer.1);
        }
        let finals = ["action.denied", "action.cancelled", "action.revoked", "action.expired"];
        let types = g.audit_types_for(&id).await;
        let final_events: Vec<&String> = types.iter().filter(|t| finals.contains(&t.as_str())).collect();
        assert_eq!(final_events.len(), 1, "round {round}: {types:?}");
        assert_eq!(final_events[0].trim_start_matches("action."), final_status, "round {round}");
        let approved_events = types.iter().filter(|t| *t == "action.approved").count();
        assert_eq!(
            approved_events,
            usize::from(a.0 == StatusCode::OK && a.1["status"] == "approved"),
            "round {round}: {types:?}"
        );
        *winners_seen.entry(final_status).or_default() += 1;
    }
    // The race is real: more than one kind of move won across the rounds.
    assert!(winners_seen.len() > 1, "{winners_seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_quorum_counts_each_person_once() {
    let g = gateway().await;
    for _ in 0..20 {
        let id = g.submit("bot", countersign_testkit::sql("DELETE FROM users WHERE id = 7")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let results = futures_join(&g, &id).await;
        let accepted = results.iter().filter(|s| **s == StatusCode::OK).count();
        let request = g.store.request(&id).await.unwrap().unwrap();
        assert_eq!(request.status.as_str(), "approved");
        let mut people: Vec<_> = request.votes.iter().map(|v| v.person.clone()).collect();
        let votes = people.len();
        people.sort();
        people.dedup();
        assert_eq!(people.len(), votes, "a person was counted twice");
        assert_eq!(accepted, votes);
        assert!(votes >= 2);
    }
}

async fn futures_join(g: &countersign_testkit::Gateway, id: &str) -> Vec<StatusCode> {
    let (a, b, c, d, e) = tokio::join!(
        g.approve("carol", id),
        g.approve("carol", id),
        g.approve("dave", id),
        g.approve("erin", id),
        g.approve("dave", id),
    );
    vec![a.0, b.0, c.0, d.0, e.0]
}

/// Polls `release` as the requester until the answer is no longer "still
/// pending"; once `others_done` is set, one more try settles it. Returns
/// every answer.
async fn poll_release(
    g: &countersign_testkit::Gateway,
    id: &str,
    others_done: &std::sync::atomic::AtomicBool,
) -> Vec<(StatusCode, serde_json::Value)> {
    let path = format!("/v1/actions/{id}/release");
    let mut answers = Vec::new();
    loop {
        let last_try = others_done.load(std::sync::atomic::Ordering::SeqCst);
        let answer = g.call("POST", &path, Some("bot"), None).await;
        let still_pending =
            answer.1["error"]["message"].as_str().is_some_and(|m| m.contains("`pending`, not approved"));
        answers.push(answer);
        if !still_pending || last_try {
            return answers;
        }
        tokio::task::yield_now().await;
    }
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

/// Issue 9 §3: a requester polling `release` while an approver approves
/// ends `released`: the release judges the approvals on the request as it
/// is inside its own transaction, not on a read taken before it (which
/// revoked the approval, "the approvals given no longer meet the
/// requirements", in most rounds).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_polled_during_an_approval_is_never_revoked() {
    let g = gateway().await;
    for round in 0..40 {
        let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
        let done = std::sync::atomic::AtomicBool::new(false);
        let approve = async {
            let answer = g.approve("alice", &id).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            answer
        };
        let (approved, releases) = tokio::join!(approve, poll_release(&g, &id, &done));
        assert_eq!(approved.0, StatusCode::OK, "round {round}: {}", approved.1);
        let ok: Vec<_> = releases.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
        assert_eq!(ok.len(), 1, "round {round}: released exactly once: {releases:?}");
        assert_eq!(g.status_of(&id).await, "released", "round {round}");
        let types = g.audit_types_for(&id).await;
        assert_eq!(count(&types, "action.revoked"), 0, "round {round}: {types:?}");
        assert_eq!(count(&types, "action.approved"), 1, "round {round}: {types:?}");
        assert_eq!(count(&types, "action.released"), 1, "round {round}: {types:?}");
        // Single use: a second release is refused.
        let again = g.call("POST", &format!("/v1/actions/{id}/release"), Some("bot"), None).await;
        assert_eq!((again.0, again.1["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_released")));
    }
}

/// Approve, deny, cancel and a polling release, all at once, many times:
/// one final outcome, which the answers and the audit log agree on;
/// nothing is revoked (the policy never changed); a release succeeds at
/// most once, and an accepted approval that nobody vetoed or cancelled is
/// released.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_deny_cancel_and_release_racing_agree_on_one_outcome() {
    let g = gateway().await;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..60 {
        let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
        let done = std::sync::atomic::AtomicBool::new(false);
        let others = async {
            let cancel_path = format!("/v1/actions/{id}/cancel");
            // Deny and cancel only in some rounds, so approvals also get
            // through to a release.
            let deny = async {
                if round % 3 == 1 {
                    Some(g.deny("bob", &id).await)
                } else {
                    None
                }
            };
            let cancel = async {
                if round % 4 == 2 {
                    Some(g.call("POST", &cancel_path, Some("bot"), None).await)
                } else {
                    None
                }
            };
            let answers = tokio::join!(g.approve("alice", &id), deny, cancel);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            answers
        };
        let ((approved, denied, cancelled), releases) = tokio::join!(others, poll_release(&g, &id, &done));
        let status = g.status_of(&id).await;
        let ok =
            |answer: &Option<(StatusCode, serde_json::Value)>| answer.as_ref().is_some_and(|a| a.0 == StatusCode::OK);
        let released = releases.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert!(released <= 1, "round {round}: a release is single-use: {releases:?}");
        for answer in releases.iter().chain([&approved]).chain(denied.iter()).chain(cancelled.iter()) {
            assert!(
                answer.0 == StatusCode::OK || answer.0 == StatusCode::CONFLICT,
                "round {round}: {} {}",
                answer.0,
                answer.1
            );
        }
        let winners: Vec<&str> = [(released == 1, "released"), (ok(&denied), "denied"), (ok(&cancelled), "cancelled")]
            .into_iter()
            .filter(|(won, _)| *won)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(
            winners,
            vec![status.as_str()],
            "round {round}: exactly one final move won, and it is the stored one"
        );
        if approved.0 == StatusCode::OK && !ok(&denied) && !ok(&cancelled) {
            assert_eq!(status, "released", "round {round}: an accepted, unvetoed approval is released");
        }
        let types = g.audit_types_for(&id).await;
        assert_eq!(count(&types, "action.revoked"), 0, "round {round}: {types:?}");
        let finals: Vec<&String> = types
            .iter()
            .filter(|t| {
                ["action.released", "action.denied", "action.cancelled", "action.expired"].contains(&t.as_str())
            })
            .collect();
        assert_eq!(finals, vec![&format!("action.{status}")], "round {round}: {types:?}");
        let approved_now = approved.0 == StatusCode::OK && approved.1["status"] == "approved";
        assert_eq!(count(&types, "action.approved"), usize::from(approved_now), "round {round}: {types:?}");
        assert_eq!(count(&types, "approval.accepted"), usize::from(approved.0 == StatusCode::OK), "round {round}");
        *outcomes.entry(status).or_default() += 1;
    }
    assert!(outcomes.len() > 1, "the race is real: {outcomes:?}");
}
