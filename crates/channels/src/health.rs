//! How each channel or sink is doing, for the console's admin page: up or down,
//! the last error, the last delivery, and the backlog.
//!
//! The delivery worker that holds a channel's lease records the state in
//! the store's key-value area (on every change of up/down, and at most
//! every few seconds otherwise), so every replica shows the same picture,
//! not only the one that happens to deliver. The backlog is counted from
//! the channel's cursor to the head of the audit log when asked.
//!
//! This crate does not depend on the console: the gateway binary adapts
//! [`Probe`] to the console's `IntegrationHealth`, so the console and the
//! channels each depend only on the server below them.

use std::sync::Arc;
use std::time::Duration;

use countersign_core::clock::format_duration;
use countersign_core::Timestamp;
use countersign_gateway::AppState;
use serde::{Deserialize, Serialize};

use crate::outbox::{Sink, KV};

/// How many audit events past the cursor the backlog count reads at most.
const BACKLOG_SCAN: usize = 1000;

/// What a delivery worker last recorded about its channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// `false` while deliveries fail (and are retried).
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<Timestamp>,
}

pub(crate) fn key(channel: &str) -> String {
    format!("health:{channel}")
}

/// One channel's state, as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    /// What it talks to (an origin: never a path, which may hold a secret).
    pub target: String,
    pub up: bool,
    /// One line: since when it fails and why, when it last delivered, the backlog.
    pub detail: String,
}

/// Reads one channel's health.
#[derive(Debug, Clone)]
pub struct Probe {
    state: AppState,
    sink: Arc<dyn Sink>,
}

impl Probe {
    /// A probe of `sink`, whose worker [`crate::outbox::run`] records its state.
    pub fn new(state: AppState, sink: Arc<dyn Sink>) -> Self {
        Self { state, sink }
    }

    /// The channel's name (`slack`, `teams`, `webhook-0`, …).
    pub fn name(&self) -> String {
        self.sink.name()
    }

    /// The channel's state now. A store that cannot be read shows the
    /// channel as unknown (down), never as fine.
    pub async fn snapshot(&self, now: Timestamp) -> Snapshot {
        let name = self.sink.name();
        let target = self.sink.target();
        let kv = self.state.key_values(KV);
        let recorded = match kv.get(&key(&name)).await {
            Ok(Some(text)) => serde_json::from_str::<Recorded>(&text).ok(),
            Ok(None) => None,
            Err(_) => return Snapshot { name, target, up: false, detail: "unknown: the store is unavailable".into() },
        };
        let backlog = self.backlog().await;
        let (up, mut detail) = describe(recorded.as_ref(), now);
        match backlog {
            Some((count, more)) => detail.push_str(&format!("; backlog {count}{}", if more { "+" } else { "" })),
            None => detail.push_str("; backlog unknown"),
        }
        Snapshot { name, target, up, detail }
    }

    /// Changes this channel still has to deliver: (count, more beyond the scan).
    async fn backlog(&self) -> Option<(usize, bool)> {
        let kv = self.state.key_values(KV);
        let cursor: u64 = kv.get(&format!("cursor:{}", self.sink.name())).await.ok()??.parse().ok()?;
        let events = self.state.audit_events(cursor, BACKLOG_SCAN).await.ok()?;
        let count = events.iter().filter(|e| self.sink.wants(e)).count();
        Some((count, events.len() == BACKLOG_SCAN))
    }
}

/// The origin of `url` (`https://hooks.example:8443`): webhook paths and
/// queries often carry a token.
pub fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Up or down, and why, from what the worker recorded.
fn describe(recorded: Option<&Recorded>, now: Timestamp) -> (bool, String) {
    let ago = |at: Timestamp| {
        let millis = u64::try_from(now.as_millis().saturating_sub(at.as_millis())).unwrap_or(0);
        format!("{} ago", format_duration(Duration::from_secs(millis / 1000)))
    };
    let Some(recorded) = recorded else {
        return (true, "no delivery yet".to_owned());
    };
    let last = recorded
        .last_delivery_at
        .map_or_else(|| "never delivered".to_owned(), |at| format!("last delivery {}", ago(at)));
    if recorded.up {
        return (true, format!("delivering; {last}"));
    }
    let error = recorded.last_error.as_deref().unwrap_or("unknown error");
    let since = recorded.last_error_at.map(|at| format!(" (last failure {})", ago(at))).unwrap_or_default();
    (false, format!("failing, retrying with backoff: {error}{since}; {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_origins_only() {
        assert_eq!(origin("https://hooks.example.com/services/T0/B0/secret?x=1"), "https://hooks.example.com");
        assert_eq!(origin("http://127.0.0.1:9000/api"), "http://127.0.0.1:9000");
        assert_eq!(origin("nonsense"), "(not a URL)");
    }

    #[test]
    fn states_read_as_words() {
        let now = Timestamp(1_700_000_000_000);
        assert_eq!(describe(None, now), (true, "no delivery yet".to_owned()));
        let up = Recorded { up: true, last_delivery_at: Some(Timestamp(1_699_999_990_000)), ..Recorded::default() };
        assert_eq!(describe(Some(&up), now), (true, "delivering; last delivery 10s ago".to_owned()));
        let down = Recorded {
            up: false,
            last_error: Some("the Bot Connector answered HTTP 503".into()),
            last_error_at: Some(Timestamp(1_699_999_999_000)),
            last_delivery_at: None,
        };
        let (ok, detail) = describe(Some(&down), now);
        assert!(!ok);
        assert_eq!(detail, "failing, retrying with backoff: the Bot Connector answered HTTP 503 (last failure 1s ago); never delivered");
    }
}
