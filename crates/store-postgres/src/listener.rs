//! The change feed: one connection per store that LISTENs for the notices
//! other replicas' commits send, and rebroadcasts them in-process.
//!
//! PostgreSQL delivers a notice to every listening session when (and only
//! if) the transaction that sent it commits, so a waiter on this replica
//! hears of an approval on another one about a millisecond later. A notice
//! sent while this connection was down is lost, so every (re)connection is
//! announced as [`Change::Unknown`] ("re-check everything"), and the
//! gateway also polls the change counter as a fallback.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use countersign_store::Change;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, Config, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::CHANNEL;

/// How often an idle listener proves its connection is alive: a silently
/// dead connection would otherwise only show as missing wake-ups.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Listens until the store is dropped (the task is aborted then).
pub(crate) async fn run(
    config: Config,
    tls: MakeRustlsConnect,
    origin: String,
    feed: broadcast::Sender<Change>,
    connected: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut logged_down = false;
    loop {
        match listen(&config, &tls, &origin, &feed, &connected).await {
            Ok(()) => {}
            Err(e) if !logged_down => {
                tracing::warn!(error = %e, "the store's change feed lost the database; reconnecting");
                logged_down = true;
            }
            Err(e) => tracing::debug!(error = %e, "the store's change feed still cannot reach the database"),
        }
        if connected.swap(false, Ordering::SeqCst) {
            // It was up: reconnect at once, then back off if that fails.
            backoff = Duration::from_millis(50);
            logged_down = false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: returns when it fails.
async fn listen(
    config: &Config,
    tls: &MakeRustlsConnect,
    origin: &str,
    feed: &broadcast::Sender<Change>,
    connected: &AtomicBool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (notices, mut received) = mpsc::unbounded_channel::<Notification>();
    // The connection only makes progress (and only hands over notices)
    // while polled, so it gets a task of its own.
    let driver = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notices.send(n).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the change feed connection failed");
                    return;
                }
            }
        }
    });
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        connected.store(true, Ordering::SeqCst);
        // Anything committed while we were not listening went unheard.
        let _ = feed.send(Change::Unknown);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                notice = received.recv() => match notice {
                    Some(notice) => {
                        if let Some(change) = parse(notice.payload(), origin) {
                            // No receivers just means nobody waits right now.
                            let _ = feed.send(change);
                        }
                    }
                    // The driver stopped: the connection is gone.
                    None => return client.batch_execute("SELECT 1").await,
                },
                _ = heartbeat.tick() => {
                    match tokio::time::timeout(HEARTBEAT, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e),
                        // Hung: drop the connection and build a new one.
                        Err(_) => return Ok(()),
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Decodes a notice; `None` for this store's own (it already knows).
pub(crate) fn parse(payload: &str, origin: &str) -> Option<Change> {
    let Ok(value) = serde_json::from_str::<Value>(payload) else {
        return Some(Change::Unknown);
    };
    if value.get("o").and_then(Value::as_str) == Some(origin) {
        return None;
    }
    if let Some(id) = value.get("r").and_then(Value::as_str) {
        return Some(Change::Request(id.to_owned()));
    }
    if let Some([namespace, key]) = value.get("k").and_then(Value::as_array).map(Vec::as_slice) {
        if let (Some(namespace), Some(key)) = (namespace.as_str(), key.as_str()) {
            return Some(Change::Kv { namespace: namespace.to_owned(), key: key.to_owned() });
        }
    }
    Some(Change::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_decode_and_own_ones_are_skipped() {
        assert_eq!(parse(r#"{"o":"a","r":"id-1"}"#, "b"), Some(Change::Request("id-1".into())));
        assert_eq!(parse(r#"{"o":"a","r":"id-1"}"#, "a"), None);
        assert_eq!(
            parse(r#"{"o":"a","k":["ns","key"]}"#, "b"),
            Some(Change::Kv { namespace: "ns".into(), key: "key".into() })
        );
        assert_eq!(parse(r#"{"o":"a"}"#, "b"), Some(Change::Unknown));
        assert_eq!(parse("not json", "b"), Some(Change::Unknown));
    }
}
