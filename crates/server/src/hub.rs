//! Wakes agents waiting on a request the moment its status changes.
//!
//! Every change is broadcast by request id; a waiter re-reads its request
//! when its id (or [`RECHECK_ALL`], sent when another process changed the
//! store) goes by. Waiters subscribe *before* reading the store, so a change
//! between the read and the wait cannot be missed.

use tokio::sync::{broadcast, watch};

/// Broadcast when something outside this process changed the store.
pub const RECHECK_ALL: &str = "*";

/// The wake-up channel shared by handlers and background tasks.
#[derive(Debug)]
pub struct Hub {
    changes: broadcast::Sender<String>,
    shutdown: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(4096);
        let (shutdown, _) = watch::channel(false);
        Self { changes, shutdown }
    }
}

/// A waiter's subscription.
#[derive(Debug)]
pub struct Subscription {
    changes: broadcast::Receiver<String>,
    shutdown: watch::Receiver<bool>,
}

/// Why a waiter woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Its request (may have) changed: read it again.
    Changed,
    /// The gateway is shutting down: answer now.
    ShuttingDown,
}

impl Hub {
    pub fn subscribe(&self) -> Subscription {
        Subscription { changes: self.changes.subscribe(), shutdown: self.shutdown.subscribe() }
    }

    /// Announces that request `id` changed.
    pub fn changed(&self, id: &str) {
        // No receivers simply means nobody is waiting.
        let _ = self.changes.send(id.to_owned());
    }

    /// Asks every waiter to re-read its request.
    pub fn recheck_all(&self) {
        let _ = self.changes.send(RECHECK_ALL.to_owned());
    }

    /// Wakes every waiter with [`Wake::ShuttingDown`].
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn waiter_count(&self) -> usize {
        self.changes.receiver_count()
    }
}

impl Subscription {
    /// Waits until `id` changes or the gateway shuts down.
    pub async fn next(&mut self, id: &str) -> Wake {
        loop {
            if *self.shutdown.borrow() {
                return Wake::ShuttingDown;
            }
            tokio::select! {
                received = self.changes.recv() => match received {
                    Ok(changed) if changed == id || changed == RECHECK_ALL => return Wake::Changed,
                    Ok(_) => {}
                    // Missed messages might have included ours: re-read.
                    Err(broadcast::error::RecvError::Lagged(_)) => return Wake::Changed,
                    Err(broadcast::error::RecvError::Closed) => return Wake::ShuttingDown,
                },
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return Wake::ShuttingDown;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_wakes_for_its_id_only() {
        let hub = Hub::default();
        let mut sub = hub.subscribe();
        hub.changed("other");
        hub.changed("mine");
        let wake = tokio::time::timeout(Duration::from_secs(1), sub.next("mine")).await.unwrap();
        assert_eq!(wake, Wake::Changed);
        let idle = tokio::time::timeout(Duration::from_millis(50), sub.next("mine")).await;
        assert!(idle.is_err(), "nothing else was announced");
    }

    #[tokio::test]
    async fn shutdown_wakes_everyone() {
        let hub = Hub::default();
        let mut sub = hub.subscribe();
        hub.shut_down();
        assert_eq!(sub.next("x").await, Wake::ShuttingDown);
    }
}
