//! The policies page's simulation (admins): a pasted candidate set decides
//! again the actions the log recorded, and the page shows what would
//! change — what `countersign policy simulate` reports, from the same
//! `countersign_policy::simulate`.
//!
//! Bounded for a web request: the paste ([`MAX_PASTE_BYTES`]), the window
//! ([`MAX_DAYS`]), the actions decided ([`MAX_ACTIONS`], the first ones in
//! the window; the CLI has no such cap), and one simulation at a time.
//! Deciding runs on blocking threads, a page of the log at a time.

use std::sync::Arc;

use countersign_core::{Principal, Timestamp};
use countersign_policy::simulate::{evaluate, parse_events, Replayer, Report, Side};
use countersign_policy::{Defaults, PolicyEngine, PolicySource};
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{notice, Notice};
use crate::view::column_heads;
use crate::Shared;

/// The largest candidate set accepted, in bytes.
pub const MAX_PASTE_BYTES: usize = 256 * 1024;
/// The longest window, in days.
pub const MAX_DAYS: u32 = 365;
/// The window when the form does not say.
pub const DEFAULT_DAYS: u32 = 30;
/// The most actions one simulation decides.
pub const MAX_ACTIONS: u64 = 200_000;
/// The name the pasted set's policies are reported under (`pasted.cedar:3:5`).
pub const PASTED_FILE: &str = "pasted.cedar";
/// Events read per store call.
const PAGE: usize = 5_000;

#[derive(Debug, Deserialize)]
pub struct SimulateForm {
    #[serde(default)]
    pub(crate) _csrf: String,
    #[serde(default)]
    pub(crate) policies: String,
    #[serde(default)]
    pub(crate) days: String,
}

/// The form's window, checked.
pub(crate) fn days(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_DAYS);
    }
    match text.parse::<u32>() {
        Ok(days) if (1..=MAX_DAYS).contains(&days) => Ok(days),
        Ok(_) | Err(_) => Err(format!("The window must be a whole number of days from 1 to {MAX_DAYS}.")),
    }
}

/// Runs the simulation the form asks for; the result as page markup.
pub(crate) async fn run(state: &Shared, form: &SimulateForm) -> Markup {
    if form.policies.len() > MAX_PASTE_BYTES {
        return notice(Notice::Error, &format!("The policy set is larger than {} KiB.", MAX_PASTE_BYTES / 1024));
    }
    if form.policies.trim().is_empty() {
        return notice(Notice::Error, "Paste a policy set to simulate.");
    }
    let days = match days(&form.days) {
        Ok(days) => days,
        Err(message) => return notice(Notice::Error, &message),
    };
    let config = state.app.config();
    let defaults = Defaults { timeout: config.default_timeout, valid_for: config.default_valid_for };
    let source = PolicySource { file: PASTED_FILE.to_owned(), text: form.policies.clone() };
    let engine = match PolicyEngine::from_sources(vec![source], None, defaults) {
        Ok(engine) => Arc::new(engine.with_sql_dialects(config.sql_dialects.clone())),
        Err(error) => return problems(&error.problems()),
    };
    let Ok(_running) = state.simulation.try_lock() else {
        return notice(Notice::Error, "A simulation is already running; try again when it has finished.");
    };
    let since = Timestamp(Timestamp::now().0.saturating_sub(i64::from(days) * 86_400_000));
    match replay(state, engine, since).await {
        Ok((report, capped)) => render(&report, since, capped),
        Err(e) => {
            tracing::error!(error = %e, "policy simulation failed");
            notice(Notice::Error, "The audit log could not be read; nothing was simulated.")
        }
    }
}

fn problems(problems: &[String]) -> Markup {
    html! {
        div class="notice notice-error" role="alert" {
            p { "The policy set does not load:" }
            ul id="simulate-problems" {
                @for problem in problems { li { code class="wrap" { (problem) } } }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error(transparent)]
    Store(#[from] countersign_store::StoreError),
    #[error("the simulation thread failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Reads the whole log (identities come from all of it) and decides the
/// actions in the window, up to [`MAX_ACTIONS`]; `true` if it stopped there.
async fn replay(state: &Shared, engine: Arc<PolicyEngine>, since: Timestamp) -> Result<(Report, bool), ReplayError> {
    let directory = state.app.directory();
    let mut principals: Vec<Principal> = directory.users().await?.iter().map(|u| u.principal()).collect();
    principals.extend(directory.agents().await?.iter().map(|a| a.principal()));
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut work = (Replayer::new(Some(since), principals), Report::new(&engine), false);
    let mut after = 0;
    loop {
        let page = state.app.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() == PAGE;
        let engine = Arc::clone(&engine);
        work = tokio::task::spawn_blocking(move || {
            let (mut replayer, mut report, mut capped) = work;
            let mut batch = Vec::new();
            for (event, parsed) in page.iter().zip(parse_events(&page, threads)) {
                replayer.push(event, parsed, &mut batch);
            }
            let room = usize::try_from(MAX_ACTIONS.saturating_sub(report.replayed)).unwrap_or(usize::MAX);
            if batch.len() > room {
                batch.truncate(room);
                capped = true;
            }
            for (recorded, candidate) in batch.iter().zip(evaluate(&engine, &batch, threads)) {
                report.add(recorded, &candidate);
            }
            (replayer, report, capped)
        })
        .await?;
        if !full || work.2 {
            break;
        }
    }
    let (replayer, report, capped) = work;
    Ok((report.with_log(replayer.finish()), capped))
}

fn side(side: &Side) -> Markup {
    html! {
        span class={ "badge status-" (side.outcome.as_str()) } { (side.outcome.as_str()) }
        " "
        @if side.policies.is_empty() { span class="muted" { "no policy" } } @else { code { (side.policies.join(", ")) } }
        @for r in &side.requirements {
            br;
            span class="small" { (r.quorum) " of " (r.groups.join(", ")) " (" code { (r.policy) } ")" }
        }
    }
}

fn render(report: &Report, since: Timestamp, capped: bool) -> Markup {
    let mut notes: Vec<String> = Vec::new();
    if capped {
        notes.push(format!(
            "Stopped after {MAX_ACTIONS} actions; `countersign policy simulate` replays the whole window."
        ));
    }
    let log = &report.log;
    if log.unknown_principals > 0 {
        notes.push(format!(
            "{} actions by principals neither the log nor the directory describes were decided with no groups.",
            log.unknown_principals
        ));
    }
    if log.malformed > 0 {
        let first: Vec<String> =
            report.malformed.iter().take(3).map(|m| format!("seq {} `{}`: {}", m.seq, m.kind, m.why)).collect();
        notes.push(format!(
            "{} events could not be read and were skipped (first: {}).",
            log.malformed,
            first.join("; ")
        ));
    }
    if log.unpaired > 0 {
        notes.push(format!("{} events without their pair were not replayed.", log.unpaired));
    }
    if report.other_policies_only > 0 {
        notes.push(format!(
            "{} decisions keep their outcome and approvers under other policy ids (not a change).",
            report.other_policies_only
        ));
    }
    if report.candidate_errors > 0 {
        notes.push(format!("A candidate policy raised an error in {} decisions.", report.candidate_errors));
    }
    let mut policies: Vec<_> = report.by_policy.iter().collect();
    policies.sort_by(|a, b| b.1.changes.cmp(&a.1.changes).then(a.0.cmp(b.0)));
    html! {
        div class="result" role="status" id="simulate-result" {
            dl {
                dt { "Replayed" } dd { (report.replayed) " actions submitted since " (crate::html::time(since)) }
                dt { "Candidate" } dd { code class="wrap" { (report.candidate_hash) } " (" (report.candidate_policies) " policies)" }
                dt { "Would change" } dd { strong id="simulate-changed" { (report.changed) } }
            }
            @if report.changed > 0 {
                table class="changes" {
                    caption { "Changes" }
                    (column_heads(&["Change", "Decisions"]))
                    tbody {
                        @for (label, n) in &report.changes {
                            tr { td data-label="Change" { (label) } td data-label="Decisions" { (n) } }
                        }
                    }
                }
                table class="by-policy" {
                    caption { "By policy" }
                    (column_heads(&["Policy", "Changes", "Now determines", "No longer determines", "Other approvers"]))
                    tbody {
                        @for (id, impact) in &policies {
                            tr {
                                td data-label="Policy" { code { (id) } }
                                td data-label="Changes" { (impact.changes) }
                                td data-label="Now determines" { (impact.now_determines) }
                                td data-label="No longer determines" { (impact.no_longer_determines) }
                                td data-label="Other approvers" { (impact.requirement_changed) }
                            }
                        }
                    }
                }
                table class="examples" {
                    caption { "Examples" }
                    (column_heads(&["Change", "Request", "Action", "Recorded", "Candidate"]))
                    tbody {
                        @for e in report.sorted_examples() {
                            tr {
                                td data-label="Change" { (e.change.label()) }
                                td data-label="Request" {
                                    a href={ "/console/requests/" (crate::html::url_part(&e.id)) } { code { (e.id) } }
                                    br; (crate::html::time(e.time))
                                }
                                td data-label="Action" {
                                    (e.principal) ": " code { (e.kind) } " on " code { (e.resource) }
                                    br;
                                    code class="wrap small" { (e.payload) @if e.truncated { "…" } }
                                }
                                td data-label="Recorded" { (side(&e.recorded)) }
                                td data-label="Candidate" {
                                    (side(&e.candidate))
                                    @if let Some(reason) = &e.candidate.reason { br; span class="small muted" { (reason) } }
                                }
                            }
                        }
                    }
                }
            }
            @if !notes.is_empty() {
                ul class="notes" { @for note in &notes { li { (note) } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_checked() {
        assert_eq!(days(""), Ok(DEFAULT_DAYS));
        assert_eq!(days(" 7 "), Ok(7));
        assert_eq!(days("365"), Ok(365));
        for bad in ["0", "366", "-1", "x", "1e3", "99999999999"] {
            assert!(days(bad).is_err(), "{bad}");
        }
    }
}
