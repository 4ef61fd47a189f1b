//! The one change feed: every change to a request, made here or by another
//! process or replica, announced to whoever follows them — agents waiting
//! on a decision, chat channels and webhooks (the outbox), the console's
//! live queue.
//!
//! What a subscriber hears ([`Notice`]):
//!
//! - [`Notice::Here`]: this process created or changed a request; the
//!   request as it is after the change comes with it;
//! - [`Notice::Elsewhere`]: another replica changed a request (the store's
//!   pushed change feed, PostgreSQL's LISTEN/NOTIFY);
//! - [`Notice::Unknown`]: anything may have changed. Sent when another
//!   process committed (the store's change counter moved: the only news of
//!   a CLI or a second gateway on the same SQLite file), when the pushed
//!   feed may have lost notices, and to a subscriber that fell behind;
//! - [`Notice::ShuttingDown`]: the gateway is stopping; answer now.
//!
//! [`crate::deadlines`] polls the counter and [`crate::replication`]
//! follows the pushed feed; both publish here, so no integration reads the
//! store's own notification paths. Notices are best effort: a consumer
//! that must not miss a change (the outbox) reads the audit log and uses
//! the feed only to wake up. Subscribe *before* reading the store, so a
//! change between the read and the wait is not missed.

use std::sync::Arc;

use countersign_core::Request;
use tokio::sync::{broadcast, watch};

/// Notices kept for a slow subscriber before it is told [`Notice::Unknown`].
const CAPACITY: usize = 4096;

/// What changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// This process created or changed the request: it, after the change.
    Here(Arc<Request>),
    /// Another replica changed request `id`.
    Elsewhere(String),
    /// Anything may have changed: read again what matters.
    Unknown,
    /// The gateway is shutting down.
    ShuttingDown,
}

impl Notice {
    /// Whether request `id` may have changed (or the gateway is stopping).
    pub fn concerns(&self, id: &str) -> bool {
        match self {
            Self::Here(request) => request.id == id,
            Self::Elsewhere(changed) => changed == id,
            Self::Unknown | Self::ShuttingDown => true,
        }
    }
}

/// The feed's sending side, owned by the gateway's state.
#[derive(Debug)]
pub struct Changes {
    notices: broadcast::Sender<Notice>,
    shutdown: watch::Sender<bool>,
}

impl Default for Changes {
    fn default() -> Self {
        Self { notices: broadcast::channel(CAPACITY).0, shutdown: watch::channel(false).0 }
    }
}

impl Changes {
    /// A new subscription, hearing every notice published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription { notices: self.notices.subscribe(), shutdown: self.shutdown.subscribe() }
    }

    /// Announces a notice; nobody listening is fine.
    pub(crate) fn publish(&self, notice: Notice) {
        let _ = self.notices.send(notice);
    }

    /// Wakes every subscriber with [`Notice::ShuttingDown`].
    pub(crate) fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Completes when the gateway starts shutting down (without hearing
    /// every notice on the way).
    pub(crate) async fn stopped(&self) {
        let mut shutdown = self.shutdown.subscribe();
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// How many subscribe now.
    pub(crate) fn subscribers(&self) -> usize {
        self.notices.receiver_count()
    }
}

/// One subscriber's place in the feed.
#[derive(Debug)]
pub struct Subscription {
    notices: broadcast::Receiver<Notice>,
    shutdown: watch::Receiver<bool>,
}

impl Subscription {
    /// The next notice. Once the gateway shuts down, always
    /// [`Notice::ShuttingDown`]; after falling behind, [`Notice::Unknown`].
    pub async fn next(&mut self) -> Notice {
        if *self.shutdown.borrow() {
            return Notice::ShuttingDown;
        }
        tokio::select! {
            received = self.notices.recv() => match received {
                Ok(notice) => notice,
                // Missed notices might have mattered: read again.
                Err(broadcast::error::RecvError::Lagged(_)) => Notice::Unknown,
                Err(broadcast::error::RecvError::Closed) => Notice::ShuttingDown,
            },
            changed = self.shutdown.changed() => match changed {
                Ok(()) if !*self.shutdown.borrow() => Notice::Unknown,
                Ok(()) | Err(_) => Notice::ShuttingDown,
            },
        }
    }

    /// Waits until request `id` may have changed; [`Notice::ShuttingDown`]
    /// when the gateway stops first.
    pub async fn next_for(&mut self, id: &str) -> Notice {
        loop {
            let notice = self.next().await;
            if notice.concerns(id) {
                return notice;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use countersign_core::testing::{action, pending};
    use countersign_core::{PrincipalRef, Timestamp};

    fn request(id: &str) -> Arc<Request> {
        let action = action("shell.exec", "prod-web", serde_json::json!({}));
        Arc::new(pending(id, PrincipalRef::agent("bot"), action, Vec::new(), Timestamp(0)))
    }

    #[tokio::test]
    async fn a_waiter_wakes_for_its_id_only() {
        let changes = Changes::default();
        let mut sub = changes.subscribe();
        changes.publish(Notice::Here(request("other")));
        changes.publish(Notice::Elsewhere("mine".to_owned()));
        let wake = tokio::time::timeout(Duration::from_secs(1), sub.next_for("mine")).await.unwrap();
        assert_eq!(wake, Notice::Elsewhere("mine".to_owned()));
        let idle = tokio::time::timeout(Duration::from_millis(50), sub.next_for("mine")).await;
        assert!(idle.is_err(), "nothing else was announced");
        changes.publish(Notice::Unknown);
        assert_eq!(sub.next_for("mine").await, Notice::Unknown, "anything may have changed");
    }

    #[tokio::test]
    async fn shutdown_wakes_everyone() {
        let changes = Changes::default();
        let mut sub = changes.subscribe();
        changes.shut_down();
        assert_eq!(sub.next_for("x").await, Notice::ShuttingDown);
        assert_eq!(sub.next().await, Notice::ShuttingDown, "and stays");
    }
}
