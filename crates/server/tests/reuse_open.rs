//! `POST /v1/actions?reuse=open`: the same action asked again by the same
//! caller is answered with its open request, never another caller's, never
//! one already released, and without a second request or a cancellation in
//! the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use countersign_testkit::{gateway, gateway_configured, shell, Gateway, ManualClock, POLICY};
use serde_json::{json, Value};

const REUSE: &str = "/v1/actions?reuse=open";

async fn ask(g: &Gateway, who: &str, action: Value) -> (StatusCode, Value) {
    g.call("POST", REUSE, Some(who), Some(action)).await
}

fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_owned()
}

async fn kinds_of(g: &Gateway, kind: &str) -> usize {
    g.audit().await.iter().filter(|e| e.kind == kind).count()
}

#[tokio::test]
async fn the_same_call_asked_twice_makes_one_request_and_no_cancellation() {
    let g = gateway().await;
    let (status, first) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "pending");
    assert!(first.get("reused").is_none(), "{first}");

    let (status, again) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["reused"], true);
    assert_eq!(id(&again), id(&first));
    assert_eq!(again["fingerprint"], first["fingerprint"]);
    assert_eq!(again["status"], "pending");
    assert_eq!(again["approval"]["requirements"][0]["groups"], json!(["sre"]));

    assert_eq!(kinds_of(&g, "action.submitted").await, 1);
    assert_eq!(kinds_of(&g, "action.cancelled").await, 0);
    let (_, list) = g.call("GET", "/v1/actions", Some("bot"), None).await;
    assert_eq!(list["actions"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn another_agent_with_the_same_payload_gets_its_own_request() {
    let g = gateway().await;
    let mine = id(&ask(&g, "bot", shell("prod-web")).await.1);
    let (status, theirs) = ask(&g, "ci-bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(id(&theirs), mine);
    assert!(theirs.get("reused").is_none());

    // Nor does a person who may approve the agent's request (owen owns
    // `bot` and is an sre) get it by asking for the same action.
    let (status, owens) = ask(&g, "owen", shell("prod-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{owens}");
    assert_ne!(id(&owens), mine);

    // Each asks again and finds its own.
    for (who, expected) in [("bot", mine.clone()), ("ci-bot", id(&theirs)), ("owen", id(&owens))] {
        let (status, body) = ask(&g, who, shell("prod-web")).await;
        assert_eq!((status, id(&body)), (StatusCode::OK, expected), "{who}: {body}");
    }
    // A different action of the same caller (other payload, other
    // `on_behalf_of`) is a different request.
    let other =
        json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"argv": ["systemctl", "restart", "api"]}});
    let (status, body) = ask(&g, "bot", other).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut behalf = shell("prod-web");
    behalf["on_behalf_of"] = json!("alice");
    let (status, body) = ask(&g, "bot", behalf).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn an_approved_request_is_handed_back_once_then_a_released_one_never() {
    let g = gateway().await;
    let first = id(&ask(&g, "bot", shell("prod-web")).await.1);
    let (status, body) = g.approve("alice", &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, again) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((id(&again), again["status"].as_str()), (first.clone(), Some("approved")));

    let (status, released) = g.call("POST", &format!("/v1/actions/{first}/release"), Some("bot"), None).await;
    assert_eq!((status, released["status"].as_str()), (StatusCode::OK, Some("released")), "{released}");

    // Released, not yet reported: not reused.
    let (status, fresh) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    assert_ne!(id(&fresh), first);
    assert_eq!(fresh["status"], "pending");

    // Executed and reported: the replay after it is a new request too.
    let outcome = json!({"status": "succeeded", "exit_code": 0});
    let (status, _) = g.call("POST", &format!("/v1/actions/{first}/outcome"), Some("bot"), Some(outcome)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, replay) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!((status, id(&replay)), (StatusCode::OK, id(&fresh)), "the open one, not the executed one: {replay}");
    assert_eq!(kinds_of(&g, "action.submitted").await, 2);
}

#[tokio::test]
async fn an_approved_request_is_preferred_to_a_pending_duplicate() {
    let g = gateway().await;
    // Two identical pending requests made without reuse.
    let older = id(&g.submit("bot", shell("prod-web")).await);
    let newer = id(&g.submit("bot", shell("prod-web")).await);
    assert_ne!(older, newer);
    let (status, again) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!((status, id(&again)), (StatusCode::OK, older.clone()), "the oldest open one");
    g.approve("alice", &newer).await;
    let (status, again) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!((status, id(&again)), (StatusCode::OK, newer), "the approved one first");
    assert_eq!(again["status"], "approved");
}

/// Issue 14: the lookup used to read the caller's 1,000 newest open
/// requests of the action's kind on its resource, per status; past them a
/// new request was made. It is now one lookup by fingerprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_open_request_is_found_past_a_thousand_newer_ones_of_that_kind() {
    const NEWER: usize = 1005;
    const TASKS: usize = 8;
    let g = Arc::new(gateway().await);
    let (status, first) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Newer open requests of the same kind on the same resource, other
    // payloads, from a few tasks at once.
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let g = g.clone();
            tokio::spawn(async move {
                for i in (t..NEWER).step_by(TASKS) {
                    let action = json!({"kind": "shell.exec", "resource": "prod-web",
                                        "payload": {"argv": ["systemctl", "restart", format!("unit-{i}")]}});
                    let (status, body) = g.call("POST", "/v1/actions", Some("bot"), Some(action)).await;
                    assert_eq!((status, body["status"].as_str()), (StatusCode::CREATED, Some("pending")), "{body}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let (status, again) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((id(&again), &again["reused"]), (id(&first), &json!(true)));
    assert_eq!(kinds_of(&g, "action.submitted").await, NEWER + 1, "nothing submitted twice");

    // Approved, it is still found, ahead of nothing else.
    let (status, body) = g.approve("alice", &id(&first)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, again) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!((status, id(&again), again["status"].as_str()), (StatusCode::OK, id(&first), Some("approved")));
}

#[tokio::test]
async fn allowed_and_denied_actions_are_decided_afresh_every_time() {
    let g = gateway().await;
    let (s1, a) = ask(&g, "bot", shell("staging-web")).await;
    let (s2, b) = ask(&g, "bot", shell("staging-web")).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("allowed"), Some("allowed")));
    assert_ne!(id(&a), id(&b), "an allowed action is single use");

    let drop = json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": "DROP TABLE users"}});
    let (s1, a) = ask(&g, "bot", drop.clone()).await;
    let (s2, b) = ask(&g, "bot", drop).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a["status"], "denied");
    assert_ne!(id(&a), id(&b));

    // A request denied by a person is closed: asking again opens a new one.
    let held = id(&ask(&g, "bot", shell("prod-web")).await.1);
    g.deny("alice", &held).await;
    let (status, body) = ask(&g, "bot", shell("prod-web")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(id(&body), held);
}

#[tokio::test]
async fn a_cancelled_or_expired_request_is_not_reused() {
    let clock = Arc::new(ManualClock::starting_now());
    let g = gateway_configured(POLICY, &[], clock.clone()).await;
    let first = id(&ask(&g, "bot", shell("short-fuse")).await.1);
    // Past its deadline, before the sweep has closed it.
    clock.advance(Duration::from_millis(1100));
    let (status, body) = ask(&g, "bot", shell("short-fuse")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = id(&body);
    assert_ne!(second, first);

    let (status, _) = g.call("POST", &format!("/v1/actions/{second}/cancel"), Some("bot"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = ask(&g, "bot", shell("short-fuse")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(id(&body), second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_submissions_racing_make_one_request() {
    let g = Arc::new(gateway().await);
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let g = g.clone();
            tokio::spawn(async move { ask(&g, "bot", shell("prod-web")).await })
        })
        .collect();
    let mut answers: Vec<(StatusCode, Value)> = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let reused = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((created, reused), (1, 15), "{answers:?}");
    let ids: std::collections::BTreeSet<String> = answers.iter().map(|(_, b)| id(b)).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(kinds_of(&g, "action.submitted").await, 1);
}

#[tokio::test]
async fn bad_reuse_values_are_refused() {
    let g = gateway().await;
    for query in
        ["reuse=yes", "reuse=", "reuse=OPEN", "reuse=open&reuse=open", "reuse=open&reuse=never", "reuse=open%00"]
    {
        let (status, body) =
            g.call("POST", &format!("/v1/actions?{query}"), Some("bot"), Some(shell("prod-web"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"]["code"].is_string(), "{query}: {body}");
    }
    let (status, _) = g.call("POST", "/v1/actions?reused=open", Some("bot"), Some(shell("prod-web"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown parameters are refused");
    // Nothing was stored by a refused call.
    assert_eq!(kinds_of(&g, "action.submitted").await, 0);
    // Anonymous callers are turned away before anything is looked up.
    let (status, _) = g.call("POST", REUSE, None, Some(shell("prod-web"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_describes_reuse() {
    let g = gateway().await;
    let (status, doc) = g.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let post = &doc["paths"]["/v1/actions"]["post"];
    let params = post["parameters"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "reuse" && p["in"] == "query"), "{post}");
    assert!(post["responses"]["200"].is_object(), "{post}");
    assert!(doc["components"]["schemas"]["SubmitResponse"]["properties"]["reused"].is_object());
}
