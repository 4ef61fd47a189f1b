//! Refused calls cost the gateway little: each record is bounded whatever
//! the client sent, repeated refusals from one source are counted exactly
//! into one event, a source that keeps failing to authenticate is answered
//! 429 with `Retry-After`, and an authenticated agent from the same address
//! is not held back. The clock is moved by hand; nothing here waits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use countersign_audit::{AuditEvent, MAX_REFUSAL_BODY_BYTES};
use countersign_testkit::ManualClock;
use countersign_testkit::{gateway_configured, shell, Gateway, POLICY};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const ATTACKER: [u8; 4] = [192, 0, 2, 66];

async fn limited_gateway(burst: &str) -> (Gateway, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let env = [
        ("COUNTERSIGN_SERVER_UNAUTHENTICATED_BURST", burst),
        ("COUNTERSIGN_SERVER_UNAUTHENTICATED_PER_MINUTE", "60"),
        ("COUNTERSIGN_SERVER_REFUSAL_WINDOW", "60s"),
        ("COUNTERSIGN_SERVER_REFUSALS_RECORDED_PER_WINDOW", "1"),
        // Held 429s are tested on their own below; here they would only
        // make hundreds of calls slow.
        ("COUNTERSIGN_SERVER_RATE_LIMITED_DELAY", "0s"),
    ];
    (gateway_configured(POLICY, &env, clock.clone()).await, clock)
}

/// One call from `from`, with an optional bearer token and body.
async fn call_from(
    g: &Gateway,
    from: [u8; 4],
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Option<String>, Value) {
    let mut builder = Request::builder().method(method).uri(path).header("user-agent", "x".repeat(20_000));
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = match body {
        Some(body) => builder.header("content-type", "application/json").body(Body::from(body)).unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    };
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from((from, 40_000))));
    let response = g.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry_after, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn long_path(n: usize) -> String {
    format!("/v1/{}?q={}", "a".repeat(65_000), n)
}

fn aggregated(events: &[AuditEvent]) -> Vec<Value> {
    events.iter().filter(|e| e.kind == "refusals.aggregated").map(AuditEvent::body_value).collect()
}

#[tokio::test]
async fn refusal_records_are_bounded_whatever_the_input() {
    let (g, _clock) = limited_gateway("1000").await;
    let agent = g.token("bot");
    // Each from its own address, so each is recorded rather than counted.
    let cases: Vec<(String, Option<String>)> = vec![
        (long_path(0), None),
        ("/v1/actions".to_owned(), Some("x".repeat(60_000))),
        ("/v1/actions".to_owned(), Some(format!("csa_{}", "\\\"".repeat(7000)))),
        (format!("/v1/actions?{}", "%00".repeat(20_000)), Some(format!("csa_{}", "0".repeat(64)))),
    ];
    for (n, (path, token)) in cases.iter().enumerate() {
        let from = [198, 51, 100, u8::try_from(n).unwrap()];
        let (status, _, _) = call_from(&g, from, "GET", path, token.as_deref(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // An authenticated caller's refusals quote its input too (the 404 of a
    // 65 KB path, bad JSON).
    let (status, _, body) = call_from(&g, [198, 51, 100, 9], "GET", &long_path(1), Some(&agent), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.to_string().len() < 2048, "the 404 does not echo the whole path");
    let junk = format!("{{\"kind\": \"{}", "\u{7}".repeat(3000));
    let (status, _, _) = call_from(&g, [198, 51, 100, 10], "POST", "/v1/actions", Some(&agent), Some(junk)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let events = g.audit().await;
    let refused: Vec<&AuditEvent> = events.iter().filter(|e| e.kind == "request.rejected").collect();
    assert_eq!(refused.len(), 6, "each first refusal from a source is recorded");
    for event in refused {
        let size = event.body.len() + event.actor.len() + event.kind.len();
        assert!(event.body.len() <= MAX_REFUSAL_BODY_BYTES, "{} bytes: {}", size, event.body);
        assert!(size <= 2048);
    }
    let first = events.iter().find(|e| e.kind == "request.rejected").unwrap().body_value();
    assert_eq!(first["path_bytes"], 65_004);
    assert_eq!(first["path_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(first["source"], "198.51.100.0");
}

#[tokio::test]
async fn a_flood_from_one_source_is_limited_counted_exactly_and_spares_agents() {
    let (g, clock) = limited_gateway("5").await;
    let agent = g.token("bot");
    let mut answers = Vec::new();
    for n in 0..40 {
        let (status, retry_after, body) = call_from(&g, ATTACKER, "GET", &long_path(n), None, None).await;
        answers.push((status, retry_after, body));
    }
    // Five failed authentications, then 429s that say when to come back.
    assert!(answers[..5].iter().all(|(s, r, _)| *s == StatusCode::UNAUTHORIZED && r.is_none()));
    for (status, retry_after, body) in &answers[5..] {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after.as_deref(), Some("1"), "one attempt a second at 60 a minute");
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    // A bad token from a limited source is refused as limited too.
    let fake = format!("csa_{}", "0".repeat(64));
    let (status, _, _) = call_from(&g, ATTACKER, "GET", "/v1/actions", Some(&fake), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // An agent with a working key, from the same address, is not held back.
    let (status, _, body) =
        call_from(&g, ATTACKER, "POST", "/v1/actions", Some(&agent), Some(shell("staging-web").to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Another address is not limited.
    let (status, _, _) = call_from(&g, [203, 0, 113, 1], "GET", "/v1/actions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // After the advertised wait, the source is heard again.
    clock.advance(Duration::from_secs(1));
    let (status, _, _) = call_from(&g, ATTACKER, "GET", "/v1/actions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Only the first refusal was written; the rest waits for the window.
    let events = g.audit().await;
    let from_attacker = |e: &&AuditEvent| e.kind == "request.rejected" && e.body_value()["source"] == "192.0.2.66";
    assert_eq!(events.iter().filter(from_attacker).count(), 1);
    assert!(aggregated(&events).is_empty());

    // The window ends: one event with exact counts.
    clock.advance(Duration::from_secs(60));
    g.state.flush_refusals(false).await;
    let events = g.audit().await;
    let counts = aggregated(&events);
    let attacker = counts.iter().find(|b| b["source"] == "192.0.2.66").unwrap();
    assert_eq!(attacker["count"], 41, "39 flood calls, the bad token and the call after the wait");
    assert_eq!(attacker["reasons"]["rate_limited"], 36);
    assert_eq!(attacker["reasons"]["unauthenticated"], 5);
    assert_eq!(attacker["window_seconds"], 60);
    assert_eq!(attacker["first"], "2027-01-15T08:00:00Z");
}

#[tokio::test]
async fn limits_and_counters_are_in_the_metrics() {
    let (g, _clock) = limited_gateway("2").await;
    for n in 0..5 {
        call_from(&g, ATTACKER, "GET", &long_path(n), None, None).await;
    }
    g.state.flush_refusals(false).await;
    let request = Request::builder().uri("/metrics").body(Body::empty()).unwrap();
    let response = g.router.clone().oneshot(request).await.unwrap();
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        "countersign_limit_unauthenticated_burst 2",
        "countersign_limit_unauthenticated_per_minute 60",
        "countersign_limit_refusal_window_seconds 60",
        "countersign_limit_tracked_sources 10000",
        "countersign_limit_refusals_recorded_per_window 1",
        "countersign_rate_limited_total 3",
        "countersign_refusals_counted_total 4",
        "countersign_refusal_sources 1",
        "countersign_refusals_total{outcome=\"rate_limited\"} 3",
        "countersign_refusals_total{outcome=\"unauthenticated\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn store_growth_per_refused_call_is_small() {
    let (g, _clock) = limited_gateway("30").await;
    // Settle the store's own first writes.
    call_from(&g, ATTACKER, "GET", &long_path(0), None, None).await;
    let size = || {
        let db = g.config.database_path();
        let wal = db.with_extension("db-wal");
        std::fs::metadata(&db).map_or(0, |m| m.len()) + std::fs::metadata(&wal).map_or(0, |m| m.len())
    };
    let before = size();
    let calls = 500u64;
    for n in 0..calls {
        call_from(&g, ATTACKER, "GET", &long_path(usize::try_from(n).unwrap()), None, None).await;
    }
    g.state.flush_refusals(true).await;
    let grown = size().saturating_sub(before);
    assert!(grown / calls <= 2048, "{grown} bytes for {calls} refused calls");
}

#[tokio::test]
async fn deep_json_is_refused_at_the_edge() {
    let (g, _clock) = limited_gateway("30").await;
    let agent = g.token("bot");
    let nested = |open: &str, close: &str, depth: usize| {
        format!(
            r#"{{"kind":"shell.exec","resource":"staging-web","payload":{}1{}}}"#,
            open.repeat(depth),
            close.repeat(depth)
        )
    };
    for body in [
        nested("[", "]", 10_000),
        nested(r#"{"a":"#, "}", 10_000),
        nested("[", "]", 100),
        nested("[", "]", 40),
        nested(r#"{"a":"#, "}", 40),
    ] {
        let (status, _, reply) = call_from(&g, ATTACKER, "POST", "/v1/actions", Some(&agent), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert_eq!(reply["error"]["code"], "payload_too_deep", "{reply}");
    }
    // Within the limit, and wide: decided.
    let wide = format!(
        r#"{{"kind":"shell.exec","resource":"staging-web","payload":{{"argv":["echo"],"x":[{}]}}}}"#,
        vec!["[[1]]"; 20_000].join(",")
    );
    let (status, _, reply) = call_from(&g, ATTACKER, "POST", "/v1/actions", Some(&agent), Some(wide)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

#[tokio::test]
async fn a_limited_source_waits_for_its_429() {
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let env = [
        ("COUNTERSIGN_SERVER_UNAUTHENTICATED_BURST", "1"),
        ("COUNTERSIGN_SERVER_UNAUTHENTICATED_PER_MINUTE", "60"),
        ("COUNTERSIGN_SERVER_RATE_LIMITED_DELAY", "300ms"),
    ];
    let g = gateway_configured(POLICY, &env, clock).await;
    let (status, _, _) = call_from(&g, ATTACKER, "GET", "/v1/actions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the first failure is answered at once");
    let started = std::time::Instant::now();
    let (status, retry_after, _) = call_from(&g, ATTACKER, "GET", "/v1/actions", None, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    assert!(started.elapsed() >= Duration::from_millis(300), "answered after {:?}", started.elapsed());
}
