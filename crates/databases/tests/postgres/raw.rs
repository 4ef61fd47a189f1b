//! Protocol messages no client library sends, as an attacker would.

use std::time::Duration;

use bytes::{BufMut as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::Harness;

pub(crate) fn msg(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_i32(i32::try_from(body.len() + 4).unwrap());
    out.put_slice(body);
}

pub(crate) fn parse(out: &mut BytesMut, name: &str, sql: &str) {
    let mut body = BytesMut::new();
    body.put_slice(name.as_bytes());
    body.put_u8(0);
    body.put_slice(sql.as_bytes());
    body.put_u8(0);
    body.put_i16(0);
    msg(out, b'P', &body);
}

pub(crate) fn bind(out: &mut BytesMut, portal: &str, statement: &str) {
    let mut body = BytesMut::new();
    body.put_slice(portal.as_bytes());
    body.put_u8(0);
    body.put_slice(statement.as_bytes());
    body.put_u8(0);
    body.put_i16(0);
    body.put_i16(0);
    body.put_i16(0);
    msg(out, b'B', &body);
}

pub(crate) fn execute(out: &mut BytesMut, portal: &str) {
    let mut body = BytesMut::new();
    body.put_slice(portal.as_bytes());
    body.put_u8(0);
    body.put_i32(0);
    msg(out, b'E', &body);
}

pub(crate) fn close_statement(out: &mut BytesMut, name: &str) {
    let mut body = BytesMut::new();
    body.put_u8(b'S');
    body.put_slice(name.as_bytes());
    body.put_u8(0);
    msg(out, b'C', &body);
}

pub(crate) fn sync(out: &mut BytesMut) {
    msg(out, b'S', &[]);
}

/// Logs in as `who` and returns the stream once the server is ready.
pub(crate) async fn log_in(h: &Harness, who: &str) -> TcpStream {
    log_in_with(h, who, &[]).await.0
}

/// Logs in as `who` with more startup parameters; the stream once the
/// server is ready, and what it said while logging in.
pub(crate) async fn log_in_with(h: &Harness, who: &str, extra: &[(&str, &str)]) -> (TcpStream, Vec<(u8, Vec<u8>)>) {
    let mut s = TcpStream::connect(("127.0.0.1", h.port)).await.unwrap();
    let mut body = BytesMut::new();
    body.put_i32(0x0003_0000);
    for (k, v) in [("user", who), ("database", h.database.as_str())].into_iter().chain(extra.iter().copied()) {
        body.put_slice(k.as_bytes());
        body.put_u8(0);
        body.put_slice(v.as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut startup = BytesMut::new();
    startup.put_i32(i32::try_from(body.len() + 4).unwrap());
    startup.put_slice(&body);
    s.write_all(&startup).await.unwrap();
    let _ = read_until(&mut s, b'R').await;
    let mut password = BytesMut::new();
    let mut pw = h.gateway.token(who).into_bytes();
    pw.push(0);
    msg(&mut password, b'p', &pw);
    s.write_all(&password).await.unwrap();
    let said = read_until(&mut s, b'Z').await;
    (s, said)
}

/// Reads messages until one tagged `tag`; returns the tags seen.
pub(crate) async fn read_until(s: &mut TcpStream, tag: u8) -> Vec<(u8, Vec<u8>)> {
    let mut seen = Vec::new();
    loop {
        let t = tokio::time::timeout(Duration::from_secs(10), s.read_u8()).await.expect("an answer").unwrap();
        let len = s.read_i32().await.unwrap();
        let mut body = vec![0; usize::try_from(len - 4).unwrap()];
        s.read_exact(&mut body).await.unwrap();
        seen.push((t, body));
        if t == tag {
            return seen;
        }
    }
}

/// The database skips every message after an error until `Sync`, so a
/// `Close` and `Parse` sent after a failing message never happen there.
/// The proxy must decide on the statement the database really has.
#[tokio::test]
async fn messages_the_database_skipped_do_not_change_what_is_decided() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "bot").await;
    let mut out = BytesMut::new();
    parse(&mut out, "s1", "DELETE FROM orders");
    sync(&mut out);
    s.write_all(&out).await.unwrap();
    read_until(&mut s, b'Z').await;

    let mut out = BytesMut::new();
    parse(&mut out, "", "THIS IS NOT SQL");
    close_statement(&mut out, "s1");
    parse(&mut out, "s1", "SELECT 1");
    sync(&mut out);
    s.write_all(&out).await.unwrap();
    let seen = read_until(&mut s, b'Z').await;
    assert_eq!(seen[0].0, b'E', "the bad Parse fails");

    let mut out = BytesMut::new();
    bind(&mut out, "", "s1");
    execute(&mut out, "");
    sync(&mut out);
    s.write_all(&out).await.unwrap();
    // It is the DELETE that is decided, so it is held for a dba.
    let id = h.pending("DELETE FROM orders").await;
    assert_eq!(h.count().await, 3);
    h.gateway.deny("carol", &id).await;
    let seen = read_until(&mut s, b'Z').await;
    let error = seen.iter().find(|(t, _)| *t == b'E').expect("a refusal");
    assert!(String::from_utf8_lossy(&error.1).contains("42501"));
    assert_eq!(h.count().await, 3);
}

/// A statement prepared with SQL `PREPARE` was never seen as a protocol
/// Parse: executing it through Bind is refused, not run undecided. SQL
/// `PREPARE` itself is refused, so it is prepared by computed SQL.
#[tokio::test]
async fn a_statement_prepared_behind_the_protocol_is_not_run() {
    let h = Harness::start().await;
    let mut s = log_in(&h, "ci-bot").await;
    let mut out = BytesMut::new();
    msg(&mut out, b'Q', b"PREPARE sneaky AS DELETE FROM orders WHERE id > 0\0");
    s.write_all(&out).await.unwrap();
    let seen = read_until(&mut s, b'Z').await;
    let error = seen.iter().find(|(t, _)| *t == b'E').expect("a refusal");
    assert!(String::from_utf8_lossy(&error.1).contains("42501"));
    let mut out = BytesMut::new();
    msg(&mut out, b'Q', b"DO $$ BEGIN EXECUTE 'PREP' || 'ARE sneaky AS DELETE FROM orders WHERE id > 0'; END $$\0");
    s.write_all(&out).await.unwrap();
    let seen = read_until(&mut s, b'Z').await;
    assert!(seen.iter().all(|(t, _)| *t != b'E'));
    let mut out = BytesMut::new();
    bind(&mut out, "", "sneaky");
    execute(&mut out, "");
    sync(&mut out);
    s.write_all(&out).await.unwrap();
    let seen = read_until(&mut s, b'Z').await;
    let error = seen.iter().find(|(t, _)| *t == b'E').expect("a refusal");
    assert!(
        String::from_utf8_lossy(&error.1).contains("did not see prepared"),
        "{:?}",
        String::from_utf8_lossy(&error.1)
    );
    assert_eq!(h.count().await, 3);
}

/// Oversized, truncated and foreign messages end the connection with an
/// error; the gateway keeps serving others.
#[tokio::test]
async fn hostile_messages_close_the_connection_and_nothing_else() {
    let h = Harness::start().await;
    for evil in [
        &b"Q\x7f\xff\xff\xff"[..],
        &b"Q\xff\xff\xff\xff"[..],
        &b"F\0\0\0\x08\0\0\0\0"[..],
        &b"Q\0\0\0\x09abcde"[..],
        &b"p\0\0\0\x05\0"[..],
    ] {
        let mut s = log_in(&h, "bot").await;
        s.write_all(evil).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await.expect("closed");
        assert_eq!(rest.first(), Some(&b'E'), "{evil:?}: {rest:?}");
    }
    // A startup message that claims to be huge.
    let mut s = TcpStream::connect(("127.0.0.1", h.port)).await.unwrap();
    s.write_all(b"\x7f\xff\xff\xff\0\x03\0\0").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await.expect("closed");
    let bot = h.connect("bot").await;
    assert_eq!(bot.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get::<_, i64>(0), 3);
}
