//! Webhooks: a receiver checks the signature and the CloudEvents envelope
//! of every state change, including redeliveries after it failed.

use std::sync::atomic::Ordering;

use countersign_core::Timestamp;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

/// What a receiver does: recompute the HMAC over "<t>.<body>" and compare
/// in constant time, reject old timestamps, then read the CloudEvent.
fn verify(header: &str, body: &str) -> Value {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => panic!("unexpected signature part `{part}` in `{header}`"),
        }
    }
    let t = t.expect("t=");
    let age = Timestamp::now().as_millis() / 1000 - t.parse::<i64>().unwrap();
    assert!((0..300).contains(&age), "signature timestamp {t} is {age}s old");
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1.expect("v1=")).unwrap()).expect("the signature verifies");
    let event: Value = serde_json::from_str(body).unwrap();
    // CloudEvents 1.0 required attributes, and the optional ones we promise.
    assert_eq!(event["specversion"], "1.0");
    for attribute in ["id", "source", "type", "subject", "time", "datacontenttype"] {
        assert!(event[attribute].as_str().is_some_and(|s| !s.is_empty()), "`{attribute}` missing: {event}");
    }
    assert!(Timestamp::parse_rfc3339(event["time"].as_str().unwrap()).is_ok());
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(event["source"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let kind = event["type"].as_str().unwrap().strip_prefix("dev.countersign.request.").expect("type prefix");
    assert_eq!(kind, event["data"]["event"], "type and data agree");
    assert_eq!(event["subject"], event["data"]["request"]["id"]);
    event
}

#[tokio::test]
async fn every_state_change_arrives_signed_in_a_cloudevent_even_after_failures() {
    let gw = gateway().await;
    // Approved, released and reported: pending → approval → approved → released → outcome.
    let first = gw.submit(shell("prod-web")).await;
    // The receiver fails the next three attempts; the outbox retries.
    gw.hook.state.fail_next.store(3, Ordering::SeqCst);
    let (status, _) = gw
        .api(reqwest::Method::POST, &format!("/v1/actions/{first}/approve"), "alice", Some(json!({"comment": "go"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(gw.api(reqwest::Method::POST, &format!("/v1/actions/{first}/release"), "bot", None).await.0, 200);
    let outcome = json!({"status": "succeeded", "exit_code": 0});
    assert_eq!(
        gw.api(reqwest::Method::POST, &format!("/v1/actions/{first}/outcome"), "bot", Some(outcome)).await.0,
        200
    );
    // Denied with a comment; cancelled; routine.
    let second = gw.submit(shell("prod-web")).await;
    let (status, _) = gw
        .api(
            reqwest::Method::POST,
            &format!("/v1/actions/{second}/comments"),
            "bob",
            Some(json!({"comment": "why now?"})),
        )
        .await;
    assert_eq!(status, 200);
    gw.api(reqwest::Method::POST, &format!("/v1/actions/{second}/deny"), "bob", Some(json!({"comment": "freeze"})))
        .await;
    let third = gw.submit(shell("prod-web")).await;
    assert_eq!(gw.api(reqwest::Method::POST, &format!("/v1/actions/{third}/cancel"), "bot", None).await.0, 200);
    let fourth = gw.submit(shell("staging-web")).await;
    let expected: Vec<(&str, &str)> = vec![
        (&first, "pending"),
        (&first, "approval"),
        (&first, "approved"),
        (&first, "released"),
        (&first, "outcome"),
        (&second, "pending"),
        (&second, "comment"),
        (&second, "denial"),
        (&second, "denied"),
        (&third, "pending"),
        (&third, "cancelled"),
        (&fourth, "allowed"),
    ];
    gw.eventually("every change delivered", || async {
        let received = gw.hook.state.received.lock().unwrap().len();
        received >= expected.len() + 3
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let received = gw.hook.state.received.lock().unwrap().clone();
    let mut delivered: Vec<(String, String)> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (signature, content_type, body) in &received {
        assert!(content_type.starts_with("application/cloudevents+json"), "{content_type}");
        let event = verify(signature, body);
        let id = event["id"].as_str().unwrap().to_owned();
        // Redeliveries repeat the same event id, so receivers can drop duplicates.
        if ids.last() == Some(&id) {
            continue;
        }
        ids.push(id);
        delivered
            .push((event["subject"].as_str().unwrap().to_owned(), event["data"]["event"].as_str().unwrap().to_owned()));
    }
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    assert_eq!(delivered, expected, "in order, each once");
    assert_eq!(received.len(), expected.len() + 3, "three failed attempts were retried");
    // The request snapshot and details: the approval names the approver.
    let approval = received
        .iter()
        .map(|(_, _, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|e| e["data"]["event"] == "approval")
        .unwrap();
    assert_eq!(approval["data"]["actor"], "user:alice");
    assert_eq!(approval["data"]["request"]["kind"], "shell.exec");
    // Every attempt is audited, failures included.
    let attempts: Vec<Value> =
        gw.audit_types().await.into_iter().filter(|(t, _)| t == "webhook.delivery").map(|(_, b)| b).collect();
    assert_eq!(attempts.len(), received.len());
    assert_eq!(attempts.iter().filter(|a| a["ok"] == false).count(), 3);
    assert!(attempts.iter().filter(|a| a["ok"] == false).all(|a| a["status"] == 500));
    assert!(attempts.iter().any(|a| a["attempt"] == 4 && a["ok"] == true), "{attempts:?}");
}

#[tokio::test]
async fn filters_and_giving_up_after_max_attempts() {
    let gw = gateway_with(Setup {
        webhook_events: Some(r#"["approved", "denied"]"#),
        webhook_max_attempts: Some(2),
        ..Setup::default()
    })
    .await;
    let first = gw.submit(shell("prod-web")).await;
    gw.hook.state.fail_next.store(2, Ordering::SeqCst);
    gw.api(reqwest::Method::POST, &format!("/v1/actions/{first}/approve"), "alice", Some(json!({}))).await;
    gw.eventually("two failed attempts", || async { gw.hook.state.received.lock().unwrap().len() == 2 }).await;
    let second = gw.submit(shell("prod-web")).await;
    gw.api(reqwest::Method::POST, &format!("/v1/actions/{second}/deny"), "bob", Some(json!({}))).await;
    gw.eventually("the next event still goes out", || async { gw.hook.state.received.lock().unwrap().len() == 3 })
        .await;
    let received = gw.hook.state.received.lock().unwrap().clone();
    let kinds: Vec<String> =
        received.iter().map(|(s, _, b)| verify(s, b)["data"]["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["approved", "approved", "denied"]);
}
