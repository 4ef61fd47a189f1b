//! Socket Mode, for gateways Slack cannot reach: the gateway opens a
//! WebSocket to Slack (`apps.connections.open` with the app-level token)
//! and receives the same interactivity payloads over it, each acknowledged
//! by its envelope id — with the answer a modal submission needs.
//! The connection is trusted because the gateway opened it with its token;
//! there is no request signature to check.

use std::sync::Arc;
use std::time::Duration;

use countersign_core::json;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::Slack;

/// Keeps a Socket Mode connection open until the gateway shuts down,
/// reconnecting with backoff.
pub async fn run(slack: Arc<Slack>) {
    let Some(app_token) = slack.config.app_token.clone() else {
        return;
    };
    let mut failures: u32 = 0;
    while !slack.state.is_shutting_down() {
        match session(&slack, &app_token).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "Slack Socket Mode connection failed; reconnecting");
            }
        }
        let wait = Duration::from_millis(250)
            .saturating_mul(2u32.saturating_pow(failures.min(7)))
            .min(Duration::from_secs(30));
        tokio::time::sleep(wait).await;
    }
}

/// One connection, until Slack asks us to reconnect or it drops.
async fn session(slack: &Arc<Slack>, app_token: &countersign_gateway::config::Secret) -> Result<(), String> {
    let url = slack.api.open_socket(app_token).await.map_err(|e| e.to_string())?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.map_err(|e| format!("connect: {e}"))?;
    tracing::info!("Slack Socket Mode connected");
    let mut shutdown = tokio::time::interval(Duration::from_millis(500));
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = shutdown.tick() => {
                if slack.state.is_shutting_down() {
                    let _ = socket.close(None).await;
                    return Ok(());
                }
                continue;
            }
        };
        let text = match message {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("read: {e}")),
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(Message::Close(_))) => return Ok(()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_))) => continue,
        };
        let Ok(envelope) = json::from_slice_allowing_repeats::<Value>(text.as_bytes()) else {
            continue;
        };
        match envelope.get("type").and_then(Value::as_str) {
            Some("hello") => continue,
            Some("disconnect") => return Ok(()),
            Some(_) | None => {}
        }
        let Some(envelope_id) = envelope.get("envelope_id").and_then(Value::as_str) else {
            continue;
        };
        let answer = match (envelope.get("type").and_then(Value::as_str), envelope.get("payload")) {
            (Some("interactive"), Some(payload)) => slack.interaction(payload.clone()).await,
            _ => None,
        };
        let ack = match answer {
            Some(payload) => json!({"envelope_id": envelope_id, "payload": payload}),
            None => json!({"envelope_id": envelope_id}),
        };
        socket.send(Message::Text(ack.to_string().into())).await.map_err(|e| format!("ack: {e}"))?;
    }
}
