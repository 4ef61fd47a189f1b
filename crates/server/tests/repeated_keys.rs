//! A body that repeats a key in any object, at any depth, is refused with
//! the same `invalid_json` error as a repeated top-level field: otherwise
//! the gate would decide on the last copy while something downstream may
//! run the first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use countersign_testkit::gateway;
use serde_json::json;

#[tokio::test]
async fn a_repeated_key_anywhere_in_a_submission_is_refused() {
    let g = gateway().await;
    let token = Some(g.token("bot"));
    let refused = [
        // The top level, as before.
        r#"{"kind":"shell.exec","kind":"shell.exec","resource":"staging-web","payload":{"command":"ls"}}"#,
        // Depth 1 inside the payload.
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"command":"rm -rf /","command":"ls"}}"#,
        // Depth 2.
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"env":{"A":"1","A":"2"},"command":"ls"}}"#,
        // Depth 5.
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"a":{"b":{"c":{"d":{"e":1,"e":2}}}}}}"#,
        // Objects inside arrays.
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"steps":[{"run":"ls"},{"run":"rm -rf /","run":"ls"}]}}"#,
        r#"{"kind":"shell.exec","resource":"staging-web","payload":[[{"x":1,"x":1}]]}"#,
        // Equal once unescaped.
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"comm\u0061nd":"rm -rf /","command":"ls"}}"#,
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"command":"ls","\u0063\u006f\u006d\u006d\u0061\u006e\u0064":"rm -rf /"}}"#,
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"a\/b":1,"a/b":2}}"#,
        // A repeated top-level field spelt differently.
        r#"{"kind":"shell.exec","resource":"staging-web","resourc\u0065":"prod-web"}"#,
    ];
    for body in refused {
        let (status, reply) = g.call_raw("POST", "/v1/actions", token.clone(), Some(body.to_owned())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_json", "{body}: {reply}");
    }
    assert_eq!(g.refusals_accounted("request.rejected", "agent:bot").await, refused.len() as u64);

    // Distinct keys, including ones equal only up to case or repeated in
    // sibling objects, are accepted.
    let accepted = [
        json!({"kind": "shell.exec", "resource": "staging-web", "payload": {"command": "ls", "Command": "x"}}),
        json!({"kind": "shell.exec", "resource": "staging-web", "payload": {"a": {"k": 1}, "b": {"k": 1}, "c": [{"k": 1}, {"k": 2}]}}),
    ];
    for body in accepted {
        let (status, reply) = g.call("POST", "/v1/actions", Some("bot"), Some(body.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {reply}");
    }
}

#[tokio::test]
async fn every_json_body_is_held_to_it() {
    let g = gateway().await;
    let id = g.submit("bot", json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"command": "ls"}})).await
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, reply) = g
        .call_raw(
            "POST",
            &format!("/v1/actions/{id}/approve"),
            Some(g.token("alice")),
            Some(r#"{"comment":"fine","comment":"rm -rf / is fine"}"#.to_owned()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_json");
    assert_eq!(g.status_of(&id).await, "pending", "the approval was not taken");
}

/// Found by fuzzing `has_duplicate_keys`: serde_json (with the `raw_value`
/// feature axum turns on) reads `{"$serde_json::private::RawValue": "…"}`
/// as the JSON inside the string, so the gate would decide on text that no
/// key check and no depth bound saw, and that every other parser reads as
/// an object holding a string.
#[tokio::test]
async fn keys_the_json_parser_reserves_are_refused() {
    let g = gateway().await;
    let token = Some(g.token("bot"));
    let mut deep = "1".to_owned();
    for _ in 0..8 {
        let inner = format!("{}{deep}{}", "[".repeat(60), "]".repeat(60));
        deep = format!(r#"{{"$serde_json::private::RawValue":{}}}"#, serde_json::to_string(&inner).unwrap());
    }
    let refused = [
        // A repeated key, hidden in a string.
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"$serde_json::private::RawValue":"{\"command\":\"ls\",\"command\":\"rm -rf /\"}"}}"#.to_owned(),
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"\u0024serde_json::private::RawValue":"{\"command\":\"ls\"}"}}"#.to_owned(),
        r#"{"kind":"shell.exec","resource":"staging-web","payload":{"$serde_json::private::Number":"1"}}"#.to_owned(),
        // 480 levels, to a scan of the text 2.
        format!(r#"{{"kind":"shell.exec","resource":"staging-web","payload":{deep}}}"#),
    ];
    for body in &refused {
        let (status, reply) = g.call_raw("POST", "/v1/actions", token.clone(), Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.120}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_json", "{body:.120}: {reply}");
    }
    let (status, reply) = g
        .call(
            "POST",
            "/v1/actions",
            Some("bot"),
            Some(json!({"kind": "shell.exec", "resource": "staging-web", "payload": {"command": "echo '$serde_json::private::RawValue'"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "as data it is fine: {reply}");
}
