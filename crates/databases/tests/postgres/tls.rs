//! TLS from clients (`SSLRequest`): clients verify the endpoint's
//! certificate, and off loopback a credential is taken only over TLS.

use std::net::IpAddr;

use serde_json::json;

use crate::peers::Client;
use crate::psql_scripts::{psql, text};
use crate::support::{Harness, Setup};

async fn tls_harness() -> Harness {
    Harness::with(Setup { tls: true, ..Setup::default() }).await
}

/// A conninfo for `who` at `host`, with `ssl` (`sslmode=…` and more).
fn conninfo(h: &Harness, who: &str, host: &str, ssl: &str) -> String {
    format!("host={host} port={} dbname={} user={who} password={} {ssl}", h.port, h.database, h.gateway.token(who))
}

#[tokio::test]
async fn psql_verifies_the_endpoint_certificate() {
    let h = tls_harness().await;
    let ca = h.tls.as_ref().unwrap().ca.display().to_string();
    let verified = conninfo(&h, "bot", "localhost", &format!("sslmode=verify-full sslrootcert={ca}"));
    let out = psql(&verified, &["-At", "-c", r"\conninfo", "-c", "SELECT item FROM orders ORDER BY id"], "").await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("SSL connection (protocol: TLSv1."), "{stdout}");
    assert!(stdout.ends_with("apple\npear\nfig\n"), "{stdout}");

    // A client that trusts another CA (here one of the same name, so
    // OpenSSL finds the signature wrong rather than the issuer unknown)
    // does not send its credential.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, countersign_testkit::tls::pem_pki(&["localhost"]).ca).unwrap();
    let wrong = conninfo(&h, "bot", "localhost", &format!("sslmode=verify-full sslrootcert={}", other.display()));
    let out = psql(&wrong, &["-c", "SELECT 1"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("SSL error:"), "{}", text(&out.stderr));
    assert_eq!(h.requests().await.len(), 1, "only the verified session's statement was decided");

    // On loopback, cleartext stays allowed.
    let out = psql(&h.conninfo("bot"), &["-At", "-c", "SELECT count(*) FROM orders"], "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "3\n");
}

#[tokio::test]
async fn client_libraries_verify_the_endpoint_certificate() {
    let h = tls_harness().await;
    // `url` asks for `sslmode=verify-full` against the test CA.
    assert!(h.url("bot").contains("sslmode=verify-full"));
    for client in [Client::Psycopg, Client::Asyncpg, Client::NodePg] {
        if !client.available() {
            continue;
        }
        let out = client.run(&h.url("bot"), "read").await;
        assert_eq!(out["rows"], json!([[1, "apple"], [2, "pear"], [3, "fig"]]), "{client:?}: {out}");
        if client != Client::Asyncpg {
            assert_eq!(out["ssl"], true, "{client:?}: {out}");
        }
    }
}

/// This machine's address on its default route, if it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing: it only picks the route.
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn off_loopback_a_credential_is_taken_only_over_tls() {
    let Some(ip) = non_loopback_ip() else {
        // The rule itself is unit-tested in the listener (`cleartext_allowed`).
        eprintln!("skipped: this machine has no non-loopback address to listen on");
        return;
    };
    let h = Harness::with(Setup { tls: true, ip, ..Setup::default() }).await;
    let host = ip.to_string();
    let out = psql(&conninfo(&h, "bot", &host, "sslmode=disable"), &["-c", "SELECT 1"], "").await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("takes credentials only over TLS from this address"), "{stderr}");
    assert!(h.requests().await.is_empty());

    let ca = h.tls.as_ref().unwrap().ca.display().to_string();
    let verified = conninfo(&h, "bot", &host, &format!("sslmode=verify-full sslrootcert={ca}"));
    let out = psql(&verified, &["-At", "-c", "SELECT count(*) FROM orders"], "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "3\n");
}
