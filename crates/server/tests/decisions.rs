//! Submitting actions: routine, denied, pending; what a policy can read;
//! the fingerprint; and the audit trail of a submission.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use countersign_testkit::{gateway, shell, sql};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn routine_actions_are_allowed_at_once() {
    let g = gateway().await;
    let body = g.submit("bot", shell("staging-web")).await;
    assert_eq!(body["status"], "allowed");
    assert_eq!(body["policies"], json!(["routine"]));
    assert!(body.get("approval").is_none());
    assert_eq!(g.audit_types_for(body["id"].as_str().unwrap()).await, ["action.submitted", "action.decided"]);
}

#[tokio::test]
async fn unmatched_actions_are_denied_by_default() {
    let g = gateway().await;
    let body = g.submit("bot", shell("unknown-place")).await;
    assert_eq!(body["status"], "denied");
    assert_eq!(body["policies"], json!([]));
}

#[tokio::test]
async fn forbid_reads_the_payload_and_wins() {
    let g = gateway().await;
    let body = g.submit("bot", sql("DROP TABLE users")).await;
    assert_eq!(body["status"], "denied");
    assert_eq!(body["policies"], json!(["no-drop"]));
}

#[tokio::test]
async fn sensitive_actions_wait_with_their_requirements() {
    let g = gateway().await;
    let body = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await;
    assert_eq!(body["status"], "pending");
    let reqs = &body["approval"]["requirements"];
    assert_eq!(reqs[0]["policy"], "prod-db-two-dbas");
    assert_eq!(reqs[0]["groups"], json!(["dba"]));
    assert_eq!(reqs[0]["quorum"], 2);
    assert!(body["approval"]["expires_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn labels_add_requirements() {
    let g = gateway().await;
    let mut action = sql("SELECT * FROM users");
    action["labels"] = json!(["pii"]);
    let body = g.submit("bot", action).await;
    let policies: Vec<&str> =
        body["approval"]["requirements"].as_array().unwrap().iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["pii-needs-security", "prod-db-two-dbas"]);
}

#[tokio::test]
async fn group_membership_is_read_by_policy() {
    let g = gateway().await;
    let deploy = json!({"kind": "deploy", "resource": "web", "payload": {}});
    assert_eq!(g.submit("ci-bot", deploy.clone()).await["status"], "allowed");
    assert_eq!(g.submit("bot", deploy).await["status"], "denied");
}

#[tokio::test]
async fn the_fingerprint_is_sha256_of_the_jcs_action() {
    let g = gateway().await;
    let body = g
        .submit("bot", json!({"kind": "shell.exec", "resource": "staging-web", "payload": {"b": 1, "a": [true]}}))
        .await;
    let canonical = r#"{"kind":"shell.exec","on_behalf_of":null,"payload":{"a":[true],"b":1},"principal":"agent:bot","resource":"staging-web"}"#;
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    assert_eq!(body["fingerprint"], Value::String(expected));
}

#[tokio::test]
async fn a_changed_payload_is_a_new_request() {
    let g = gateway().await;
    let a = g.submit("bot", sql("DELETE FROM users WHERE id = 7")).await;
    let b = g.submit("bot", sql("DELETE FROM users WHERE id = 8")).await;
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["fingerprint"], b["fingerprint"]);
}

#[tokio::test]
async fn bad_input_gets_a_json_error_and_is_audited() {
    let g = gateway().await;
    let token = Some(g.token("bot"));
    let cases = [
        ("{not json", StatusCode::BAD_REQUEST, "invalid_json"),
        (r#"{"kind": "x", "resource": "y", "surprise": 1}"#, StatusCode::BAD_REQUEST, "invalid_json"),
        (r#"{"kind": "", "resource": "y"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_action"),
        (
            r#"{"kind": "x", "resource": "y", "payload": {"__entity": {"type": "User", "id": "a"}}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
        ),
    ];
    for (body, status, code) in cases {
        let (got, reply) = g.call_raw("POST", "/v1/actions", token.clone(), Some(body.to_owned())).await;
        assert_eq!(got, status, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
    }
    let big = format!(r#"{{"kind": "x", "resource": "y", "payload": "{}"}}"#, "a".repeat(5000));
    let (got, reply) = g.call_raw("POST", "/v1/actions", token, Some(big)).await;
    assert_eq!(got, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply["error"]["code"], "body_too_large");
    assert_eq!(g.refusals_accounted("request.rejected", "agent:bot").await, 5);
}

#[tokio::test]
async fn unknown_and_revoked_tokens_get_401_and_are_audited() {
    let g = gateway().await;
    let (status, body) = g.call_raw("POST", "/v1/actions", None, Some(shell("staging-web").to_string())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    let fake = format!("csa_{}", "0".repeat(64));
    let (status, _) = g.call_raw("GET", "/v1/actions", Some(fake), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(g.refusals_accounted("request.rejected", "anonymous").await, 2);
}

#[tokio::test]
async fn openapi_health_and_metrics_are_served() {
    let g = gateway().await;
    let (status, doc) = g.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/v1/actions", "/v1/actions/{id}", "/v1/actions/{id}/approve", "/v1/audit"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from openapi");
    }
    // A parameter is `in: path` only when the path template names it;
    // every other one is read from the query string.
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let in_template = path.contains(&format!("{{{name}}}"));
                let expected = if in_template { "path" } else { "query" };
                assert_eq!(parameter["in"], expected, "{method} {path}: `{name}`");
                checked += 1;
            }
        }
    }
    assert!(checked > 5, "only {checked} parameters in the document");
    assert_eq!(g.call("GET", "/healthz", None, None).await.0, StatusCode::OK);
    let (status, ready) = g.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    g.submit("bot", shell("staging-web")).await;
    let (_, metrics) = g.call("GET", "/metrics", None, None).await;
    let text = metrics.as_str().unwrap();
    assert!(text.contains("countersign_decisions_total{outcome=\"allowed\"} 1"), "{text}");
    assert!(text.contains("countersign_time_to_decision_seconds"), "{text}");
    let (status, body) = g.call("GET", "/v1/nowhere", Some("bot"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
