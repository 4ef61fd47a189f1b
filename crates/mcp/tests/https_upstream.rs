//! A `url` upstream over https: reached only through the CA configured for
//! it, with the gateway's own bearer token, and never with the agent's key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::{initialize, pki, post, start_gateway, start_upstream};

const UPSTREAM_TOKEN: &str = "upstream-credential-7f3a";

#[tokio::test]
async fn https_upstream_gets_the_gateways_credential_through_its_pinned_ca_only() {
    countersign_mcp::install_crypto_provider();
    let (served, unrelated) = (pki(), pki());
    let (upstream_url, seen) = start_upstream(Some(served.acceptor)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, other_file, token_file) =
        (dir.path().join("ca.pem"), dir.path().join("other-ca.pem"), dir.path().join("token"));
    std::fs::write(&ca_file, &served.ca_pem).unwrap();
    std::fs::write(&other_file, &unrelated.ca_pem).unwrap();
    std::fs::write(&token_file, format!("{UPSTREAM_TOKEN}\n")).unwrap();
    // Two names for the same upstream: `trusted` pins the CA that issued its
    // certificate, `distrusted` an unrelated one.
    let config = format!(
        "[mcp.upstreams.trusted]\nurl = {upstream_url:?}\nca_file = {ca_file:?}\nbearer_token_file = {token_file:?}\n\
         [mcp.upstreams.distrusted]\nurl = {upstream_url:?}\nca_file = {other_file:?}\nbearer_token_file = {token_file:?}\n"
    );
    let gateway = start_gateway(&config).await;
    let (base, agent_key) = (&gateway.base, &gateway.agent_key);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let url = format!("{base}/mcp/trusted");
    let (status, session, answer) = post(&client, &url, agent_key, &[], initialize()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "stub");
    let session = session.expect("the gateway hands out a session");
    let in_session = [("mcp-session-id", session.as_str())];
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(post(&client, &url, agent_key, &in_session, list).await.0, 200);
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "over tls"}}});
    let (status, _, answer) = post(&client, &url, agent_key, &in_session, call).await;
    assert_eq!((status, &answer["result"]["content"][0]["text"]), (200, &json!("over tls")), "{answer}");

    let seen_headers = seen.lock().unwrap().clone();
    assert!(seen_headers.len() >= 3, "{seen_headers:?}");
    for header in &seen_headers {
        assert_eq!(header, &format!("Bearer {UPSTREAM_TOKEN}"), "the upstream must get the gateway's credential");
        assert!(!header.contains(agent_key.as_str()), "the agent's key must never reach the upstream");
    }

    // Pinned to a CA that did not issue the upstream's certificate: no
    // connection, a clear error, and the upstream never hears a request.
    let before = seen.lock().unwrap().len();
    let (status, _, answer) = post(&client, &format!("{base}/mcp/distrusted"), agent_key, &[], initialize()).await;
    assert_eq!(status, 502, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`distrusted`") && message.contains("certificate is not trusted"), "{message}");
    assert_eq!(seen.lock().unwrap().len(), before);
}
