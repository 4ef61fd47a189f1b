//! `serve` on a real port-0 listener: requests flow over TCP, and a
//! graceful shutdown answers the agents still waiting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let g = countersign_testkit::gateway().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(countersign_server::serve(g.state.clone(), g.config.server(), listener, async {
        let _ = stopped.await;
    }));
    let client = countersign_testkit::client();
    let bot = g.token("bot");
    let submitted: Value = client
        .post(format!("{base}/v1/actions"))
        .bearer_auth(&bot)
        .json(&json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"argv": ["true"]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(submitted["status"], "pending");
    let id = submitted["id"].as_str().unwrap().to_owned();
    let response = client.get(format!("{base}/v1/actions/{id}")).bearer_auth(&bot).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));

    let waiter = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/v1/actions/{id}?wait=30");
        async move { client.get(url).bearer_auth(bot).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert_eq!(answer.status(), 503);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "shutting_down");
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
    assert_eq!(g.status_of(&id).await, "pending");
}

/// A client may send a request's body after its head (Python's httpx
/// does, in two writes). The API must wait for that body before answering
/// even where a handler takes none (`release`, `cancel`): answered early,
/// the server closes the connection on the unread body, and the client's
/// next call on that kept-alive connection gets no response at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_after_the_head_keeps_the_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let g = countersign_testkit::gateway().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(countersign_server::serve(g.state.clone(), g.config.server(), listener, async {
        let _ = stopped.await;
    }));
    let bot = g.token("bot");
    let submitted =
        g.submit("bot", json!({"kind": "shell.exec", "resource": "prod-web", "payload": {"argv": ["true"]}})).await;
    let id = submitted["id"].as_str().unwrap().to_owned();

    for route in ["release", "cancel"] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let head = format!(
            "POST /v1/actions/{id}/{route} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {bot}\r\n\
             content-type: application/json\r\ncontent-length: 2\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = tcp.write_all(b"{}").await;
        assert!(body.is_ok(), "{route}: the server answered and closed before the body came: {body:?}");
        let first = read_response(&mut tcp).await;
        assert!(first.starts_with("HTTP/1.1 "), "{route}: {first}");
        let again = format!("GET /v1/actions/{id} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {bot}\r\n\r\n");
        tcp.write_all(again.as_bytes()).await.unwrap();
        let second = read_response(&mut tcp).await;
        assert!(second.starts_with("HTTP/1.1 200"), "{route}: the kept-alive connection gave `{second}`");
    }

    /// One response (head and a Content-Length body), or what came before EOF.
    async fn read_response(tcp: &mut tokio::net::TcpStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return text;
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await.unwrap().unwrap();
            if n == 0 {
                return format!("EOF after `{text}`");
            }
            seen.extend_from_slice(&buf[..n]);
        }
    }
}
