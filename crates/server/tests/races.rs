//! Rule 6: approve, deny, cancel, expire and revoke racing on one request
//! end in exactly one final state — fired in parallel, many times.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::http::StatusCode;
use countersign_core::lifecycle::settle_deadline;
use countersign_core::Timestamp;
use serde_json::json;
use support::{gateway, shell};

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
                            events: vec![countersign_audit::AuditDraft::new(
                                "system",
                                "action.expired",
                                json!({"id": expired.id}),
                            )],
                            save: Some(expired),
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
        let id =
            g.submit("bot", support::sql("DELETE FROM users WHERE id = 7")).await["id"].as_str().unwrap().to_owned();
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

async fn futures_join(g: &support::Gateway, id: &str) -> Vec<StatusCode> {
    let (a, b, c, d, e) = tokio::join!(
        g.approve("carol", id),
        g.approve("carol", id),
        g.approve("dave", id),
        g.approve("erin", id),
        g.approve("dave", id),
    );
    vec![a.0, b.0, c.0, d.0, e.0]
}
