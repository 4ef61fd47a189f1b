//! Requests the MCP endpoint refuses: each gets a JSON-RPC error with a
//! code, reaches no upstream, and is audited.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::{audited, initialize, post, start_gateway, start_upstream};

#[tokio::test]
async fn mirrored_headers_that_disagree_with_the_body_are_refused_and_audited() {
    countersign_mcp::install_crypto_provider();
    let (upstream_url, seen) = start_upstream(None).await;
    let gateway = start_gateway(&format!("[mcp.upstreams.web]\nurl = {upstream_url:?}\n")).await;
    let url = format!("{}/mcp/web", gateway.base);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, session, _) = post(&client, &url, &gateway.agent_key, &[], initialize()).await;
    assert_eq!(status, 200);
    let session = session.unwrap();
    let before = seen.lock().unwrap().len();

    // A tool call dressed as a harmless listing, and one naming another tool.
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}});
    for (method, name) in [("tools/list", None), ("tools/call", Some("read_only_tool"))] {
        let mut headers = vec![("mcp-session-id", session.as_str()), ("mcp-method", method)];
        headers.extend(name.map(|n| ("mcp-name", n)));
        let (status, _, answer) = post(&client, &url, &gateway.agent_key, &headers, call.clone()).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
    }
    assert_eq!(seen.lock().unwrap().len(), before, "a refused request must not reach the upstream");

    // Matching headers pass.
    let headers = [("mcp-session-id", session.as_str()), ("mcp-method", "tools/call"), ("mcp-name", "echo")];
    let (status, _, answer) = post(&client, &url, &gateway.agent_key, &headers, call).await;
    assert_eq!((status, &answer["result"]["content"][0]["text"]), (200, &json!("x")), "{answer}");

    let rejected = audited(gateway.store.as_ref(), "request.rejected").await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected.iter().all(|r| r["path"] == "/mcp/web" && r["status"] == 400 && r["code"] == "bad_request"),
        "{rejected:?}"
    );
    assert!(rejected[0]["message"].as_str().unwrap().contains("`Mcp-Method` header `tools/list`"), "{rejected:?}");
}

#[tokio::test]
async fn unknown_upstreams_sessions_and_origins_are_refused_and_audited() {
    countersign_mcp::install_crypto_provider();
    let (upstream_url, _) = start_upstream(None).await;
    let gateway = start_gateway(&format!("[mcp.upstreams.web]\nurl = {upstream_url:?}\n")).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let key = gateway.agent_key.as_str();

    let (status, _, _) = post(&client, &format!("{}/mcp/nope", gateway.base), key, &[], initialize()).await;
    assert_eq!(status, 404);
    let url = format!("{}/mcp/web", gateway.base);
    let (status, _, _) = post(&client, &url, key, &[("mcp-session-id", "forged")], initialize()).await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&client, &url, key, &[("origin", "https://evil.example")], initialize()).await;
    assert_eq!(status, 403);

    let rejected = audited(gateway.store.as_ref(), "request.rejected").await;
    let codes: Vec<_> =
        rejected.iter().map(|r| (r["path"].as_str().unwrap().to_owned(), r["status"].clone())).collect();
    assert_eq!(
        codes,
        vec![
            ("/mcp/nope".to_owned(), json!(404)),
            ("/mcp/web".to_owned(), json!(404)),
            ("/mcp/web".to_owned(), json!(403))
        ]
    );
}
