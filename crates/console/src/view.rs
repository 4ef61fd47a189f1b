//! Pieces several pages share: request rows, filters, the words for
//! statuses and refusals, and form parsing helpers.

use countersign_core::text::truncate;
use countersign_core::{Request, Status};

use maud::{html, Markup};

use crate::html::{status_badge, time, url_part};

/// The most characters of a justification a table row shows, the marker
/// included: its first 120 characters and an ellipsis when it is longer.
const ROW_JUSTIFICATION_CHARS: usize = 121;

/// A table's header row: one column head per name; an empty name is the
/// actions column, named for screen readers only.
pub fn column_heads(names: &[&str]) -> Markup {
    html! {
        thead {
            tr {
                @for name in names {
                    @if name.is_empty() {
                        th scope="col" { span class="visually-hidden" { "Actions" } }
                    } @else {
                        th scope="col" { (name) }
                    }
                }
            }
        }
    }
}

/// The text filters of the queue and history pages; each matches a
/// substring, case-insensitively.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TextFilters {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub agent: String,
}

impl TextFilters {
    pub fn admits(&self, request: &Request) -> bool {
        contains(&request.action.kind, &self.kind)
            && contains(&request.action.resource, &self.resource)
            && contains(&request.principal.name, &self.agent)
    }

    /// The filters as a query string (for links and live refreshes).
    pub fn query(&self) -> String {
        format!("kind={}&resource={}&agent={}", url_part(&self.kind), url_part(&self.resource), url_part(&self.agent))
    }
}

pub fn contains(haystack: &str, needle: &str) -> bool {
    let needle = needle.trim();
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// One labelled text input of a filter form.
pub fn filter_input(name: &str, label: &str, value: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div class="field" {
            label for=(id) { (label) }
            input id=(id) name=(name) value=(value) autocomplete="off";
        }
    }
}

/// The table of requests used by the queue and history pages; on narrow
/// screens the CSS turns each row into a card, using `data-label`.
pub fn request_table(requests: &[Request], caption: &str, empty: &str) -> Markup {
    if requests.is_empty() {
        return html! { p class="empty" { (empty) } };
    }
    html! {
        table class="requests" {
            caption class="visually-hidden" { (caption) }
            (column_heads(&["Action", "Resource", "Requested by", "Status", "Needs", "Asked"]))
            tbody {
                @for r in requests { (request_row(r)) }
            }
        }
    }
}

fn request_row(r: &Request) -> Markup {
    html! {
        tr {
            td data-label="Action" {
                a href={ "/console/requests/" (url_part(&r.id)) } { (r.action.kind) }
                @if let Some(why) = r.action.justification.as_deref() {
                    div class="muted small" { (truncate(why, ROW_JUSTIFICATION_CHARS)) }
                }
            }
            td data-label="Resource" { (r.action.resource) }
            td data-label="Requested by" { (r.principal.to_string()) }
            td data-label="Status" { (status_badge(r.status.as_str())) }
            td data-label="Needs" { (needs(r)) }
            td data-label="Asked" { (time(r.created_at)) }
        }
    }
}

/// "1/2 of sre, dba" per requirement, one a line.
pub fn needs(r: &Request) -> Markup {
    html! {
        @if r.requirements.is_empty() {
            "—"
        }
        @for (i, req) in r.requirements.iter().enumerate() {
            @if i > 0 { br; }
            (r.approvals_for(req)) "/" (req.quorum) " of " (req.groups.join(", "))
            @if req.routing.step_up { " " span class="badge" { "step-up" } }
        }
    }
}

/// Parses a status filter.
pub fn status_filter(text: &str) -> Option<Status> {
    Status::parse(text.trim())
}
