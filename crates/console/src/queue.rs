//! The pending queue: what the viewer may decide (or, for auditors,
//! everything pending), filtered by kind, resource and agent. The table
//! refreshes itself: the page listens on `/console/events` (server-sent
//! events, one per change to a request the viewer may see) and fetches
//! `/console/fragments/queue` again, so new requests and decisions appear
//! without a reload, whichever replica or process made them (see
//! [`crate::live`]). The page also re-reads the table whenever its event
//! stream (re)connects, so nothing is lost while it was away.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use countersign_core::Status;
use countersign_store::RequestFilter;
use futures_util::stream::Stream;
use maud::{html, Markup};

use crate::layout::{page as frame, Section};
use crate::live::Watch;
use crate::session::Viewer;
use crate::view::{filter_input, request_table, TextFilters};
use crate::Shared;

/// How many pending requests the queue shows at most.
pub(crate) const LIMIT: usize = 500;

async fn rows(state: &Shared, viewer: &Viewer, filters: &TextFilters) -> Result<Markup, Response> {
    let filter = RequestFilter { status: Some(Status::Pending), limit: LIMIT, ..RequestFilter::default() };
    // Filtered in the store to what the viewer may see, so others' requests
    // never crowd theirs out; `next` says there are more than one page.
    let page = state.app.visible_page(&viewer.principal, &filter).await.map_err(crate::failure::respond)?;
    let more = page.next.is_some();
    let mut requests = page.requests;
    requests.retain(|r| filters.admits(r));
    // Oldest first: what has waited longest comes first.
    requests.reverse();
    Ok(html! {
        p class="count" id="queue-count" { (requests.len()) " waiting" }
        @if more {
            p class="muted" id="queue-more" {
                "More are waiting than the " (LIMIT) " newest shown here; narrow the filters to find older ones."
            }
        }
        (request_table(
            &requests,
            "Requests waiting for a decision",
            "Nothing is waiting for you. New requests appear here as they arrive.",
        ))
    })
}

pub async fn page(State(state): State<Shared>, viewer: Viewer, Query(filters): Query<TextFilters>) -> Response {
    let rows = match rows(&state, &viewer, &filters).await {
        Ok(rows) => rows,
        Err(response) => return response,
    };
    let body = html! {
        h1 { "Pending" }
        (crate::groups_hint::for_queue(&state, &viewer))
        form class="filters" method="get" action="/console/" role="search" aria-label="Filter the queue" {
            (filter_input("kind", "Kind", &filters.kind))
            (filter_input("resource", "Resource", &filters.resource))
            (filter_input("agent", "Agent", &filters.agent))
            div class="field actions" {
                button type="submit" { "Filter" }
                a href="/console/" { "Clear" }
            }
        }
        div id="queue" data-live={ "/console/fragments/queue?" (filters.query()) } aria-live="polite" aria-busy="false" {
            (rows)
        }
        p class="muted small" id="live-status" { "Updates live." }
    };
    frame("Pending", Section::Pending, Some(&viewer), body).into_response()
}

/// The queue's table alone, for live refreshes.
pub async fn fragment(State(state): State<Shared>, viewer: Viewer, Query(filters): Query<TextFilters>) -> Response {
    match rows(&state, &viewer, &filters).await {
        Ok(rows) => rows.into_response(),
        Err(response) => response,
    }
}

/// Server-sent events: `change` whenever a request the viewer may see is
/// created or changes, through this gateway or any other sharing its store
/// (the data is the new status, or `unknown` when the stream may have
/// missed some; see [`crate::live`]). The stream ends when the gateway
/// shuts down, so it never holds up a graceful stop.
pub async fn events(State(state): State<Shared>, viewer: Viewer) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = Watch::start(state, viewer).await;
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        let status = watch.next().await?;
        Some((Ok(Event::default().event("change").data(status)), watch))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
