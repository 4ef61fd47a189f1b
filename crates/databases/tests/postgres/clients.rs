//! What agents see through real clients.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::support::Harness;

async fn refused(conninfo: &str) -> tokio_postgres::Error {
    match tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await {
        Ok(_) => panic!("logged in with {conninfo}"),
        Err(e) => e,
    }
}

fn code(e: &tokio_postgres::Error) -> Option<SqlState> {
    e.as_db_error().map(|d| d.code().clone())
}

#[tokio::test]
async fn routine_reads_run_and_stream_results_back() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    // The simple protocol, several statements at once.
    let rows = bot.simple_query("SELECT item FROM orders ORDER BY id; SELECT 42").await.unwrap();
    let items: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(items, ["apple", "pear", "fig", "42"]);
    // Judged as PostgreSQL reads it (the gateway knows the resource's
    // dialect), so PostgreSQL's own syntax is as routine as any read.
    let rows = bot.simple_query("SELECT $$a;b$$ || E'\\x41' AS x").await.unwrap();
    assert!(matches!(&rows[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("a;bA")), "{rows:?}");
    // The extended protocol: a prepared statement with a binary parameter, reused.
    let statement = bot.prepare("SELECT item FROM orders WHERE id = $1").await.unwrap();
    for (id, item) in [(1, "apple"), (3, "fig"), (2, "pear")] {
        let row = bot.query_one(&statement, &[&id]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), item);
    }
    // Each statement was decided, and its outcome recorded.
    let requests = h.requests().await;
    let decided: Vec<&str> = requests.iter().filter_map(|r| r["payload"]["statement"].as_str()).collect();
    assert!(decided.contains(&"SELECT item FROM orders ORDER BY id"), "{decided:?}");
    assert!(decided.contains(&"SELECT 42"));
    assert_eq!(decided.iter().filter(|s| **s == "SELECT item FROM orders WHERE id = $1").count(), 3);
    let with_param = requests.iter().find(|r| r["payload"]["parameters"][0]["binary"] == "00000003").unwrap();
    assert_eq!(with_param["status"], "allowed");
    assert_eq!(with_param["payload"]["dialect"], "postgres");
    countersign_testkit::wait::eventually("outcomes are recorded", || async {
        let requests = h.requests().await;
        requests.iter().filter(|r| r["status"] == "allowed").all(|r| {
            r["outcome"]["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("SELECT 1 in") || s.starts_with("SELECT 3 in"))
        })
    })
    .await;
}

#[tokio::test]
async fn a_forbidden_statement_is_refused_and_aborts_the_transaction_as_an_error_would() {
    let h = Harness::start().await;
    let bot = h.connect("ci-bot").await;
    let e = bot.simple_query("DROP TABLE orders").await.unwrap_err();
    assert_eq!(code(&e), Some(SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    let db = e.as_db_error().unwrap();
    assert!(db.message().contains("denied"), "{}", db.message());
    assert!(db.detail().unwrap().contains("no-drop"), "{:?}", db.detail());
    assert_eq!(h.count().await, 3);

    // Inside a transaction block, the refusal aborts it like any error.
    bot.batch_execute("BEGIN; INSERT INTO orders VALUES (4, 'kiwi')").await.unwrap();
    let e = bot.batch_execute("DROP TABLE orders").await.unwrap_err();
    assert_eq!(code(&e), Some(SqlState::INSUFFICIENT_PRIVILEGE));
    let e = bot.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(code(&e), Some(SqlState::IN_FAILED_SQL_TRANSACTION), "{e}");
    bot.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(h.count().await, 3);

    // The extended protocol gets the same refusal.
    let e = bot.execute("DROP TABLE orders", &[]).await.unwrap_err();
    assert_eq!(code(&e), Some(SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    // And the session goes on.
    assert_eq!(bot.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get::<_, i64>(0), 3);
}

#[tokio::test]
async fn a_held_statement_waits_and_runs_once_approved() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    let running = tokio::spawn(async move { bot.execute("DELETE FROM orders", &[]).await });
    let id = h.pending("DELETE FROM orders").await;
    assert_eq!(h.count().await, 3, "nothing runs before the approval");
    // The database's estimate of the damage is on the request (and card).
    let request = h.requests().await.into_iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(
        request["context"]["impact_preview"],
        serde_json::json!({"source": "EXPLAIN", "plan": "Delete on orders", "estimated_rows": 3})
    );
    let (status, body) = h.gateway.approve("carol", &id).await;
    assert!(status.is_success(), "{body}");
    let deleted = tokio::time::timeout(Duration::from_secs(20), running).await.unwrap().unwrap().unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(h.count().await, 0);
    countersign_testkit::wait::eventually("the outcome is recorded", || async {
        h.gateway.status_of(&id).await == "released"
            && h.requests().await.iter().any(|r| {
                r["id"] == id.as_str() && r["outcome"]["summary"].as_str().is_some_and(|s| s.starts_with("DELETE 3"))
            })
    })
    .await;
}

#[tokio::test]
async fn a_denied_hold_is_an_error_and_nothing_runs() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    let running = tokio::spawn(async move { bot.batch_execute("DELETE FROM orders").await });
    let id = h.pending("DELETE FROM orders").await;
    let (status, body) = h.gateway.deny("dave", &id).await;
    assert!(status.is_success(), "{body}");
    let e = tokio::time::timeout(Duration::from_secs(20), running).await.unwrap().unwrap().unwrap_err();
    assert_eq!(code(&e), Some(SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    assert_eq!(h.count().await, 3);
}

#[tokio::test]
async fn a_cancel_request_withdraws_a_held_statement() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    let token = bot.cancel_token();
    let running = tokio::spawn(async move { bot.batch_execute("DELETE FROM orders").await });
    let id = h.pending("DELETE FROM orders").await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), running).await.unwrap().unwrap().unwrap_err();
    assert_eq!(code(&e), Some(SqlState::QUERY_CANCELED), "{e}");
    countersign_testkit::wait::eventually("the request is cancelled", || async {
        h.gateway.status_of(&id).await == "cancelled"
    })
    .await;
    assert_eq!(h.count().await, 3);
}

#[tokio::test]
async fn a_wrong_or_revoked_credential_gets_nothing() {
    let h = Harness::start().await;
    let wrong = format!(
        "host=127.0.0.1 port={} user=bot dbname={} password=csa_{} sslmode=disable",
        h.port,
        h.database,
        "0".repeat(64)
    );
    let e = refused(&wrong).await;
    assert_eq!(code(&e), Some(SqlState::INVALID_PASSWORD), "{e}");
    // Someone else's key under this name.
    let other = format!(
        "host=127.0.0.1 port={} user=bot dbname={} password={} sslmode=disable",
        h.port,
        h.database,
        h.gateway.token("ci-bot")
    );
    let e = refused(&other).await;
    assert_eq!(code(&e), Some(SqlState::INVALID_PASSWORD), "{e}");
    // Another database than the one served.
    let elsewhere = format!(
        "host=127.0.0.1 port={} user=bot dbname=postgres password={} sslmode=disable",
        h.port,
        h.gateway.token("bot")
    );
    let e = refused(&elsewhere).await;
    assert_eq!(code(&e), Some(SqlState::INVALID_CATALOG_NAME), "{e}");

    // Revoked mid-session: the next statement ends the session.
    let bot = h.connect("bot").await;
    bot.simple_query("SELECT 1").await.unwrap();
    h.gateway.state.revoke_agent("bot", "user:adam").await.unwrap();
    let e = bot.simple_query("SELECT 1").await.unwrap_err();
    assert!(e.to_string().contains("no longer accepted") || bot.is_closed(), "{e}");
    // The same through the extended protocol, decided at `Execute`: the
    // credential is checked before every statement, however it comes.
    let ci = h.connect("ci-bot").await;
    ci.query("SELECT item FROM orders WHERE id = $1", &[&1i32]).await.unwrap();
    h.gateway.state.revoke_agent("ci-bot", "user:adam").await.unwrap();
    let e = ci.query("SELECT item FROM orders WHERE id = $1", &[&1i32]).await.unwrap_err();
    assert!(e.to_string().contains("no longer accepted") || ci.is_closed(), "{e}");

    // Sessions are audited, with how they ended.
    countersign_testkit::wait::eventually("the session's end is audited", || async {
        let audit = h.gateway.audit().await;
        let opened = audit.iter().filter(|e| e.kind == "database.session_opened" && e.actor == "agent:bot").count();
        let closed =
            audit.iter().find(|e| e.kind == "database.session_closed" && e.body.contains(r#""ended_by":"credential""#));
        opened == 1 && closed.is_some_and(|e| e.body.contains(r#""statements":1"#))
    })
    .await;
}

#[tokio::test]
async fn psql_shows_the_hold_and_the_result() {
    let h = Harness::start().await;
    let conninfo = h.conninfo("bot");
    let psql = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .arg(conninfo)
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-c", "DELETE FROM orders"])
            .output()
            .unwrap()
    });
    let id = h.pending("DELETE FROM orders").await;
    h.gateway.approve("erin", &id).await;
    let out = tokio::time::timeout(Duration::from_secs(30), psql).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "NOTICE:  countersign is holding this statement on `orders-db` for approval: request {id}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("policy `deletes-need-a-dba` asks dba (1 approval)"), "{stderr}");
    assert!(stderr.contains("Impact preview: Delete on orders: about 3 rows"), "{stderr}");
    assert!(stderr.contains(&format!("/console/requests/{id}")), "{stderr}");
    assert_eq!(stdout.trim(), "DELETE 3");
}

#[tokio::test]
async fn a_hold_that_expires_is_an_error_and_nothing_runs() {
    let clock = std::sync::Arc::new(countersign_testkit::ManualClock::starting_now());
    let h = Harness::with(crate::support::Setup { clock: Some(clock.clone()), ..Default::default() }).await;
    let bot = h.connect("bot").await;
    let running = tokio::spawn(async move { bot.batch_execute("DELETE FROM orders").await });
    let id = h.pending("DELETE FROM orders").await;
    clock.advance(Duration::from_secs(31 * 60));
    h.gateway.state.expire_due().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), running).await.unwrap().unwrap().unwrap_err();
    assert_eq!(code(&e), Some(SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    assert!(e.as_db_error().unwrap().message().contains("expired"), "{e}");
    assert_eq!(h.gateway.status_of(&id).await, "expired");
    assert_eq!(h.count().await, 3);
}
