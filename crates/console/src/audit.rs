//! The audit page: whether the hash chain verifies (and up to which
//! event), the key that signs checkpoints and the latest one, and a
//! browser for the events, newest first, filtered by type, actor and
//! request id.
//!
//! Verification is incremental: the console keeps the verifier's state
//! and, at each visit, checks only the events appended since, so the page
//! stays fast on a long log. A break is remembered until restart (the log
//! cannot heal itself).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use countersign_audit::{AuditEvent, ChainBreak, ChainVerifier};
use countersign_core::events::Parsed;
use countersign_core::Timestamp;
use maud::{html, Markup};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::html::{time, url_part};
use crate::layout::{page as frame, Section};
use crate::session::Viewer;
use crate::view::{column_heads, contains, filter_input};
use crate::Shared;

/// Events read per store call while verifying or browsing.
const BATCH: usize = 5000;
/// Rows per page of the browser.
const PAGE: usize = 50;
/// The most events one filtered browse looks through.
const SCAN: usize = 50_000;

#[derive(Debug, Default)]
struct Progress {
    verifier: ChainVerifier,
    head_seq: u64,
    head_time: Option<Timestamp>,
    broken: Option<ChainBreak>,
    checked_at: Option<Timestamp>,
}

/// The verifier's state between visits.
#[derive(Debug, Default)]
pub struct Cache(Mutex<Progress>);

/// What the page reports.
#[derive(Debug, Clone)]
pub struct Status {
    pub head_seq: u64,
    pub head_time: Option<Timestamp>,
    pub broken: Option<ChainBreak>,
    pub checked_at: Timestamp,
}

impl Cache {
    /// Verifies whatever was appended since the last call.
    pub async fn verify(&self, state: &Shared) -> Result<Status, countersign_store::StoreError> {
        let mut progress = self.0.lock().await;
        while progress.broken.is_none() {
            let events = state.app.audit_events(progress.head_seq, BATCH).await?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                if let Err(e) = progress.verifier.push(event) {
                    progress.broken = Some(e);
                    break;
                }
                progress.head_seq = event.seq;
                progress.head_time = Some(event.time);
            }
        }
        let now = Timestamp::now();
        progress.checked_at = Some(now);
        Ok(Status {
            head_seq: progress.head_seq,
            head_time: progress.head_time,
            broken: progress.broken.clone(),
            checked_at: now,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Browse {
    /// Show events with `seq` below this (older pages).
    before: Option<u64>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    actor: String,
    /// A request id in the event's body.
    #[serde(default)]
    request: String,
}

pub async fn page(State(state): State<Shared>, viewer: Viewer, Query(browse): Query<Browse>) -> Response {
    if !viewer.principal.is_auditor() {
        return forbidden(&viewer);
    }
    let status = match state.audit.verify(&state).await {
        Ok(s) => s,
        Err(e) => return crate::failure::respond(e),
    };
    let verdict = match &status.broken {
        None => html! {
            div class="notice notice-ok" role="status" {
                strong { "Verified" } " up to sequence " (status.head_seq)
                @if let Some(t) = status.head_time { " (" (time(t)) ")" }
                "; checked " (time(status.checked_at)) "."
            }
        },
        Some(b) => html! {
            div class="notice notice-error" role="alert" {
                strong { "Broken." } " " (b.to_string()) " Everything before sequence " (b.seq) " verifies. "
                "Run " code { "countersign audit verify" } " for details."
            }
        },
    };
    // Past a break, the verifier stops; the browser still shows everything.
    let mut head = status.head_seq;
    if status.broken.is_some() {
        while let Ok(rest) = state.app.audit_events(head, BATCH).await {
            match rest.last() {
                Some(last) if last.seq > head => head = last.seq,
                Some(_) | None => break,
            }
        }
    }
    let (events, next_before) = match find(&state, &browse, head).await {
        Ok(found) => found,
        Err(e) => return crate::failure::respond(e),
    };
    let older = next_before.map(|before| {
        format!(
            "/console/audit?before={before}&type={}&actor={}&request={}",
            url_part(&browse.kind),
            url_part(&browse.actor),
            url_part(&browse.request)
        )
    });
    let latest = match state.app.latest_checkpoint().await {
        Ok(note) => {
            note.and_then(|n| countersign_audit::checkpoint::Checkpoint::parse_unverified(&n).ok().map(|c| (c.size, n)))
        }
        Err(e) => return crate::failure::respond(e),
    };
    let signing = html! {
        section class="checkpoints" aria-label="Signed checkpoints" {
            @match state.app.audit_verifier() {
                Some(verifier) => {
                    p { "Checkpoints are signed with this verifier key (C2SP vkey); give it to whoever checks proofs ("
                        code { "countersign audit verify-proof FILE --key VKEY" } "):" }
                    pre class="wrap" id="audit-vkey" { (verifier.vkey()) }
                }
                None => p class="muted" { "This gateway does not sign checkpoints." }
            }
            @if let Some((size, note)) = latest {
                details {
                    summary { "Latest checkpoint: " (size) " events" }
                    pre class="wrap" { (note) }
                }
            }
        }
    };
    let body = html! {
        h1 { "Audit" }
        (verdict)
        (signing)
        form class="filters" method="get" action="/console/audit" role="search" aria-label="Filter events" {
            (filter_input("type", "Type", &browse.kind))
            (filter_input("actor", "Actor", &browse.actor))
            (filter_input("request", "Request id", &browse.request))
            div class="field actions" {
                button type="submit" { "Filter" }
                a href="/console/audit" { "Clear" }
            }
        }
        @if events.is_empty() {
            p class="empty" { "No events match." }
        } @else {
            table class="events" {
                caption class="visually-hidden" { "Audit events, newest first" }
                (column_heads(&["Seq", "Time", "Type", "Actor", "Details"]))
                tbody { @for event in &events { (row(event)) } }
            }
        }
        @if let Some(older) = older {
            p { a href=(older) { "Older events" } }
        }
        (crate::evidence::form())
    };
    frame("Audit", Section::Audit, Some(&viewer), body).into_response()
}

pub fn forbidden(viewer: &Viewer) -> Response {
    let body = html! {
        h1 { "Not for you" }
        p { "This page is for the " code { "auditor" } " and " code { "admin" } " groups." }
    };
    (StatusCode::FORBIDDEN, frame("Forbidden", Section::None, Some(viewer), body)).into_response()
}

fn matches(event: &AuditEvent, browse: &Browse) -> bool {
    contains(&event.kind, &browse.kind)
        && contains(&event.actor, &browse.actor)
        && (browse.request.trim().is_empty() || request_of(event).as_deref() == Some(browse.request.trim()))
}

/// The request whose history `event` is part of, for the filter and the
/// link.
fn request_of(event: &AuditEvent) -> Option<String> {
    match event.parsed() {
        Parsed::Known(known) => known.request().map(str::to_owned),
        // Still found by its request: an event this version cannot read
        // names it in `id` as every request event does.
        Parsed::Unknown(unknown) => unknown.body.get("id").and_then(|v| v.as_str()).map(str::to_owned),
    }
}

/// Up to a page of matching events below `before` (or the head), newest
/// first, and where the next older page starts.
async fn find(
    state: &Shared,
    browse: &Browse,
    head: u64,
) -> Result<(Vec<AuditEvent>, Option<u64>), countersign_store::StoreError> {
    let mut upper = browse.before.unwrap_or(head.saturating_add(1)).min(head.saturating_add(1));
    let mut found = Vec::new();
    let mut scanned = 0;
    while upper > 1 && found.len() < PAGE && scanned < SCAN {
        let lower = upper.saturating_sub(u64::try_from(BATCH.min(PAGE * 20)).unwrap_or(1000)).max(1);
        let chunk = state.app.audit_events(lower - 1, usize::try_from(upper - lower).unwrap_or(0)).await?;
        scanned += chunk.len();
        for event in chunk.iter().rev() {
            if matches(event, browse) {
                found.push(event.clone());
                if found.len() == PAGE {
                    return Ok((found, Some(event.seq)));
                }
            }
        }
        upper = lower;
    }
    let next = (upper > 1).then_some(upper);
    Ok((found, next))
}

fn row(e: &AuditEvent) -> Markup {
    let body = e.body_value();
    let text = serde_json::to_string(&body).unwrap_or_default();
    html! {
        tr {
            td data-label="Seq" { (e.seq) }
            td data-label="Time" { (time(e.time)) }
            td data-label="Type" { code { (e.kind) } }
            td data-label="Actor" { (e.actor) }
            td data-label="Details" {
                @if let Some(id) = request_of(e) {
                    a href={ "/console/requests/" (url_part(&id)) } { "request" } " "
                }
                details {
                    summary { "body" }
                    pre class="json" { (text) }
                    p class="small muted" { "hash " code class="wrap" { (e.hash) } }
                }
            }
        }
    }
}
