//! The scenarios each client library runs (see `tests/pg-peers`), checked
//! the same way whichever client ran them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::peers::Client;
use crate::support::Harness;

/// What the prepared-statement scenarios fetch: ids 1, 2, 3, 1, … (25).
fn cycled_items() -> Vec<&'static str> {
    (0..25).map(|i| ["apple", "pear", "fig"][i % 3]).collect()
}

fn statuses_of<'a>(requests: &'a [Value], statement: &str) -> Vec<&'a str> {
    requests.iter().filter(|r| r["payload"]["statement"] == statement).filter_map(|r| r["status"].as_str()).collect()
}

/// The notice the client printed for the held request `id`.
fn assert_notified(client: Client, out: &Value, id: &str) {
    let expected = format!("countersign is holding this statement on `orders-db` for approval: request {id}");
    let notices = out["notices"].as_array().unwrap();
    assert!(notices.iter().any(|n| n.as_str().is_some_and(|n| n.contains(&expected))), "{client:?}: {notices:?}");
}

/// Allowed reads return the rows, in text and binary formats, and a bound
/// parameter is decided with the statement.
pub async fn reads(client: Client) {
    if !client.available() {
        return;
    }
    let h = Harness::start().await;
    let out = client.run(&h.url("bot"), "read").await;
    let rows = json!([[1, "apple"], [2, "pear"], [3, "fig"]]);
    assert_eq!(out["rows"], rows, "{client:?}: {out}");
    if client == Client::Psycopg {
        assert_eq!(out["binary_rows"], rows, "{out}");
    }
    assert_eq!(out["param"], "pear", "{client:?}: {out}");
    let requests = h.requests().await;
    let bound = requests
        .iter()
        .find(|r| r["payload"]["statement"] == "SELECT item FROM orders WHERE id = $1")
        .unwrap_or_else(|| panic!("{client:?}: the bound statement was not decided: {requests:?}"));
    assert_eq!(bound["status"], "allowed");
    assert_eq!(bound["payload"]["parameters"].as_array().map(Vec::len), Some(1), "{bound}");
}

/// One server-side prepared statement, executed many times: each
/// execution is decided, and each returns its own row.
pub async fn prepared(client: Client) {
    if !client.available() {
        return;
    }
    let h = Harness::start().await;
    let out = client.run(&h.url("bot"), "prepared").await;
    assert_eq!(out["items"], json!(cycled_items()), "{client:?}: {out}");
    // Prepared once, on the server, through the gateway's session.
    assert_eq!(out["server_prepared"], 1, "{client:?}: {out}");
    let requests = h.requests().await;
    let decided = statuses_of(&requests, "SELECT item FROM orders WHERE id = $1");
    assert_eq!(decided, vec!["allowed"; 25], "{client:?}: each execution is decided");
}

/// A forbidden statement gets SQLSTATE 42501 naming the policy; nothing
/// runs, and the session goes on.
pub async fn forbidden(client: Client) {
    if !client.available() {
        return;
    }
    let h = Harness::start().await;
    let out = client.run(&h.url("bot"), "drop").await;
    assert_eq!(out["sqlstate"], "42501", "{client:?}: {out}");
    assert!(out["message"].as_str().is_some_and(|m| m.contains("denied")), "{client:?}: {out}");
    assert!(out["detail"].as_str().is_some_and(|d| d.contains("no-drop")), "{client:?}: {out}");
    if client == Client::Asyncpg {
        assert_eq!(out["simple"]["sqlstate"], "42501", "{out}");
    }
    assert_eq!(out["after"], 3, "{client:?}: the session goes on: {out}");
    assert_eq!(h.count().await, 3);
    let requests = h.requests().await;
    assert!(statuses_of(&requests, "DROP TABLE orders").iter().all(|s| *s == "denied"), "{requests:?}");
}

/// A held `DELETE` waits, announced by a notice, and runs once approved.
pub async fn held_then_approved(client: Client) {
    if !client.available() {
        return;
    }
    let h = Harness::start().await;
    let url = h.url("bot");
    let running = tokio::spawn(async move { client.run(&url, "delete").await });
    let id = h.pending("DELETE FROM orders").await;
    assert_eq!(h.count().await, 3, "{client:?}: nothing runs before the approval");
    let (status, body) = h.gateway.approve("carol", &id).await;
    assert!(status.is_success(), "{body}");
    let out = tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap();
    assert_eq!(out["deleted"], 3, "{client:?}: {out}");
    assert_notified(client, &out, &id);
    assert_eq!(h.count().await, 0);
    countersign_testkit::wait::eventually("the request is released", || async {
        h.gateway.status_of(&id).await == "released"
    })
    .await;
}

/// A held statement inside a transaction block: the block waits with it,
/// goes on once it is approved, and commits.
pub async fn held_in_a_transaction(client: Client) {
    if !client.available() {
        return;
    }
    let h = Harness::start().await;
    // `ci-bot` may write (and open transaction blocks); its unfiltered
    // delete still needs a dba.
    let url = h.url("ci-bot");
    let running = tokio::spawn(async move { client.run(&url, "transaction").await });
    let id = h.pending("DELETE FROM orders").await;
    assert_eq!(h.count().await, 3, "{client:?}: nothing is committed while the statement is held");
    let (status, body) = h.gateway.approve("carol", &id).await;
    assert!(status.is_success(), "{body}");
    let out = tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap();
    assert_eq!(out["deleted"], 4, "{client:?}: the delete saw the block's own insert: {out}");
    assert_eq!(out["inside"], 1, "{client:?}: {out}");
    assert_notified(client, &out, &id);
    let items: Vec<String> =
        h.direct.query("SELECT item FROM orders", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(items, ["lime"], "{client:?}: committed");
}
