//! The evidence pack download on the audit page (auditors and admins): the
//! same pack as `countersign audit report`, for the days chosen in the
//! form, as a file to keep.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::Timestamp;
use countersign_evidence::Period;
use maud::{html, Markup};
use serde::Deserialize;

use crate::session::Viewer;
use crate::Shared;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    /// First day, `YYYY-MM-DD` (UTC); empty: from the first event.
    #[serde(default)]
    since: String,
    /// Last day, inclusive; empty: to the last event.
    #[serde(default)]
    until: String,
    /// `html` (default) or `json`.
    #[serde(default)]
    format: String,
}

/// The form on the audit page.
pub fn form() -> Markup {
    html! {
        h2 { "Evidence pack" }
        p { "Every privileged action with its requester and approvers, refused attempts, time to decision, expiries, revocations, policy changes and the log's verification, mapped to SOC 2, ISO 27001 and NIST 800-53 controls." }
        form class="filters" method="get" action="/console/audit/report" aria-label="Evidence pack" {
            div class="field" { label for="since" { "From (UTC day)" } input id="since" name="since" type="date"; }
            div class="field" { label for="until" { "Until (inclusive)" } input id="until" name="until" type="date"; }
            div class="field" {
                label for="format" { "Format" }
                select id="format" name="format" { option value="html" { "HTML (printable)" } option value="json" { "JSON" } }
            }
            div class="field actions" { button type="submit" { "Download" } }
        }
    }
}

pub async fn download(State(state): State<Shared>, viewer: Viewer, Query(choice): Query<Choice>) -> Response {
    if !viewer.principal.is_auditor() {
        return crate::audit::forbidden(&viewer);
    }
    let period = match period(&choice) {
        Ok(p) => p,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let json = match choice.format.as_str() {
        "" | "html" => false,
        "json" => true,
        other => return (StatusCode::BAD_REQUEST, format!("unknown format `{}`", truncate(other))).into_response(),
    };
    let report = match state.app.evidence_report(period).await {
        Ok(r) => r,
        Err(e) => return crate::failure::respond(e),
    };
    let (body, kind, name) = match json {
        true => match serde_json::to_string_pretty(&report) {
            Ok(text) => (text, "application/json", "countersign-evidence.json"),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        false => (countersign_evidence::render_html(&report), "text/html; charset=utf-8", "countersign-evidence.html"),
    };
    let disposition = format!("attachment; filename=\"{name}\"");
    ([(header::CONTENT_TYPE, kind.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body).into_response()
}

fn period(choice: &Choice) -> Result<Period, String> {
    let since = day(&choice.since)?;
    let until = day(&choice.until)?.map(|t| Timestamp(t.0.saturating_add(DAY_MS)));
    match (since, until) {
        (Some(s), Some(u)) if s >= u => Err("the first day must not be after the last".to_owned()),
        _ => Ok(Period { since, until }),
    }
}

fn day(text: &str) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let valid = text.len() == 10
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| matches!(i, 4 | 7) == (b == b'-') && (b == b'-' || b.is_ascii_digit()));
    if !valid {
        return Err(format!("`{}` is not a day (YYYY-MM-DD)", truncate(text)));
    }
    Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
        .map(Some)
        .map_err(|_| format!("`{text}` is not a day (YYYY-MM-DD)"))
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_the_last_is_inclusive() {
        let choice = Choice { since: "2026-12-01".into(), until: "2026-12-01".into(), format: String::new() };
        let p = period(&choice).unwrap();
        assert_eq!(p.since.unwrap().to_rfc3339(), "2026-12-01T00:00:00Z");
        assert_eq!(p.until.unwrap().to_rfc3339(), "2026-12-02T00:00:00Z");
        for bad in ["2026-13-01", "26-12-01", "2026-12-01T00:00:00Z", "2026/12/01", "২০২৬-১২-০১"] {
            let choice = Choice { since: bad.into(), ..Choice::default() };
            assert!(period(&choice).is_err(), "{bad}");
        }
        let reversed = Choice { since: "2026-12-02".into(), until: "2026-12-01".into(), format: String::new() };
        assert!(period(&reversed).is_err());
    }
}
