//! What the live queue hears of changes made elsewhere: through another
//! replica on the same PostgreSQL, or another process on the same SQLite
//! file (the CLI, a second gateway).
//!
//! This gateway's own changes reach the queue's event streams directly
//! ([`countersign_server::AppState::subscribe_changes`]). For the rest one
//! task per console follows the store:
//!
//! - a store with a change feed (PostgreSQL: LISTEN/NOTIFY) names each
//!   request another replica changed, which is passed on at once;
//! - the store's change counter is polled too, every 250 ms: without a
//!   feed (SQLite) it is the only news, and a feed says nothing of new
//!   requests (nobody can be waiting on them) and may lose a notice. When
//!   the counter moves, the pending list is read again and compared with
//!   the last one, and each request that appeared, changed or left is
//!   passed on.
//!
//! The comparison only runs while someone watches the queue. The pending
//! list it keeps is updated with this gateway's own changes too, so they
//! are not reported twice.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use countersign_core::{Request, Status};
use countersign_store::{Change, RequestFilter};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::ConsoleState;

/// How often the change counter is read: a request created elsewhere shows
/// within about this long. (One cheap read; the gateway's own deadline
/// task reads it as often.)
const POLL: Duration = Duration::from_millis(250);
/// More changes than this at once are reported as one "re-read everything".
const MANY: usize = 50;
/// How many pending requests are compared (as many as the queue shows).
const LIMIT: usize = crate::queue::LIMIT;

/// A change made elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outside {
    /// This request appeared, changed or was decided.
    Request(String),
    /// Anything may have changed.
    Unknown,
}

/// The channel the event streams subscribe to.
pub(crate) fn channel() -> broadcast::Sender<Outside> {
    broadcast::channel(256).0
}

/// Follows the store until the console is dropped or the gateway shuts down.
pub(crate) async fn follow(state: Weak<ConsoleState>) {
    let (mut feed, mut local) = match state.upgrade() {
        Some(state) => (state.app.store.change_feed(), state.app.subscribe_changes()),
        None => return,
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counter: Option<u64> = None;
    let mut pending: Option<HashMap<String, Request>> = None;
    loop {
        let next = tokio::select! {
            change = next_change(&mut feed) => Next::Feed(change),
            own = local.recv() => Next::Local(own),
            _ = tick.tick() => Next::Tick,
        };
        let Some(state) = state.upgrade() else { return };
        if state.app.hub.is_shutting_down() {
            return;
        }
        let watched = state.outside.receiver_count() > 0;
        let rescan = match next {
            Next::Feed(Ok(Change::Request(id))) => {
                if watched {
                    if let Some(pending) = pending.as_mut() {
                        // Keep the comparison from reporting it again.
                        if let Ok(request) = state.app.store.request(&id).await {
                            remember(pending, &id, request.as_ref());
                        }
                    }
                    let _ = state.outside.send(Outside::Request(id));
                }
                false
            }
            Next::Feed(Ok(Change::Kv { .. })) => false,
            Next::Feed(Ok(Change::Unknown) | Err(RecvError::Lagged(_))) => true,
            Next::Feed(Err(RecvError::Closed)) => {
                feed = None;
                true
            }
            Next::Local(Ok(request)) => {
                if let Some(pending) = pending.as_mut() {
                    remember(pending, &request.id, Some(&request));
                }
                false
            }
            // Own changes were missed: the next comparison may report some
            // of them again, which only costs the page a refresh.
            Next::Local(Err(RecvError::Lagged(_))) => false,
            Next::Local(Err(RecvError::Closed)) => return,
            Next::Tick => match state.app.store.change_counter().await {
                Ok(now) => {
                    let moved = counter.is_some_and(|last| last != now);
                    counter = Some(now);
                    moved
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the store's change counter");
                    false
                }
            },
        };
        if !watched {
            // Nobody to tell: stop comparing until someone watches again.
            pending = None;
            continue;
        }
        if rescan || pending.is_none() {
            compare(&state, &mut pending, rescan).await;
        }
    }
}

enum Next {
    Feed(Result<Change, RecvError>),
    Local(Result<Arc<Request>, RecvError>),
    Tick,
}

async fn next_change(feed: &mut Option<broadcast::Receiver<Change>>) -> Result<Change, RecvError> {
    match feed {
        Some(feed) => feed.recv().await,
        None => std::future::pending().await,
    }
}

/// Notes a request's current state in the pending list.
fn remember(pending: &mut HashMap<String, Request>, id: &str, request: Option<&Request>) {
    match request {
        Some(request) if request.status == Status::Pending => {
            pending.insert(id.to_owned(), request.clone());
        }
        Some(_) | None => {
            pending.remove(id);
        }
    }
}

/// Reads the pending list and reports how it differs from the last one. A
/// first list is a baseline; if the store moved before it was taken
/// (`moved`), watchers are told to re-read everything.
async fn compare(state: &ConsoleState, pending: &mut Option<HashMap<String, Request>>, moved: bool) {
    let filter = RequestFilter { status: Some(Status::Pending), limit: LIMIT, ..RequestFilter::default() };
    let current: HashMap<String, Request> = match state.app.store.list_requests(&filter).await {
        Ok(list) => list.into_iter().map(|r| (r.id.clone(), r)).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list pending requests for the live queue");
            let _ = state.outside.send(Outside::Unknown);
            *pending = None;
            return;
        }
    };
    let Some(before) = pending.as_ref() else {
        if moved {
            let _ = state.outside.send(Outside::Unknown);
        }
        *pending = Some(current);
        return;
    };
    let mut changed: Vec<&String> =
        current.iter().filter(|(id, r)| before.get(*id) != Some(r)).map(|(id, _)| id).collect();
    changed.extend(before.keys().filter(|id| !current.contains_key(*id)));
    if changed.len() > MANY {
        let _ = state.outside.send(Outside::Unknown);
    } else {
        for id in changed {
            let _ = state.outside.send(Outside::Request(id.clone()));
        }
    }
    *pending = Some(current);
}
