//! Texts that would mean one thing to the proxy and another to the
//! database, and statements that would run another statement than the
//! one decided: each must be refused or decided on what really runs.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt as _;

use crate::raw::{bind, execute, log_in, log_in_with, msg, parse, read_until, sync};
use crate::support::{Harness, Setup};

fn query(out: &mut BytesMut, text: &[u8]) {
    let mut body = text.to_vec();
    body.push(0);
    msg(out, b'Q', &body);
}

/// The SQLSTATE and message of the first error among `seen`.
fn error(seen: &[(u8, Vec<u8>)]) -> Option<(String, String)> {
    let (_, body) = seen.iter().find(|(t, _)| *t == b'E')?;
    let field = |code: u8| {
        body.split(|&b| b == 0)
            .find(|f| f.first() == Some(&code))
            .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
    };
    Some((field(b'C').unwrap_or_default(), field(b'M').unwrap_or_default()))
}

/// Runs `text` as one simple query; what the server said up to `Z`.
async fn simple(s: &mut tokio::net::TcpStream, text: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = BytesMut::new();
    query(&mut out, text);
    s.write_all(&out).await.unwrap();
    read_until(s, b'Z').await
}

/// `sqlparser` reads `$_€$` as a placeholder and a name, PostgreSQL as
/// the start of a dollar-quoted string; and it reads the continuation of
/// an `E'…'` string as a plain string. Either way a `DELETE` hid inside
/// what looked like one read-only `SELECT`, allowed as routine.
#[tokio::test]
async fn a_statement_hidden_from_the_proxys_lexer_is_decided_as_what_it_is() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    for text in
        ["SELECT $_€$ , $a$ $_€$; DELETE FROM orders; SELECT 1 -- $a$", "SELECT E'x'\n'\\''; DELETE FROM orders; --'"]
    {
        let e = bot.simple_query(text).await.expect_err(text);
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"), "{text}: {e:?}");
        assert_eq!(h.count().await, 3, "{text}");
    }
    // The same texts are split into the statements PostgreSQL runs.
    let requests = h.requests().await;
    assert!(requests.iter().any(|r| r["payload"]["statement"] == "DELETE FROM orders"), "{requests:#?}");
    // A no-break space is part of a name to PostgreSQL: what is decided
    // keeps it, as the database runs it.
    bot.simple_query("SELECT 1 AS a\u{a0}; SELECT 2").await.unwrap();
    let requests = h.requests().await;
    assert!(requests.iter().any(|r| r["payload"]["statement"] == "SELECT 1 AS a\u{a0}"), "{requests:#?}");
}

/// In Shift-JIS a `\` can end a two-byte character, so `E'ぁ\'; DELETE …'`
/// is one string in UTF-8 and a `DELETE` in SJIS. The session always
/// speaks UTF-8, whatever the client asks for at login.
#[tokio::test]
async fn a_client_encoding_asked_for_at_login_does_not_change_how_statements_read() {
    let h = Harness::start().await;
    let (mut s, said) = log_in_with(&h, "bot", &[("client_encoding", "SJIS")]).await;
    let encoding = said
        .iter()
        .find(|(t, b)| *t == b'S' && b.starts_with(b"client_encoding\0"))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned());
    assert_eq!(encoding.as_deref(), Some("client_encoding\0UTF8\0"));
    let seen = simple(&mut s, "SELECT E'ぁ\\'; DELETE FROM orders; --'".as_bytes()).await;
    assert!(error(&seen).is_none(), "{:?}", error(&seen));
    assert_eq!(h.count().await, 3);
}

/// `standard_conforming_strings = off` makes `'\''` end where the proxy
/// reads a string going on, and a client encoding other than UTF-8 moves
/// where strings end too: statements that set them are refused, even for
/// an agent that may write.
#[tokio::test]
async fn settings_that_change_how_later_statements_read_are_refused() {
    let h = Harness::start().await;
    let ci = h.connect("ci-bot").await;
    for text in [
        "SET standard_conforming_strings = off",
        "set session STANDARD_CONFORMING_STRINGS to off",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'SJIS'",
        "RESET ALL; SET LOCAL client_encoding TO 'BIG5'",
    ] {
        let e = ci.simple_query(text).await.expect_err(text);
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"), "{text}: {e:?}");
    }
    // Still on: the DELETE below is one string, as the proxy reads it.
    let rows = ci.simple_query("SELECT '\\''; DELETE FROM orders; --'").await;
    assert!(rows.is_err() || h.count().await == 3);
    assert_eq!(h.count().await, 3);
}

/// A setting changed by computed SQL (which no text check can see) is
/// seen in the database's own report of it: the session ends before
/// another statement is read.
#[tokio::test]
async fn a_setting_changed_out_of_sight_ends_the_session() {
    let h = Harness::start().await;
    let ci = h.connect("ci-bot").await;
    let changed =
        ci.simple_query("DO $$ BEGIN EXECUTE 'SET standard_' || 'conforming_strings = of' || 'f'; END $$").await;
    let after = ci.simple_query("SELECT '\\''; DELETE FROM orders; --'").await;
    assert!(changed.is_err() || after.is_err(), "the session went on: {after:?}");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !ci.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the session is closed");
    assert_eq!(h.count().await, 3);
}

/// `EXECUTE p` would be decided on its own text, not on the statement it
/// runs: SQL `PREPARE` and `EXECUTE` are refused (the protocol's own
/// prepared statements are decided on their text).
#[tokio::test]
async fn sql_prepare_and_execute_are_refused() {
    let h = Harness::start().await;
    let ci = h.connect("ci-bot").await;
    for text in [
        "PREPARE p AS DELETE FROM orders WHERE id > 0",
        "EXECUTE p",
        "EXPLAIN ANALYZE EXECUTE p",
        "CREATE TABLE t AS EXECUTE p",
    ] {
        let e = ci.simple_query(text).await.expect_err(text);
        let db = e.as_db_error().expect("a database error");
        assert_eq!(db.code().code(), "42501", "{text}: {e:?}");
        assert!(db.message().contains("PREPARE"), "{text}: {}", db.message());
    }
    assert_eq!(h.count().await, 3);
    // Refused before any policy saw it, and recorded as a refusal.
    let audit = serde_json::to_string(&h.gateway.audit().await).unwrap();
    assert!(audit.contains("statement_refused_unread") && audit.contains("PREPARE p AS DELETE"), "{audit}");
    // The protocol's prepared statements still work.
    let row = ci.query_one("SELECT count(*) FROM orders WHERE id > $1", &[&0_i32]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);
}

/// A portal bound through the protocol is decided when it is executed;
/// SQL `FETCH` would run its statement (a `DELETE … RETURNING`) with only
/// `FETCH ALL FROM p` decided.
#[tokio::test]
async fn fetch_from_a_portal_bound_through_the_protocol_is_refused() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "ci-bot").await;
    for fetch in [&b"FETCH ALL FROM p"[..], b"MOVE FORWARD ALL IN \"p\"", b"FETCH ALL FROM U&\"\\0070\""] {
        let seen = simple(&mut s, b"BEGIN").await;
        assert!(error(&seen).is_none(), "{:?}", error(&seen));
        let mut out = BytesMut::new();
        parse(&mut out, "", "DELETE FROM orders RETURNING id");
        bind(&mut out, "p", "");
        sync(&mut out);
        s.write_all(&out).await.unwrap();
        let seen = read_until(&mut s, b'Z').await;
        assert!(error(&seen).is_none(), "{:?}", error(&seen));
        let seen = simple(&mut s, fetch).await;
        let (code, message) = error(&seen).expect("refused");
        assert_eq!(code, "42501", "{message}");
        assert!(message.contains("portal `p` is bound") || message.contains("Unicode escapes"), "{message}");
        simple(&mut s, b"COMMIT").await;
        assert_eq!(h.count().await, 3);
    }
}

/// A query of many statements is refused before any is decided (each
/// would be a request of its own); the session goes on.
#[tokio::test]
async fn a_query_of_too_many_statements_is_refused_whole() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "ci-bot").await;
    let text = "SELECT 1;".repeat(100_000) + "DELETE FROM orders WHERE id = 1";
    let seen = simple(&mut s, text.as_bytes()).await;
    let (code, message) = error(&seen).expect("refused");
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("more than 1000 statements"), "{message}");
    assert_eq!(h.count().await, 3);
    assert!(h.requests().await.is_empty(), "nothing was submitted");
    let seen = simple(&mut s, b"SELECT 1; SELECT 2").await;
    assert!(error(&seen).is_none(), "{:?}", error(&seen));
}

/// Where PostgreSQL's versions would split a text differently, or it
/// cannot be read at all, nothing of it is decided or run.
#[tokio::test]
async fn a_text_postgresql_versions_read_differently_is_refused() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "ci-bot").await;
    // PostgreSQL 14 reads `1e` as `1` and a name `e$a$`, so the `DELETE`
    // runs there; 15 rejects the text.
    let seen = simple(&mut s, b"SELECT 1e$a$; DELETE FROM orders; SELECT $a$").await;
    let (code, message) = error(&seen).expect("refused");
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("cannot be read"), "{message}");
    assert!(h.requests().await.is_empty(), "nothing was submitted");
    assert_eq!(h.count().await, 3);
}

/// Held: messages cut into one-byte TCP segments are read whole, and a
/// statement nested 30,000 parentheses deep fails closed (a refusal, no
/// overflowed stack); the gateway serves on.
#[tokio::test]
async fn split_messages_and_deep_nesting_fail_closed() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "bot").await;
    let mut out = BytesMut::new();
    query(&mut out, b"SELECT 1; DELETE FROM orders WHERE id = 1");
    for byte in out.iter() {
        s.write_all(&[*byte]).await.unwrap();
        s.flush().await.unwrap();
    }
    let seen = read_until(&mut s, b'Z').await;
    let (code, message) = error(&seen).expect("refused");
    assert_eq!(code, "42501", "{message}");
    let deep = format!("SELECT {}1{}", "(".repeat(30_000), ")".repeat(30_000));
    let seen = simple(&mut s, deep.as_bytes()).await;
    let (code, message) = error(&seen).expect("refused");
    assert_eq!(code, "42501", "{message}");
    let seen = simple(&mut s, b"SELECT count(*) FROM orders").await;
    assert!(error(&seen).is_none(), "{:?}", error(&seen));
    assert_eq!(h.count().await, 3);
}

/// The gateway's role may read the catalogs that hold password hashes
/// (its own among them): those reads are refused, however spelt.
#[tokio::test]
async fn the_credential_catalogs_are_not_routine_reads() {
    let h = Harness::start().await;
    let bot = h.connect("bot").await;
    for text in [
        "SELECT rolpassword FROM pg_authid WHERE rolname = current_user",
        "SELECT * FROM pg_catalog.\"pg_authid\"",
        "SELECT passwd FROM PG_SHADOW",
        "SELECT umoptions FROM pg_user_mappings",
        "SELECT * FROM U&\"pg\\005fauthid\"",
        "SHOW primary_conninfo",
        "SELECT subconninfo FROM pg_subscription",
    ] {
        let e = bot.simple_query(text).await.expect_err(text);
        let db = e.as_db_error().expect("a database error");
        assert_eq!(db.code().code(), "42501", "{text}: {e:?}");
        assert!(db.message().contains("refused"), "{text}: {}", db.message());
    }
}

/// A `DO` block can drop a prepared statement and prepare another under
/// its name by computed SQL: the proxy forgets what it knew, so `s1` is
/// not decided on its old text while it runs the new one.
#[tokio::test]
async fn a_statement_replaced_by_computed_sql_is_not_run_on_its_old_decision() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "ci-bot").await;
    let mut out = BytesMut::new();
    parse(&mut out, "s1", "SELECT 1");
    sync(&mut out);
    s.write_all(&out).await.unwrap();
    read_until(&mut s, b'Z').await;
    let seen = simple(
        &mut s,
        b"DO $$ BEGIN EXECUTE 'DEALLOCATE s1'; EXECUTE 'PREP' || 'ARE s1 AS DELETE FROM orders RETURNING 1'; END $$",
    )
    .await;
    assert!(error(&seen).is_none(), "{:?}", error(&seen));
    let mut out = BytesMut::new();
    bind(&mut out, "", "s1");
    execute(&mut out, "");
    sync(&mut out);
    s.write_all(&out).await.unwrap();
    let seen = read_until(&mut s, b'Z').await;
    let (code, message) = error(&seen).expect("refused");
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("did not see prepared"), "{message}");
    assert_eq!(h.count().await, 3);
}

/// One agent cannot take every connection the database has: past
/// `max_sessions_per_principal` its logins are refused (`53300`, as
/// PostgreSQL's own per-role limit), others still log in, and a closed
/// session gives its place back.
#[tokio::test]
async fn one_principal_cannot_hold_every_connection() {
    let h = Harness::with(Setup { extra: "max_sessions_per_principal = 2\n", ..Setup::default() }).await;
    let first = h.connect("bot").await;
    let _second = h.connect("bot").await;
    let e = match tokio_postgres::connect(&h.conninfo("bot"), tokio_postgres::NoTls).await {
        Ok(_) => panic!("a third session was opened"),
        Err(e) => e,
    };
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("53300"), "{e:?}");
    let audit = serde_json::to_string(&h.gateway.audit().await).unwrap();
    assert!(audit.contains("too_many_sessions") && audit.contains("agent:bot"), "the refusal is audited: {audit}");
    let ci = h.connect("ci-bot").await;
    ci.simple_query("SELECT 1").await.unwrap();
    drop(first);
    countersign_testkit::wait::eventually("the place is given back", || async {
        tokio_postgres::connect(&h.conninfo("bot"), tokio_postgres::NoTls).await.is_ok()
    })
    .await;
}

/// Startup parameters that would change what statements mean (`options`,
/// `search_path`, `standard_conforming_strings`, `role`, `replication`)
/// never reach the database, and `application_name` cannot pass one
/// principal off as another in the database's own view.
#[tokio::test]
async fn startup_parameters_do_not_change_the_session() {
    let h = Harness::start().await;
    let (mut s, _) = log_in_with(
        &h,
        "ci-bot",
        &[
            ("options", "-c search_path=evil -c standard_conforming_strings=off"),
            ("search_path", "evil"),
            ("standard_conforming_strings", "off"),
            ("role", "pg_read_server_files"),
            ("replication", "database"),
            ("application_name", "countersign-preview"),
        ],
    )
    .await;
    let seen = simple(
        &mut s,
        b"SELECT current_setting('search_path'), current_setting('application_name'), current_setting('role'); SHOW standard_conforming_strings",
    )
    .await;
    assert!(error(&seen).is_none(), "{:?}", error(&seen));
    let rows: Vec<String> =
        seen.iter().filter(|(t, _)| *t == b'D').map(|(_, r)| String::from_utf8_lossy(r).into_owned()).collect();
    let row = rows.join(" | ");
    assert!(
        row.contains("\"$user\", public") && row.contains("on") && row.contains("ci-bot: countersign-preview"),
        "{row}"
    );
    assert!(!row.contains("evil") && !row.contains("pg_read_server_files"), "{row}");
}
