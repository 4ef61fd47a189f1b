//! Issue 9 §10: the pending list is filtered in the store and paged with a
//! cursor, so another agent's flood of requests for other groups cannot
//! push a person's decidable requests out of their list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use axum::http::StatusCode;
use countersign_testkit::{gateway, shell};
use serde_json::{json, Value};

const FLOOD: usize = 1000;

fn flood_action(i: usize) -> Value {
    json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": format!("DELETE FROM jobs WHERE id = {i}")}})
}

fn ids(body: &Value) -> Vec<String> {
    body["actions"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

/// Every page of `path` (which has a query already), as `who`.
async fn all_pages(g: &countersign_testkit::Gateway, who: &str, path: &str) -> (Vec<String>, usize) {
    let mut read = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            None => path.to_owned(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let (status, body) = g.call("GET", &url, Some(who), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        read.extend(ids(&body));
        pages += 1;
        assert!(pages <= FLOOD + 10, "the cursor must make progress");
        match body.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (read, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_for_another_group_does_not_hide_what_i_may_decide() {
    let g = gateway().await;
    // Older than the flood: one request the SREs decide.
    let mine = g.submit("bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    // The flood: 1,000 pending requests for `dba`.
    let mut flood = Vec::new();
    for i in 0..FLOOD {
        let answer = g.submit("ci-bot", flood_action(i)).await;
        assert_eq!(answer["status"], "pending", "{answer}");
        flood.push(answer["id"].as_str().unwrap().to_owned());
    }

    // alice (sre) sees her decidable request on the first page.
    let (status, body) = g.call("GET", "/v1/actions?status=pending", Some("alice"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), vec![mine.clone()], "the SRE's request is listed, the flood is not");
    assert!(body.get("next_cursor").is_none(), "one page holds it all: {body}");

    // carol (dba) pages through the whole flood, each request once.
    let (read, pages) = all_pages(&g, "carol", "/v1/actions?status=pending&limit=97").await;
    assert_eq!(read.len(), FLOOD, "every request once");
    assert_eq!(read.iter().collect::<BTreeSet<_>>().len(), FLOOD, "no request twice");
    assert_eq!(read.iter().collect::<BTreeSet<_>>(), flood.iter().collect::<BTreeSet<_>>());
    assert!(pages >= FLOOD / 97, "{pages} pages");

    // The requester sees its own; the auditor everything.
    let (own, _) = all_pages(&g, "bot", "/v1/actions?status=pending&limit=1000").await;
    assert_eq!(own, vec![mine.clone()]);
    let (everything, _) = all_pages(&g, "ann", "/v1/actions?status=pending&limit=1000").await;
    assert_eq!(everything.len(), FLOOD + 1);

    // A person in no approver group sees nothing, however many are pending.
    let (status, body) = g.call("GET", "/v1/actions?status=pending", Some("sam"), None).await;
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0), "{body}");

    // Once decided, it leaves alice's pending list.
    assert_eq!(g.approve("bob", &mine).await.0, StatusCode::OK);
    let (_, body) = g.call("GET", "/v1/actions?status=pending", Some("alice"), None).await;
    assert!(ids(&body).is_empty(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_this_gateway_did_not_give_is_refused() {
    let g = gateway().await;
    for cursor in ["nope", "c1zz", "c1", "c13132", "%00"] {
        let (status, body) = g.call("GET", &format!("/v1/actions?cursor={cursor}"), Some("alice"), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_cursor")),
            "{cursor}"
        );
    }
}

/// Excluded from deciding (the agent's owner) but in the group: the page
/// reads on past what the person may not decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_i_may_not_decide_do_not_fill_my_page() {
    let g = gateway().await;
    let decidable = g.submit("ci-bot", shell("prod-web")).await["id"].as_str().unwrap().to_owned();
    // owen owns `bot`, so may not decide its requests, though he is in sre.
    for _ in 0..30 {
        g.submit("bot", shell("prod-web")).await;
    }
    let (read, _) = all_pages(&g, "owen", "/v1/actions?status=pending&limit=5").await;
    assert_eq!(read, vec![decidable]);
}
