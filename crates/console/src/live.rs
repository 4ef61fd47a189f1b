//! What one live queue (an event stream of `/console/events`) makes of the
//! gateway's one change feed ([`countersign_gateway::changes`]), which
//! each stream follows itself:
//!
//! - a request this gateway changed ([`Notice::Here`]) or another replica
//!   changed ([`Notice::Elsewhere`]) is reported with its new status, if
//!   the viewer may see it;
//! - "anything may have changed" ([`Notice::Unknown`]: another process
//!   committed — the only news of the CLI or a second gateway on the same
//!   SQLite file — or notices were lost), and the feed says nothing of new
//!   requests made elsewhere: so the viewer's pending list is read again
//!   and compared with the last one, and each request that appeared,
//!   changed or left is reported.
//!
//! The pending list a stream keeps is updated with what it reports, so
//! nothing is reported twice.

use std::collections::{HashMap, VecDeque};

use countersign_core::{Request, Status};
use countersign_gateway::changes::{Notice, Subscription};
use countersign_store::RequestFilter;

use crate::session::Viewer;
use crate::Shared;

/// More changes than this at once are reported as one "re-read everything".
const MANY: usize = 50;
/// What a stream reports when it may have missed something.
const UNKNOWN: &str = "unknown";

/// One viewer's stream of changes.
#[derive(Debug)]
pub struct Watch {
    state: Shared,
    viewer: Viewer,
    feed: Subscription,
    /// The viewer's pending requests as last read; `None` after a read failed.
    pending: Option<HashMap<String, Request>>,
    /// Statuses heard and not yet reported.
    due: VecDeque<String>,
}

impl Watch {
    /// Subscribes, then takes the first pending list, so that a change
    /// between the two is not missed and one after it is told apart.
    pub async fn start(state: Shared, viewer: Viewer) -> Self {
        let feed = state.app.changes();
        let mut watch = Self { state, viewer, feed, pending: None, due: VecDeque::new() };
        watch.pending = watch.read().await;
        watch
    }

    /// The next change to report: a request's new status, or `unknown`
    /// (the page reads everything again). `None` once the gateway shuts
    /// down.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(status) = self.due.pop_front() {
                return Some(status);
            }
            match self.feed.next().await {
                Notice::ShuttingDown => return None,
                Notice::Here(request) => {
                    if self.state.app.visible_request(&self.viewer.principal, &request.id).await.is_ok() {
                        self.report(&request);
                    }
                }
                Notice::Elsewhere(id) => {
                    if let Ok(request) = self.state.app.visible_request(&self.viewer.principal, &id).await {
                        self.report(&request);
                    }
                }
                Notice::Unknown => self.compare().await,
            }
        }
    }

    /// Queues a request's new status and notes it in the pending list.
    fn report(&mut self, request: &Request) {
        if let Some(pending) = self.pending.as_mut() {
            if request.status == Status::Pending {
                pending.insert(request.id.clone(), request.clone());
            } else {
                pending.remove(&request.id);
            }
        }
        self.due.push_back(request.status.as_str().to_owned());
    }

    /// The viewer's pending requests, as many as the queue shows.
    async fn read(&self) -> Option<HashMap<String, Request>> {
        let filter =
            RequestFilter { status: Some(Status::Pending), limit: crate::queue::LIMIT, ..RequestFilter::default() };
        match self.state.app.visible_page(&self.viewer.principal, &filter).await {
            Ok(page) => Some(page.requests.into_iter().map(|r| (r.id.clone(), r)).collect()),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list pending requests for the live queue");
                None
            }
        }
    }

    /// Reads the pending list again and reports how it differs from the
    /// last one; with no last one to compare with, that anything may have
    /// changed.
    async fn compare(&mut self) {
        let current = self.read().await;
        let (Some(before), Some(now)) = (self.pending.take(), current.as_ref()) else {
            self.pending = current;
            self.due.push_back(UNKNOWN.to_owned());
            return;
        };
        let mut changed: Vec<&String> =
            now.iter().filter(|(id, r)| before.get(*id) != Some(r)).map(|(id, _)| id).collect();
        changed.extend(before.keys().filter(|id| !now.contains_key(*id)));
        if changed.len() > MANY {
            self.due.push_back(UNKNOWN.to_owned());
        } else {
            for id in changed {
                let status = match now.get(id) {
                    Some(request) => Some(request.status.as_str().to_owned()),
                    // Decided, expired or withdrawn: say which.
                    None => self
                        .state
                        .app
                        .visible_request(&self.viewer.principal, id)
                        .await
                        .ok()
                        .map(|r| r.status.as_str().to_owned()),
                };
                self.due.extend(status);
            }
        }
        self.pending = current;
    }
}
