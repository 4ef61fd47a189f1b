//! History: every request the viewer may see, searched by agent, user,
//! kind, resource, status and time, and exported as CSV with the same
//! filters. The newest [`SCAN`] requests are searched.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use countersign_audit::csv;
use countersign_core::{Request, Timestamp};
use countersign_store::RequestFilter;
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{notice, page as frame, Notice, Section};
use crate::session::Viewer;
use crate::view::{contains, filter_input, request_table, status_filter, TextFilters};
use crate::Shared;

/// How many of the newest requests a search looks through.
const SCAN: usize = 1000;
/// How many rows a page shows (the CSV has them all).
const SHOWN: usize = 200;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Search {
    #[serde(flatten)]
    pub text: TextFilters,
    /// A user: the requester, the one acted for, or a voter.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub status: String,
    /// `YYYY-MM-DD` or RFC 3339, inclusive.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

impl Search {
    fn query(&self) -> String {
        use crate::html::url_part;
        format!(
            "{}&user={}&status={}&from={}&to={}",
            self.text.query(),
            url_part(&self.user),
            url_part(&self.status),
            url_part(&self.from),
            url_part(&self.to)
        )
    }
}

/// Parses a date bound; a bare date means the start (or end) of that day.
fn bound(text: &str, end_of_day: bool) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let full = if text.len() == 10 {
        if end_of_day {
            format!("{text}T23:59:59.999Z")
        } else {
            format!("{text}T00:00:00Z")
        }
    } else {
        text.to_owned()
    };
    Timestamp::parse_rfc3339(&full).map(Some).map_err(|_| format!("`{text}` is not a date such as 2026-01-31"))
}

fn user_matches(r: &Request, user: &str) -> bool {
    let user = user.trim();
    user.is_empty()
        || (r.principal.kind == countersign_core::PrincipalKind::User && contains(&r.principal.name, user))
        || r.action.on_behalf_of.as_deref().is_some_and(|o| contains(o, user))
        || r.owner.as_deref().is_some_and(|o| contains(o, user))
        || r.votes.iter().any(|v| contains(&v.by.name, user) || contains(v.person.as_str(), user))
}

async fn search(state: &Shared, viewer: &Viewer, search: &Search) -> Result<Vec<Request>, Response> {
    let status = if search.status.trim().is_empty() {
        None
    } else {
        Some(status_filter(&search.status).ok_or_else(|| bad(&format!("`{}` is not a status", search.status)))?)
    };
    let from = bound(&search.from, false).map_err(|e| bad(&e))?;
    let to = bound(&search.to, true).map_err(|e| bad(&e))?;
    let filter = RequestFilter { status, limit: SCAN, ..RequestFilter::default() };
    let mut requests = state.app.visible_requests(&viewer.principal, &filter).await.map_err(crate::failure::respond)?;
    requests.retain(|r| {
        search.text.admits(r)
            && user_matches(r, &search.user)
            && from.is_none_or(|f| r.created_at >= f)
            && to.is_none_or(|t| r.created_at <= t)
    });
    Ok(requests)
}

fn bad(message: &str) -> Response {
    (axum::http::StatusCode::BAD_REQUEST, notice(Notice::Error, message)).into_response()
}

fn form(s: &Search) -> Markup {
    let statuses = std::iter::once("").chain(countersign_core::Status::ALL.iter().map(|st| st.as_str()));
    html! {
        form class="filters" method="get" action="/console/history" role="search" aria-label="Search the history" {
            (filter_input("agent", "Agent", &s.text.agent))
            (filter_input("user", "User", &s.user))
            (filter_input("kind", "Kind", &s.text.kind))
            (filter_input("resource", "Resource", &s.text.resource))
            div class="field" {
                label for="f-status" { "Status" }
                select id="f-status" name="status" {
                    @for st in statuses {
                        option value=(st) selected[st == s.status] { (if st.is_empty() { "any" } else { st }) }
                    }
                }
            }
            div class="field" {
                label for="f-from" { "From" }
                input id="f-from" name="from" type="date" value=(s.from);
            }
            div class="field" {
                label for="f-to" { "To" }
                input id="f-to" name="to" type="date" value=(s.to);
            }
            div class="field actions" {
                button type="submit" { "Search" }
                a href="/console/history" { "Clear" }
            }
        }
    }
}

pub async fn page(State(state): State<Shared>, viewer: Viewer, Query(s): Query<Search>) -> Response {
    let results = match search(&state, &viewer, &s).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let shown = &results[..results.len().min(SHOWN)];
    let body = html! {
        h1 { "History" }
        (form(&s))
        p class="count" {
            (results.len()) " found · "
            a href={ "/console/history.csv?" (s.query()) } download { "Export CSV" }
        }
        @if results.len() > SHOWN {
            p class="muted" { "Showing the newest " (SHOWN) " of " (results.len()) "; the CSV has them all." }
        }
        (request_table(shown, "Requests found", "No requests match."))
    };
    frame("History", Section::History, Some(&viewer), body).into_response()
}

pub async fn csv(State(state): State<Shared>, viewer: Viewer, Query(s): Query<Search>) -> Response {
    let results = match search(&state, &viewer, &s).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let mut out = csv::row([
        "id",
        "created_at",
        "status",
        "kind",
        "resource",
        "principal",
        "owner",
        "on_behalf_of",
        "justification",
        "approvals",
        "denials",
        "policies",
        "fingerprint",
        "reason",
    ]);
    for r in &results {
        let approvals: Vec<&str> = r.approvals().map(|v| v.by.name.as_str()).collect();
        let denials: Vec<&str> =
            r.votes.iter().filter(|v| v.kind == countersign_core::VoteKind::Deny).map(|v| v.by.name.as_str()).collect();
        let fields = [
            r.id.clone(),
            r.created_at.to_rfc3339(),
            r.status.as_str().to_owned(),
            r.action.kind.clone(),
            r.action.resource.clone(),
            r.principal.to_string(),
            r.owner.clone().unwrap_or_default(),
            r.action.on_behalf_of.clone().unwrap_or_default(),
            r.action.justification.clone().unwrap_or_default(),
            approvals.join(" "),
            denials.join(" "),
            r.policies.join(" "),
            r.fingerprint.as_str().to_owned(),
            r.reason.clone(),
        ];
        out.push_str(&csv::row(&fields));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"countersign-history.csv\""),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds() {
        assert!(bound("", false).unwrap().is_none());
        let from = bound("2026-01-31", false).unwrap().unwrap();
        let to = bound("2026-01-31", true).unwrap().unwrap();
        assert!(from < to);
        assert!(bound("yesterday", false).is_err());
    }
}
