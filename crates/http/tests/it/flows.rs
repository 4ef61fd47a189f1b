//! The approval loop through the proxy, with the real upstream: allowed
//! (streamed back, outcome recorded), denied, held then approved or
//! denied, `Prefer: respond-async`, and a key revoked mid-stream.

use std::time::{Duration, Instant};

use countersign_core::{OutcomeStatus, Timestamp};
use countersign_testkit::audit::bodies;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::support::{python_peers, Proxy};

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_get_is_forwarded_and_its_outcome_recorded() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    let response = client.get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["countersign-request"].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({"id": "1", "name": "first"}));

    let request = proxy.with_outcome(&id).await;
    assert_eq!(request.status.as_str(), "allowed");
    assert_eq!(request.policies, ["items-reads-routine"]);
    let outcome = request.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    assert_eq!(outcome.summary.as_deref(), Some(format!("HTTP 200; {} bytes", body.len()).as_str()));
    assert_eq!(outcome.output_sha256.as_deref(), Some(hex::encode(Sha256::digest(&body)).as_str()));
    // The decision and the outcome are in the audit log, which verifies.
    let reported = bodies(proxy.kit.store.as_ref(), "outcome.reported").await;
    assert!(reported.iter().any(|b| b["id"] == id.as_str()), "{reported:?}");
    let created = proxy.audit_text().await;
    assert!(created.contains(&id) && created.contains("\"/items/1\""), "{created}");

    // A 404 from the API is passed back as such, and recorded as failed.
    let response = client.get(proxy.url("/items/nope")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let id = response.headers()["countersign-request"].to_str().unwrap().to_owned();
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"detail": "no such item"}));
    let outcome = proxy.with_outcome(&id).await.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(outcome.summary.unwrap().starts_with("HTTP 404;"));
}

/// Reads the whole body chunk by chunk: the chunks and when each came.
async fn timed_chunks(mut response: reqwest::Response) -> Vec<(Duration, String)> {
    let start = Instant::now();
    let mut chunks = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks.push((start.elapsed(), String::from_utf8_lossy(&chunk).into_owned()));
    }
    chunks
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_and_chunked_responses_stream_back_as_they_come() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    let response = client
        .get(proxy.url("/events?count=4&every=0.4"))
        .header("accept", "text/event-stream")
        .bearer_auth(&proxy.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let id = response.headers()["countersign-request"].to_str().unwrap().to_owned();
    let chunks = timed_chunks(response).await;
    let text: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    for i in 0..4 {
        assert!(text.contains(&format!("data: tick {i}")), "{text}");
    }
    // The first event came well before the last: not buffered.
    let first = chunks.iter().find(|(_, c)| c.contains("tick 0")).unwrap().0;
    let last = chunks.iter().find(|(_, c)| c.contains("tick 3")).unwrap().0;
    assert!(last - first >= Duration::from_millis(800), "{chunks:?}");
    let outcome = proxy.with_outcome(&id).await.outcome.unwrap();
    assert_eq!(outcome.output_sha256.unwrap(), hex::encode(Sha256::digest(text.as_bytes())));

    let response = client.get(proxy.url("/chunks?count=3")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // The API's cookie (set for the gateway's credential) is not passed back.
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("content-length").is_none());
    let chunks = timed_chunks(response).await;
    let text: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(text, "chunk 0\nchunk 1\nchunk 2\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_request_gets_403_naming_the_policy_and_never_reaches_the_api() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    let response = client.delete(proxy.url("/items/protected")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "denied");
    assert_eq!(body["error"]["policies"], json!(["never-delete-protected"]));
    assert!(body["error"]["message"].as_str().unwrap().contains("never-delete-protected"), "{body}");
    // Not documented, so no permit matches: denied by default.
    let response = client.put(proxy.url("/items/1")).bearer_auth(&proxy.key).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "denied");
    assert_eq!(proxy.upstream.calls("DELETE /items/protected").await, 0);
    assert_eq!(proxy.upstream.calls("PUT /items/1").await, 0);
    // No key, a bad key: 401, never forwarded.
    let response = client.get(proxy.url("/items/1")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = client.get(proxy.url("/items/1")).bearer_auth("csa_nope").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(proxy.upstream.calls("GET /items/1").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_operations_decide_however_the_path_is_spelled() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    // `%70rotected` is `protected` to the API; the facts decode it too.
    for path in ["/items/%70rotected", "/items/protected?x=1", "/items/protected/"] {
        let response = client.delete(proxy.url(path)).bearer_auth(&proxy.key).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status == 403 || status == 400, "{path}: {status} {body}");
        if status == 403 {
            assert_eq!(body["error"]["policies"], json!(["never-delete-protected"]), "{path}");
        }
    }
    assert_eq!(proxy.upstream.calls("DELETE /items/protected").await, 0);
    // Another item is the same operation, not forbidden: it waits for an SRE.
    let response = client
        .delete(proxy.url("/items/2"))
        .bearer_auth(&proxy.key)
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let request = proxy.pending().await;
    assert_eq!(request.policies, ["items-writes-need-sre"]);
}

/// Sends `request` in the background; its status, headers and body.
fn in_background(
    request: reqwest::RequestBuilder,
) -> tokio::task::JoinHandle<(u16, reqwest::header::HeaderMap, String)> {
    tokio::spawn(async move {
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_runs_once_exactly_as_approved() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let client = countersign_testkit::client();
    let item = json!({"id": "42", "name": "answer"});
    let held = in_background(client.post(proxy.url("/items")).bearer_auth(&proxy.key).json(&item));
    let request = proxy.pending().await;
    assert_eq!(request.action.kind, "http.request");
    assert_eq!(request.action.payload["method"], "POST");
    assert_eq!(request.action.payload["body"], item);
    // Held: nothing reached the API yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished());
    assert_eq!(proxy.upstream.calls("POST /items").await, 0);
    let (status, body) = proxy.kit.approve("alice", &request.id).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, text) = held.await.unwrap();
    assert_eq!(status, 201, "{text}");
    assert_eq!(headers["countersign-request"], request.id.as_str());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), item);
    let seen = proxy.upstream.seen().await;
    assert_eq!(serde_json::from_str::<Value>(seen["body"].as_str().unwrap()).unwrap(), item);
    let stored = proxy.with_outcome(&request.id).await;
    assert_eq!(stored.status.as_str(), "released");
    assert_eq!(stored.outcome.unwrap().summary.unwrap(), format!("HTTP 201; {} bytes", text.len()));
    // Once: a second approval does not run it again.
    let _ = proxy.kit.approve("bob", &request.id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(proxy.upstream.calls("POST /items").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_that_is_denied_gets_403_and_never_runs() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let client = countersign_testkit::client();
    let held = in_background(client.delete(proxy.url("/items/1")).bearer_auth(&proxy.key));
    let request = proxy.pending().await;
    let (status, body) = proxy.kit.deny("alice", &request.id).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, text) = held.await.unwrap();
    assert_eq!(status, 403, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "denied");
    assert_eq!(body["error"]["request"], request.id.as_str());
    assert_eq!(proxy.upstream.calls("DELETE /items/1").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_while_held_withdraws_its_request() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let client = countersign_testkit::client();
    let held = in_background(client.delete(proxy.url("/items/1")).bearer_auth(&proxy.key));
    let request = proxy.pending().await;
    held.abort();
    let mut status = String::new();
    for _ in 0..100 {
        status = proxy.kit.status_of(&request.id).await;
        if status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");
    let _ = proxy.kit.approve("alice", &request.id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.upstream.calls("DELETE /items/1").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn respond_async_gets_202_and_collects_the_response_once() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let client = countersign_testkit::client();
    let item = json!({"id": "7", "name": "later"});
    let response = client
        .post(proxy.url("/items"))
        .bearer_auth(&proxy.key)
        .header("prefer", "respond-async")
        .json(&item)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["request"].as_str().unwrap().to_owned();
    assert_eq!(body["status"], "pending");
    assert_eq!(location, format!("/v1/http/results/{id}"));
    let result = format!("{}{location}", proxy.base);
    // Before the decision: 202 again.
    let waiting = client.get(&result).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(waiting.status(), 202);
    // Someone else cannot collect it.
    let other = client.get(&result).bearer_auth(proxy.kit.token("ci-bot")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(proxy.upstream.calls("POST /items").await, 0);
    let (status, _) = proxy.kit.approve("alice", &id).await;
    assert_eq!(status, 200);
    let started = Instant::now();
    let collected = loop {
        let response = client.get(&result).bearer_auth(&proxy.key).send().await.unwrap();
        if response.status() != 202 {
            break response;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(collected.status(), 201);
    assert_eq!(collected.json::<Value>().await.unwrap(), item);
    // Single use.
    let again = client.get(&result).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(proxy.upstream.calls("POST /items").await, 1);

    // Denied while the client is away: the refusal is what it collects.
    let response = client
        .delete(proxy.url("/items/7"))
        .bearer_auth(&proxy.key)
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    let id = response.json::<Value>().await.unwrap()["request"].as_str().unwrap().to_owned();
    let _ = proxy.kit.deny("alice", &id).await;
    let result = format!("{}/v1/http/results/{id}", proxy.base);
    let started = Instant::now();
    let collected = loop {
        let response = client.get(&result).bearer_auth(&proxy.key).send().await.unwrap();
        if response.status() != 202 {
            break response;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never decided");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(collected.status(), 403);
    assert_eq!(collected.json::<Value>().await.unwrap()["error"]["code"], "denied");
    assert_eq!(proxy.upstream.calls("DELETE /items/7").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_that_runs_out_turns_into_202_and_the_request_still_runs_once_approved() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("1s").await;
    let client = countersign_testkit::client();
    let response = client
        .post(proxy.url("/items"))
        .bearer_auth(&proxy.key)
        .json(&json!({"id": "8", "name": "slow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let id = body["request"].as_str().unwrap().to_owned();
    assert_eq!(proxy.kit.status_of(&id).await, "pending");
    let _ = proxy.kit.approve("alice", &id).await;
    let result = format!("{}/v1/http/results/{id}", proxy.base);
    let started = Instant::now();
    loop {
        let response = client.get(&result).bearer_auth(&proxy.key).send().await.unwrap();
        if response.status() == 201 {
            break;
        }
        assert_eq!(response.status(), 202);
        assert!(started.elapsed() < Duration::from_secs(20), "never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(proxy.upstream.calls("POST /items").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_mid_stream_cuts_the_stream() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    let mut response =
        client.get(proxy.url("/events?count=40&every=0.25")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["countersign-request"].to_str().unwrap().to_owned();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("tick 0"));
    proxy.kit.store.revoke_agent("bot", Timestamp::now(), Vec::new()).await.unwrap();
    let revoked = Instant::now();
    let mut text = String::new();
    let ended_with_error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(ended_with_error, "the stream ended cleanly: {text}");
    assert!(revoked.elapsed() < Duration::from_secs(4), "cut after {:?}", revoked.elapsed());
    assert!(!text.contains("tick 39"));
    let outcome = proxy.with_outcome(&id).await.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(outcome.summary.unwrap().contains("no longer accepted"));
    // And the key opens nothing more.
    let response = client.get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_while_its_request_is_held_ends_it_unrun() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let client = countersign_testkit::client();
    let held = in_background(client.delete(proxy.url("/items/1")).bearer_auth(&proxy.key));
    let request = proxy.pending().await;
    proxy.kit.store.revoke_agent("bot", Timestamp::now(), Vec::new()).await.unwrap();
    // An approval that comes anyway does not run it.
    let _ = proxy.kit.approve("alice", &request.id).await;
    let (status, _, text) = tokio::time::timeout(Duration::from_secs(20), held).await.unwrap().unwrap();
    assert!(status == 403 || status == 401, "{status} {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(matches!(body["error"]["code"].as_str(), Some("revoked" | "unauthenticated")), "{body}");
    assert_eq!(proxy.kit.status_of(&request.id).await, "revoked");
    assert_eq!(proxy.upstream.calls("DELETE /items/1").await, 0);
}
