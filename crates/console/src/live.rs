//! What the live queue hears of changes made elsewhere: through another
//! replica on the same PostgreSQL, or another process on the same SQLite
//! file (the CLI, a second gateway).
//!
//! Everything comes from the gateway's one change feed
//! ([`countersign_gateway::changes`]). This gateway's own changes
//! ([`Notice::Here`]) reach the queue's event streams directly. For the
//! rest one task per console turns the feed's notices into what a page
//! can use:
//!
//! - a request another replica changed ([`Notice::Elsewhere`]) is passed
//!   on at once;
//! - "anything may have changed" ([`Notice::Unknown`]: another process
//!   committed, or notices were lost) — and a feed says nothing of new
//!   requests made elsewhere — so the pending list is read again and
//!   compared with the last one, and each request that appeared, changed
//!   or left is passed on.
//!
//! The comparison only runs while someone watches the queue. The pending
//! list it keeps is updated with this gateway's own changes too, so they
//! are not reported twice.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use countersign_core::{Request, Status};
use countersign_gateway::changes::Notice;
use countersign_store::RequestFilter;
use tokio::sync::broadcast;

use crate::ConsoleState;

/// How soon a first pending list is taken once someone watches.
const BASELINE: Duration = Duration::from_millis(250);
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

/// Follows the gateway's change feed until the console is dropped or the
/// gateway shuts down.
pub(crate) async fn follow(state: Weak<ConsoleState>) {
    let mut feed = match state.upgrade() {
        Some(state) => state.app.changes(),
        None => return,
    };
    // The tick only takes the first list as soon as someone watches (so a
    // change that comes next is told apart from it) and notices a dropped
    // console; the news itself comes from the feed.
    let mut tick = tokio::time::interval(BASELINE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Option<HashMap<String, Request>> = None;
    loop {
        let notice = tokio::select! {
            notice = feed.next() => Some(notice),
            _ = tick.tick() => None,
        };
        let Some(state) = state.upgrade() else { return };
        let watched = state.outside.receiver_count() > 0;
        let rescan = match notice {
            None => false,
            Some(Notice::ShuttingDown) => return,
            Some(Notice::Here(request)) => {
                if let Some(pending) = pending.as_mut() {
                    remember(pending, &request.id, Some(&request));
                }
                false
            }
            Some(Notice::Elsewhere(id)) => {
                if watched {
                    if let Some(pending) = pending.as_mut() {
                        // Keep the comparison from reporting it again.
                        if let Ok(request) = state.app.request(&id).await {
                            remember(pending, &id, request.as_ref());
                        }
                    }
                    let _ = state.outside.send(Outside::Request(id));
                }
                false
            }
            Some(Notice::Unknown) => true,
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
    let current: HashMap<String, Request> = match state.app.requests(&filter).await {
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
