//! An approval counts only while the identity that gave it is active:
//! revoking an approver withdraws its votes on open requests, and release
//! checks the voters again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use countersign_core::{Principal, PrincipalKind, Timestamp, VoteKind};
use countersign_testkit::{gateway, shell, sql, Gateway};

async fn release(g: &Gateway, id: &str) -> (StatusCode, serde_json::Value) {
    g.call("POST", &format!("/v1/actions/{id}/release"), Some("bot"), None).await
}

#[tokio::test]
async fn an_approval_by_a_user_revoked_afterwards_is_not_released() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let (status, body) = g.approve("alice", &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(g.status_of(&id).await, "approved");

    g.store.revoke_user("alice", Timestamp::now(), vec![]).await.unwrap();
    let (status, body) = release(&g, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(g.status_of(&id).await, "revoked");
    let stored = g.store.request(&id).await.unwrap().unwrap();
    assert!(stored.reason.contains("user:alice"), "{}", stored.reason);
    assert_eq!(stored.approvals().count(), 0, "the withdrawn approval does not count");
    assert_eq!(stored.votes.len(), 1, "but stays on record");
    assert!(stored.votes[0].withdrawn_at.is_some());
    assert!(g.audit_types_for(&id).await.contains(&"action.revoked".to_owned()));
}

#[tokio::test]
async fn a_vote_by_an_approver_revoked_before_the_second_does_not_make_a_quorum() {
    let g = gateway().await;
    let id = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await["id"].as_str().unwrap().to_owned();
    assert_eq!(g.approve("carol", &id).await.0, StatusCode::OK);
    g.store.revoke_user("carol", Timestamp::now(), vec![]).await.unwrap();
    assert_eq!(g.status_of(&id).await, "pending", "a pending request waits for others");
    assert!(g.audit_types_for(&id).await.contains(&"votes.withdrawn".to_owned()));

    assert_eq!(g.approve("dave", &id).await.0, StatusCode::OK);
    assert_eq!(g.status_of(&id).await, "pending", "carol's approval no longer counts: one of two");
    let (status, body) = release(&g, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, view) = g.call("GET", &format!("/v1/actions/{id}"), Some("bot"), None).await;
    assert_eq!(view["status"], "pending", "{view}");

    // A second active dba meets the quorum.
    assert_eq!(g.approve("erin", &id).await.0, StatusCode::OK);
    assert_eq!(g.status_of(&id).await, "approved");
    let (status, body) = release(&g, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "released");
}

#[tokio::test]
async fn an_approval_that_lands_after_its_giver_was_revoked_is_refused_at_release() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    // alice authenticated, then was revoked before her approval was applied.
    let alice = Principal {
        kind: PrincipalKind::User,
        name: "alice".into(),
        email: Some("alice@corp".into()),
        owner: None,
        groups: vec!["sre".into()],
    };
    g.store.revoke_user("alice", Timestamp::now(), vec![]).await.unwrap();
    g.state.vote(&alice, &id, VoteKind::Approve, None).await.unwrap();
    assert_eq!(g.status_of(&id).await, "approved");

    let (status, body) = release(&g, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(g.status_of(&id).await, "revoked");
}

#[tokio::test]
async fn a_revoked_approver_does_not_count_towards_a_later_quorum() {
    let g = gateway().await;
    let id = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await["id"].as_str().unwrap().to_owned();
    let carol = Principal {
        kind: PrincipalKind::User,
        name: "carol".into(),
        email: Some("carol@corp".into()),
        owner: None,
        groups: vec!["dba".into()],
    };
    // carol's vote lands after her revocation (so no cascade withdrew it):
    // the next approval must not count it.
    g.store.revoke_user("carol", Timestamp::now(), vec![]).await.unwrap();
    g.state.vote(&carol, &id, VoteKind::Approve, None).await.unwrap();
    assert_eq!(g.approve("dave", &id).await.0, StatusCode::OK);
    assert_eq!(g.status_of(&id).await, "pending");
    let stored = g.store.request(&id).await.unwrap().unwrap();
    assert_eq!(stored.approvals().count(), 1, "only dave's approval counts");
}
