//! The rules an approval obeys, one test each: no self-approval, approver
//! groups, distinct-person quorums, deny is final, deadlines, and the
//! single-use release bound to the exact action.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use countersign_testkit::{gateway, gateway_configured, shell, sql, Gateway, ManualClock, POLICY};
use serde_json::json;

#[tokio::test]
async fn rule_1_no_self_approval_for_owner_on_behalf_of_or_their_other_identity() {
    let g = gateway().await;
    // bot is owned by owen; the action acts on behalf of olga.
    let mut action = shell("prod-web");
    action["on_behalf_of"] = json!("olga");
    let id = g.submit("bot", action).await["id"].as_str().unwrap().to_owned();
    for who in ["owen", "owen-sso", "olga"] {
        let (status, body) = g.approve(who, &id).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["error"]["code"], "self_approval", "{who}");
        let (status, body) = g.deny(who, &id).await;
        assert_eq!(body["error"]["code"], "self_approval", "{who}: {status}");
    }
    let (status, body) = g.approve("bot", &id).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "humans_only");
    assert_eq!(g.status_of(&id).await, "pending");
    let refused = g.audit().await.into_iter().filter(|e| e.kind == "attempt.refused").count();
    assert_eq!(refused, 6, "every refused vote is audited");
    let (status, body) = g.approve("alice", &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
}

#[tokio::test]
async fn rule_2_only_approver_groups_count() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    for who in ["carol", "sam", "ann", "adam"] {
        let (status, body) = g.approve(who, &id).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["error"]["code"], "not_an_approver", "{who}: {body}");
    }
    assert_eq!(g.status_of(&id).await, "pending");
}

#[tokio::test]
async fn rule_3_quorum_counts_distinct_people_and_any_deny_is_final() {
    let g = gateway().await;
    let id = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await["id"].as_str().unwrap().to_owned();
    assert_eq!(g.approve("carol", &id).await.1["status"], "pending");
    let (status, body) = g.approve("carol", &id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "duplicate_vote");
    assert_eq!(g.approve("dave", &id).await.1["status"], "approved");
    let (_, view) = g.call("GET", &format!("/v1/actions/{id}"), Some("bot"), None).await;
    assert_eq!(view["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(view["requirements"][0]["approvals"], 2);

    let id = g.submit("bot", sql("DELETE FROM users WHERE id = 8")).await["id"].as_str().unwrap().to_owned();
    g.approve("carol", &id).await;
    let (status, body) = g.deny("dave", &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "denied");
    assert_eq!(body["denials"][0]["by"], "user:dave");
    let (status, body) = g.approve("erin", &id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_pending");
}

/// The standard gateway on a clock that moves only when told.
async fn gateway_on_manual_clock() -> (Gateway, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let g = gateway_configured(POLICY, &[("COUNTERSIGN_SERVER_BODY_LIMIT_BYTES", "4096")], clock.clone()).await;
    (g, clock)
}

#[tokio::test]
async fn rule_4_pending_requests_expire_at_their_deadline() {
    let (g, clock) = gateway_on_manual_clock().await;
    let id = g.submit("bot", shell("short-fuse")).await["id"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_millis(1100));
    let (status, body) = g.approve("alice", &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "expired");
    assert_eq!(g.status_of(&id).await, "expired");
    assert!(g.audit_types_for(&id).await.contains(&"action.expired".to_owned()));
}

#[tokio::test]
async fn rule_4_the_background_task_expires_requests_nobody_touches() {
    let (g, clock) = gateway_on_manual_clock().await;
    let id = g.submit("bot", shell("short-fuse")).await["id"].as_str().unwrap().to_owned();
    assert_eq!(g.state.expire_due().await.unwrap(), 0, "not yet due");
    clock.advance(Duration::from_millis(1100));
    assert_eq!(g.state.expire_due().await.unwrap(), 1);
    assert_eq!(g.status_of(&id).await, "expired");
}

#[tokio::test]
async fn rule_4_an_approval_not_released_within_valid_for_expires() {
    let (g, clock) = gateway_on_manual_clock().await;
    let id = g.submit("bot", shell("brief")).await["id"].as_str().unwrap().to_owned();
    assert_eq!(g.approve("alice", &id).await.1["status"], "approved");
    clock.advance(Duration::from_millis(1100));
    let (status, body) = g.call("POST", &format!("/v1/actions/{id}/release"), Some("bot"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "expired");
    assert_eq!(g.status_of(&id).await, "expired");
}

#[tokio::test]
async fn rule_5_release_is_single_use_and_only_for_the_requester() {
    let g = gateway().await;
    let submitted = g.submit("bot", shell("prod-web")).await;
    let id = submitted["id"].as_str().unwrap().to_owned();
    let release = format!("/v1/actions/{id}/release");
    let (status, body) = g.call("POST", &release, Some("bot"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_approved");
    g.approve("alice", &id).await;
    let (status, _) = g.call("POST", &release, Some("ci-bot"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another agent cannot even see it");
    let (status, body) = g.call("POST", &release, Some("bot"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "released");
    assert_eq!(body["fingerprint"], submitted["fingerprint"]);
    let (status, body) = g.call("POST", &release, Some("bot"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "already_released");
}

#[tokio::test]
async fn outcome_is_accepted_once_and_only_when_the_action_may_run() {
    let g = gateway().await;
    let outcome = json!({"status": "succeeded", "exit_code": 0, "summary": "done", "output_sha256": "ab".repeat(32)});
    let pending = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let (status, body) =
        g.call("POST", &format!("/v1/actions/{pending}/outcome"), Some("bot"), Some(outcome.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "outcome_not_accepted");

    let allowed = g.submit("bot", shell("staging-web")).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/actions/{allowed}/outcome");
    let (status, body) = g.call("POST", &path, Some("bot"), Some(outcome.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"]["status"], "succeeded");
    let (status, body) = g.call("POST", &path, Some("bot"), Some(outcome)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "outcome_already_reported");
    let (status, body) = g.call("POST", &path, Some("bot"), Some(json!({"status": "maybe"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_outcome");
    assert!(g.audit_types_for(&allowed).await.contains(&"outcome.reported".to_owned()));
}

#[tokio::test]
async fn the_requester_can_cancel_and_nobody_else() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let cancel = format!("/v1/actions/{id}/cancel");
    let (status, body) = g.call("POST", &cancel, Some("alice"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "not_requester");
    let (status, body) = g.call("POST", &cancel, Some("bot"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "cancelled");
    assert_eq!(g.approve("alice", &id).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn comments_are_recorded_with_who_and_when() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/actions/{id}/comments");
    let (status, body) = g.call("POST", &path, Some("alice"), Some(json!({"comment": "which host?"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["comments"][0]["by"], "user:alice");
    assert_eq!(body["comments"][0]["comment"], "which host?");
    assert!(body["comments"][0]["at"].is_string());
    assert_eq!(body["status"], "pending");
    let (status, _) = g.call("POST", &path, Some("alice"), Some(json!({"comment": ""}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
