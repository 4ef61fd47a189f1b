//! Socket Mode: clicks arrive over a WebSocket the gateway opened, and are
//! acknowledged by envelope id.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test]
async fn clicks_over_socket_mode_are_applied_and_acknowledged() {
    // A Slack-side WebSocket that sends one click and waits for its ack.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}/link", listener.local_addr().unwrap());
    let (click_tx, click_rx) = tokio::sync::oneshot::channel::<Value>();
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel::<Value>();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        socket.send(Message::Text(json!({"type": "hello", "num_connections": 1}).to_string().into())).await.unwrap();
        let payload = click_rx.await.unwrap();
        let envelope = json!({"envelope_id": "env-1", "type": "interactive", "payload": payload, "accepts_response_payload": true});
        socket.send(Message::Text(envelope.to_string().into())).await.unwrap();
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let _ = ack_tx.send(serde_json::from_str(&text).unwrap());
                break;
            }
        }
        // Keep the connection open, as Slack does.
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    });
    let gw = gateway_with(Setup { slack_extra: "app_token = \"xapp-test-token\"\n", ..Setup::default() }).await;
    *gw.slack.state.socket_url.lock().unwrap() = Some(ws_url);
    let id = gw.submit(shell("prod-web")).await;
    click_tx.send(click("UBOB", countersign_channels::slack::blocks::APPROVE, &id, "C1")).unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), ack_rx).await.unwrap().unwrap();
    assert_eq!(ack, json!({"envelope_id": "env-1"}));
    gw.eventually("approved over Socket Mode", || async { gw.request(&id).await.status.as_str() == "approved" }).await;
    assert!(!gw.slack.calls("apps.connections.open").is_empty());
}
