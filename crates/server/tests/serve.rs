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
