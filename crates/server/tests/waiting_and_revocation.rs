//! Waiting agents are woken the moment their request is decided; what each
//! caller may list; identity revocation and policy reload take effect at
//! once; the audit log is readable by auditors and verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use countersign_core::Timestamp;
use countersign_testkit::{gateway, shell, sql};
use serde_json::{json, Value};

#[tokio::test]
async fn a_waiting_agent_is_woken_by_the_decision_not_the_timeout() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/actions/{id}?wait=30");
    let started = Instant::now();
    let (waited, approval) = tokio::join!(g.call("GET", &path, Some("bot"), None), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        g.approve("alice", &id).await
    });
    assert_eq!(approval.0, StatusCode::OK);
    assert_eq!(waited.0, StatusCode::OK);
    assert_eq!(waited.1["status"], "approved");
    // Far below the 30 s it asked for: the approval woke it.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn wait_returns_the_pending_request_after_its_time_and_refuses_long_waits() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let (status, body) = g.call("GET", &format!("/v1/actions/{id}?wait=1"), Some("bot"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "pending");
    let (status, body) = g.call("GET", &format!("/v1/actions/{id}?wait=61"), Some("bot"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_wait");
    let (status, body) = g.call("GET", &format!("/v1/actions/{id}?wait=soon"), Some("bot"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn shutdown_answers_waiters_clearly() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/actions/{id}?wait=30");
    let (waited, ()) = tokio::join!(g.call("GET", &path, Some("bot"), None), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        g.state.shut_down();
    });
    assert_eq!(waited.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(waited.1["error"]["code"], "shutting_down");
    assert_eq!(g.status_of(&id).await, "pending", "nothing was decided by the shutdown");
}

fn ids(body: &Value) -> Vec<String> {
    body["actions"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn pending_lists_show_each_caller_what_they_may_decide() {
    let g = gateway().await;
    let shell_id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let sql_id = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await["id"].as_str().unwrap().to_owned();
    let ci_id = g.submit("ci-bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let list = |who: &'static str| {
        let g = &g;
        async move { ids(&g.call("GET", "/v1/actions?status=pending", Some(who), None).await.1) }
    };
    let mut alice = list("alice").await;
    alice.sort();
    let mut expected = vec![shell_id.clone(), ci_id.clone()];
    expected.sort();
    assert_eq!(alice, expected);
    assert_eq!(list("carol").await, vec![sql_id.clone()]);
    // owen owns bot: he may decide only ci-bot's request.
    assert_eq!(list("owen").await, vec![ci_id.clone()]);
    assert_eq!(list("sam").await, Vec::<String>::new());
    assert_eq!(list("ann").await.len(), 3, "auditors see everything");
    assert_eq!(list("ci-bot").await, vec![ci_id.clone()], "agents see their own");
    let (status, body) = g.call("GET", "/v1/actions?status=bogus", Some("alice"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_status");
    // Someone who may not see a request is told it does not exist.
    let (status, _) = g.call("GET", &format!("/v1/actions/{sql_id}"), Some("sam"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revoking_an_agent_takes_effect_at_once() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let approved = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    g.approve("alice", &approved).await;
    let revoked = g.store.revoke_agent("bot", Timestamp::now(), vec![]).await.unwrap();
    assert_eq!(revoked.len(), 2);
    assert_eq!(g.status_of(&id).await, "revoked");
    assert_eq!(g.status_of(&approved).await, "revoked");
    let (status, _) = g.call("POST", "/v1/actions", Some("bot"), Some(shell("staging-web"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_policy_reload_revokes_what_the_new_set_denies_and_a_bad_set_is_refused() {
    let g = gateway().await;
    let shell_id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    let sql_id = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await["id"].as_str().unwrap().to_owned();
    let policy_file = g.dir.path().join("policies/test.cedar");
    let before = g.call("GET", "/v1/policies", Some("adam"), None).await.1["hash"].clone();

    std::fs::write(&policy_file, "permit(principal, action, resource) when {\n  resource.name like \"prod*\"\n")
        .unwrap();
    let (status, body) = g.call("POST", "/v1/policies/reload", Some("adam"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "policy_invalid");
    assert!(body["error"]["message"].as_str().unwrap().contains("test.cedar:"), "{body}");
    assert_eq!(g.call("GET", "/v1/policies", Some("adam"), None).await.1["hash"], before, "the old set stays");

    let (status, _) = g.call("POST", "/v1/policies/reload", Some("alice"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let only_sql = r#"@id("prod-db-two-dbas") @approvers("dba") @quorum("2")
permit(principal, action == Action::"sql.execute", resource == Resource::"prod-db");"#;
    std::fs::write(&policy_file, only_sql).unwrap();
    let (status, body) = g.call("POST", "/v1/policies/reload", Some("adam"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["hash"], before);
    assert_eq!(g.status_of(&shell_id).await, "revoked");
    assert_eq!(g.status_of(&sql_id).await, "pending");
    let types: Vec<String> = g.audit().await.into_iter().map(|e| e.kind).collect();
    assert!(types.contains(&"policy.load_failed".to_owned()));
    assert_eq!(types.iter().filter(|t| *t == "policy.loaded").count(), 2);
}

#[tokio::test]
async fn an_approval_is_checked_again_at_release() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    g.approve("alice", &id).await;
    // Raise the bar after the approval: two sre approvals now.
    let stricter = r#"@id("prod-shell-sre") @approvers("sre") @quorum("2")
permit(principal, action == Action::"shell.exec", resource) when { resource.name like "prod*" };"#;
    std::fs::write(g.dir.path().join("policies/test.cedar"), stricter).unwrap();
    g.state.reload_policies("test").await.unwrap();
    let (status, body) = g.call("POST", &format!("/v1/actions/{id}/release"), Some("bot"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(g.status_of(&id).await, "revoked");
}

#[tokio::test]
async fn auditors_read_a_verifiable_log_and_others_may_not() {
    let g = gateway().await;
    let id = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    g.approve("alice", &id).await;
    let (status, page) = g.call("GET", "/v1/audit?after=0&limit=5", Some("ann"), None).await;
    assert_eq!(status, StatusCode::OK);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(page["next_after"], 5);
    let (_, rest) = g.call("GET", "/v1/audit?after=5", Some("ann"), None).await;
    assert_eq!(rest["events"][0]["seq"], 6);
    assert_eq!(g.call("GET", "/v1/audit", Some("alice"), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(g.call("GET", "/v1/audit", Some("bot"), None).await.0, StatusCode::FORBIDDEN);
    let all = g.audit().await;
    let approval = all.iter().find(|e| e.kind == "approval.accepted").unwrap();
    assert_eq!(approval.actor, "user:alice");
    assert_eq!(approval.body_value()["id"], json!(id));
}
