//! The durable outbox: one delivery worker per sink, reading the audit
//! log in order. A sink is a chat channel or webhook (a [`Notifier`], fed
//! the request changes, see [`crate::notifying`]) or any other consumer of
//! the raw events ([`Sink`]: the SIEM exports of `countersign-siem`).
//!
//! Why the audit log: each change is appended in the same transaction that
//! makes it, so "changed but not notified" and "notified but not changed"
//! cannot happen, and changes made by other processes (the CLI revoking an
//! agent, another replica) are seen too. Each channel keeps its cursor (the
//! last sequence number it delivered) in the store's key-value area and
//! advances it only after deliveries succeeded or were given up, so a
//! restart or a channel outage loses nothing (at worst, a crash delivers a
//! few changes twice). A lease in the same area
//! makes one process per channel deliver when several share a store.
//!
//! A failing delivery is retried with exponential backoff, holding back
//! only that channel: the request can still be decided everywhere else,
//! and the outage shows in `/metrics` (`countersign_channel_up`) and the
//! logs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent};
use countersign_core::events::{ChannelStarted, Event};
use countersign_core::{Request, Timestamp};
use countersign_gateway::changes::Subscription;
use countersign_gateway::kv::Lease;
use countersign_gateway::AppState;
use countersign_store::StoreError;

use crate::events::{Change, ChangeKind};

/// The key-value namespace of the channels.
pub const KV: &str = "channels";

/// Changes delivered between two cursor saves within one batch.
const CURSOR_EVERY: usize = 16;

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: the channel is down, slow or rate-limiting.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (the channel refused the content or the target).
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for DeliveryError {
    fn from(e: StoreError) -> Self {
        Self::Transient(format!("store: {e}"))
    }
}

/// A channel the outbox delivers to.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A stable name: the cursor key, the metrics label, the log field.
    fn name(&self) -> String;

    /// What the channel talks to, for the admin page: an origin (scheme,
    /// host, port), never a path or query, which may hold a secret.
    fn target(&self) -> String;

    /// Whether this channel wants changes of this kind at all.
    fn wants(&self, kind: ChangeKind) -> bool;

    /// Whether only the latest card change of a request in a batch matters
    /// (chat messages show the current state) or every change must go out
    /// (webhooks).
    fn coalesces(&self) -> bool;

    /// Give up on a delivery after this many attempts; `None`: keep trying.
    fn max_attempts(&self) -> Option<u32>;

    /// Delivers one change; `request` is the request as it is now.
    /// `attempt` counts from 1.
    async fn deliver(&self, change: &Change, request: &Request, attempt: u32) -> Result<(), DeliveryError>;
}

/// Anything the outbox feeds: it receives the audit events it wants, one
/// at a time, in sequence order, at least once.
#[async_trait]
pub trait Sink: Send + Sync + fmt::Debug {
    /// A stable name: the cursor key, the metrics label, the log field.
    fn name(&self) -> String;

    /// What the sink talks to, for the admin page (never a secret).
    fn target(&self) -> String;

    /// Whether this sink delivers `event` at all (also counts the backlog).
    fn wants(&self, event: &AuditEvent) -> bool;

    /// The events of one batch this sink delivers, in order: by default
    /// every one it wants.
    fn select(&self, events: Vec<AuditEvent>) -> Vec<AuditEvent> {
        events.into_iter().filter(|e| self.wants(e)).collect()
    }

    /// Give up on a delivery after this many attempts; `None`: keep trying.
    fn max_attempts(&self) -> Option<u32>;

    /// Delivers one event; `attempt` counts from 1.
    async fn deliver(&self, event: &AuditEvent, attempt: u32) -> Result<(), DeliveryError>;
}

/// Delivery timings.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// How often an idle worker looks for changes made by other processes;
    /// changes made in this process wake it at once.
    pub poll: Duration,
    /// Events read per batch.
    pub batch: usize,
    /// The wait before the second attempt; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a worker's claim on its channel lasts without renewal.
    pub lease: Duration,
    /// How often pending requests are checked for escalation.
    pub escalation_tick: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            batch: 200,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(30),
            escalation_tick: Duration::from_secs(5),
        }
    }
}

impl OutboxOptions {
    /// The wait after failed attempt number `attempt` (from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.first_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Runs one sink's worker until the gateway shuts down.
pub async fn run(state: AppState, sink: Arc<dyn Sink>, options: OutboxOptions) {
    let name = sink.name();
    let mut worker = Worker {
        lease: Lease::new(state.key_values(KV), state.clock(), &format!("lease:{name}"), options.lease),
        cursor_key: format!("cursor:{name}"),
        health: Health::new(&state, &name),
        state,
        sink,
        options,
        name,
    };
    worker.run().await;
}

struct Worker {
    state: AppState,
    sink: Arc<dyn Sink>,
    options: OutboxOptions,
    name: String,
    cursor_key: String,
    lease: Lease,
    health: Health,
}

/// What became of one change.
enum Fate {
    Done,
    /// Another process holds the channel now, or the gateway is stopping.
    Interrupted,
}

impl Worker {
    async fn run(&mut self) {
        let mut wake = self.state.changes();
        let mut cursor: Option<u64> = None;
        loop {
            if self.state.is_shutting_down() {
                return;
            }
            if !self.lease.hold().await {
                cursor = None;
                self.idle(&mut wake, self.options.lease / 3).await;
                continue;
            }
            let at = match cursor {
                Some(at) => at,
                None => match self.load_cursor().await {
                    Ok(at) => at,
                    Err(e) => {
                        tracing::warn!(channel = %self.name, error = %e, "cannot read the delivery cursor; will retry");
                        self.idle(&mut wake, self.options.poll).await;
                        continue;
                    }
                },
            };
            cursor = Some(at);
            let events = match self.state.audit_events(at, self.options.batch).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(channel = %self.name, error = %e, "cannot read the audit log; will retry");
                    self.idle(&mut wake, self.options.poll).await;
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else {
                self.idle(&mut wake, self.options.poll).await;
                continue;
            };
            let chosen = self.sink.select(events);
            let mut position = at;
            let mut interrupted = false;
            for (n, event) in chosen.iter().enumerate() {
                match self.deliver(event).await {
                    Fate::Done => {}
                    Fate::Interrupted => {
                        // Keep what was delivered before the interruption.
                        let done = n.checked_sub(1).and_then(|i| chosen.get(i)).map_or(at, |e| e.seq);
                        self.save_cursor(&mut position, done).await;
                        interrupted = true;
                        break;
                    }
                }
                // The cursor is saved once per batch (and every few changes
                // in a long one) rather than after each change: a crash may
                // deliver a few changes again, which chat updates absorb and
                // webhook receivers drop by event id; every decision would
                // otherwise pay for one more durable write per channel.
                if n % CURSOR_EVERY == CURSOR_EVERY - 1 && !self.save_cursor(&mut position, event.seq).await {
                    interrupted = true;
                    break;
                }
            }
            if interrupted || !self.save_cursor(&mut position, last).await {
                cursor = None;
                continue;
            }
            cursor = Some(position);
        }
    }

    async fn deliver(&mut self, event: &AuditEvent) -> Fate {
        let mut attempt: u32 = 1;
        loop {
            if self.state.is_shutting_down() || !self.lease.hold().await {
                return Fate::Interrupted;
            }
            match self.sink.deliver(event, attempt).await {
                Ok(()) => {
                    self.health.delivered().await;
                    return Fate::Done;
                }
                Err(DeliveryError::Permanent(reason)) => {
                    self.health.count("rejected");
                    tracing::error!(channel = %self.name, seq = event.seq, event = %event.kind,
                        %reason, "delivery refused by the channel; skipping it");
                    return Fate::Done;
                }
                Err(DeliveryError::Transient(reason)) => {
                    self.health.failed(&reason).await;
                    if self.sink.max_attempts().is_some_and(|max| attempt >= max) {
                        self.health.count("gave_up");
                        tracing::error!(channel = %self.name, seq = event.seq, event = %event.kind,
                            attempts = attempt, %reason, "delivery failed too often; giving up on it");
                        return Fate::Done;
                    }
                    let wait = self.options.backoff(attempt);
                    tracing::debug!(channel = %self.name, attempt, ?wait, %reason, "delivery failed; retrying");
                    if self.sleep(wait).await {
                        return Fate::Interrupted;
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Sleeps; true if the gateway began shutting down meanwhile.
    async fn sleep(&self, wait: Duration) -> bool {
        let step = Duration::from_millis(200);
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if self.state.is_shutting_down() {
                return true;
            }
            tokio::time::sleep(step.min(deadline - tokio::time::Instant::now())).await;
        }
        self.state.is_shutting_down()
    }

    /// Waits for the next change, here or elsewhere, or `wait` at most.
    async fn idle(&self, wake: &mut Subscription, wait: Duration) {
        // Any notice (shutting down too) means: look at the log again.
        let _ = tokio::time::timeout(wait, wake.next()).await;
    }

    async fn load_cursor(&self) -> Result<u64, StoreError> {
        if let Some(text) = self.state.key_values(KV).get(&self.cursor_key).await? {
            return text
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("cursor `{}` is not a number", self.cursor_key)));
        }
        // A new channel starts at the head of the log rather than replaying
        // history; the audit event that marks the start gives the head.
        let started = Event::ChannelStarted(ChannelStarted { channel: self.name.clone() });
        let head = self.state.append_audit(vec![AuditDraft::new("system", started)]).await?;
        if self.state.key_values(KV).compare_and_set(&self.cursor_key, None, Some(head.to_string())).await? {
            return Ok(head);
        }
        let text = self.state.key_values(KV).get(&self.cursor_key).await?.unwrap_or_default();
        text.parse().map_err(|_| StoreError::Corrupt(format!("cursor `{}` is not a number", self.cursor_key)))
    }

    /// Moves the stored cursor from `*position` to `to`; false if another
    /// process moved it (then this worker re-reads it).
    async fn save_cursor(&self, position: &mut u64, to: u64) -> bool {
        if to <= *position {
            return true;
        }
        let result = self
            .state
            .key_values(KV)
            .compare_and_set(&self.cursor_key, Some(position.to_string()), Some(to.to_string()))
            .await;
        match result {
            Ok(true) => {
                *position = to;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(channel = %self.name, error = %e, "cannot save the delivery cursor; the change may be delivered again");
                false
            }
        }
    }
}

/// Up/down state of a channel, for `/metrics`, the logs and the admin
/// page ([`crate::health`]).
struct Health {
    state: AppState,
    name: String,
    up: bool,
    recorded: crate::health::Recorded,
    /// When the record was last written to the store.
    saved: Option<tokio::time::Instant>,
}

/// How often an unchanged record is written again (to move the last
/// delivery time) at most.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

impl Health {
    fn new(state: &AppState, name: &str) -> Self {
        state.metrics().set_channel_up(name, true);
        let recorded = crate::health::Recorded { up: true, ..crate::health::Recorded::default() };
        Self { state: state.clone(), name: name.to_owned(), up: true, recorded, saved: None }
    }

    async fn delivered(&mut self) {
        self.count("delivered");
        self.recorded.last_delivery_at = Some(Timestamp::now());
        let changed = !self.up;
        if changed {
            tracing::info!(channel = %self.name, "channel is back; delivering the backlog");
            self.up = true;
            self.state.metrics().set_channel_up(&self.name, true);
        }
        self.recorded.up = true;
        self.save(changed).await;
    }

    async fn failed(&mut self, reason: &str) {
        self.count("failed");
        let changed = self.up || self.recorded.last_error.as_deref() != Some(reason);
        if self.up {
            tracing::warn!(channel = %self.name, %reason, "channel is down; retrying with backoff (requests can still be decided elsewhere)");
            self.up = false;
            self.state.metrics().set_channel_up(&self.name, false);
        }
        self.recorded.up = false;
        self.recorded.last_error = Some(reason.to_owned());
        self.recorded.last_error_at = Some(Timestamp::now());
        self.save(changed).await;
    }

    fn count(&self, result: &str) {
        self.state.metrics().count_channel_delivery(&self.name, result);
    }

    /// Writes the record when it changed meaning, else at most every
    /// [`HEALTH_EVERY`]: one more durable write per delivery would slow
    /// every channel down for a page few people look at.
    async fn save(&mut self, changed: bool) {
        let due = self.saved.is_none_or(|at| at.elapsed() >= HEALTH_EVERY);
        if !changed && !due {
            return;
        }
        let Ok(value) = serde_json::to_string(&self.recorded) else { return };
        let key = crate::health::key(&self.name);
        let kv = self.state.key_values(KV);
        let written = async {
            let current = kv.get(&key).await?;
            kv.compare_and_set(&key, current, Some(value)).await
        }
        .await;
        match written {
            Ok(_) => self.saved = Some(tokio::time::Instant::now()),
            Err(e) => tracing::debug!(channel = %self.name, error = %e, "cannot record the channel's health"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = OutboxOptions {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..OutboxOptions::default()
        };
        let waits: Vec<u128> = (1..=6).map(|a| o.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500, 500]);
        assert_eq!(o.backoff(1000), Duration::from_millis(500));
    }
}
