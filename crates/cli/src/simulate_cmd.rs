//! `policy simulate`: the actions the audit log recorded, decided again by
//! a candidate policy directory, and what would change.
//!
//! The comparison is `countersign_policy::simulate`; this file reads the
//! store and prints. Reading and deciding overlap: one task reads pages of
//! events from the store while a blocking thread parses and decides the
//! previous page on every core.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use countersign_audit::AuditEvent;
use countersign_core::{Principal, Timestamp};
use countersign_policy::simulate::{evaluate, parse_events, Replayer, Report};
use countersign_policy::{Defaults, PolicyEngine};
use serde_json::json;

use crate::cli::{Since, StoreArgs};
use crate::exit::Exit;
use crate::local::{self, Open};
use crate::output::{Output, Style};
use crate::policy_cmd::problems;

/// Events fetched per store call.
const PAGE: usize = 20_000;
/// Pages read ahead of the one being decided.
const READ_AHEAD: usize = 2;

pub async fn simulate(dir: &Path, since: Since, store: &StoreArgs, output: Output) -> anyhow::Result<Exit> {
    let config = local::config(store)?;
    let defaults = Defaults { timeout: config.default_timeout, valid_for: config.default_valid_for };
    let engine = match PolicyEngine::load_dir(dir, defaults) {
        Ok(engine) => engine.with_sql_dialects(config.gateway().sql_dialects),
        Err(error) => {
            let problems = problems(dir, &error);
            if output.is_json() {
                println!("{}", json!({"ok": false, "problems": problems}));
            } else {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                let plural = if problems.len() == 1 { "problem" } else { "problems" };
                eprintln!("{} {} {plural} in {}", Style::stderr().red("error:"), problems.len(), dir.display());
            }
            return Ok(Exit::ERROR);
        }
    };
    let since = match since {
        Since::Ago(age) => {
            Timestamp(Timestamp::now().0.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)))
        }
        Since::At(time) => time,
    };
    let store = local::open_store(&config, Open::Existing).await?;
    let mut directory: Vec<Principal> = store.list_users().await?.iter().map(|u| u.principal()).collect();
    directory.extend(store.list_agents().await?.iter().map(|a| a.principal()));

    let started = Instant::now();
    let report = replay(store, engine, since, directory).await?;
    let elapsed = started.elapsed();
    let exit = if report.changed == 0 { Exit::OK } else { Exit::CHANGED };
    if output.is_json() {
        let mut value = serde_json::to_value(&report)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("ok".into(), json!(true));
            object.insert("since".into(), json!(since));
            object.insert("policies_dir".into(), json!(dir.display().to_string()));
        }
        println!("{value}");
    } else {
        print!("{}", text(&report, since, Style::stdout()));
        let secs = elapsed.as_secs_f64();
        if report.replayed > 0 && secs > 0.0 {
            #[expect(clippy::cast_precision_loss, reason = "a rate for people")]
            let rate = report.replayed as f64 / secs;
            eprintln!("{}", Style::stderr().dim(&format!("{rate:.0} actions/s ({secs:.3} s)")));
        }
    }
    Ok(exit)
}

/// Reads the whole log in pages and decides each recorded action.
async fn replay(
    store: std::sync::Arc<dyn countersign_store::Store>,
    engine: PolicyEngine,
    since: Timestamp,
    directory: Vec<Principal>,
) -> anyhow::Result<Report> {
    let (pages, mut incoming) = tokio::sync::mpsc::channel::<Vec<AuditEvent>>(READ_AHEAD);
    let reader = tokio::spawn(async move {
        let mut after = 0;
        loop {
            let page = store.audit_events(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let full = page.len() == PAGE;
            if pages.send(page).await.is_err() || !full {
                break;
            }
        }
        anyhow::Ok(())
    });
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let decider = tokio::task::spawn_blocking(move || {
        let mut replayer = Replayer::new(Some(since), directory);
        let mut report = Report::new(&engine);
        let mut batch = Vec::new();
        while let Some(page) = incoming.blocking_recv() {
            let parsed = parse_events(&page, threads);
            batch.clear();
            for (event, parsed) in page.iter().zip(parsed) {
                replayer.push(event, parsed, &mut batch);
            }
            let candidates = evaluate(&engine, &batch, threads);
            for (recorded, candidate) in batch.iter().zip(&candidates) {
                report.add(recorded, candidate);
            }
        }
        report.with_log(replayer.finish())
    });
    let report = decider.await?;
    reader.await??;
    Ok(report)
}

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// The human summary.
fn text(report: &Report, since: Timestamp, style: Style) -> String {
    let mut out = String::new();
    let log = &report.log;
    let range = match (log.first_seq, log.last_seq) {
        (Some(first), Some(last)) => format!("events {}–{}", count(first), count(last)),
        _ => "an empty log".to_owned(),
    };
    let _ = writeln!(
        out,
        "replayed {} submitted since {since} ({range}) against {} ({})",
        plural(report.replayed, "action", "actions"),
        report.candidate_hash,
        plural(u64::try_from(report.candidate_policies).unwrap_or(u64::MAX), "policy", "policies"),
    );
    if report.changed == 0 {
        let _ = writeln!(out, "{}", style.green("no recorded decision would change"));
    } else {
        let _ = writeln!(
            out,
            "{}",
            style.yellow(&format!(
                "{} of {} would change:",
                plural(report.changed, "decision", "decisions"),
                count(report.replayed)
            ))
        );
        let width = report.changes.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (label, n) in &report.changes {
            let _ = writeln!(out, "  {label:<width$}  {:>9}", count(*n));
        }
        let _ = writeln!(out, "by policy:");
        let mut policies: Vec<_> = report.by_policy.iter().collect();
        policies.sort_by(|a, b| b.1.changes.cmp(&a.1.changes).then(a.0.cmp(b.0)));
        let width = policies.iter().map(|(id, _)| id.chars().count()).max().unwrap_or(0);
        for (id, impact) in policies {
            let mut roles = Vec::new();
            if impact.now_determines > 0 {
                roles.push(format!("now determines {}", count(impact.now_determines)));
            }
            if impact.no_longer_determines > 0 {
                roles.push(format!("no longer determines {}", count(impact.no_longer_determines)));
            }
            if impact.requirement_changed > 0 {
                roles.push(format!("other approvers {}", count(impact.requirement_changed)));
            }
            let changes: Vec<String> = impact.by_change.iter().map(|(l, n)| format!("{l} {}", count(*n))).collect();
            let _ = writeln!(
                out,
                "  {id:<width$}  {:>9}  ({}; {})",
                count(impact.changes),
                changes.join(", "),
                roles.join(", ")
            );
        }
        let _ = writeln!(out, "examples:");
        for example in report.sorted_examples() {
            let _ = writeln!(
                out,
                "  {}  {}  seq {}  {}  {}  {} on {}",
                style.yellow(&example.change.label()),
                example.id,
                example.seq,
                example.time,
                example.principal,
                example.kind,
                example.resource
            );
            let ellipsis = if example.truncated { "…" } else { "" };
            let _ = writeln!(out, "    payload:   {}{ellipsis}", example.payload);
            let _ = writeln!(out, "    recorded:  {}", side(&example.recorded));
            let _ = writeln!(out, "    candidate: {}", side(&example.candidate));
        }
    }
    let mut notes = Vec::new();
    if report.other_policies_only > 0 {
        notes.push(format!(
            "{} with the same outcome and approvers, determined by other policies (not a change)",
            plural(report.other_policies_only, "decision", "decisions")
        ));
    }
    if report.candidate_errors > 0 {
        notes.push(format!(
            "{} in which a candidate policy raised an error",
            plural(report.candidate_errors, "decision", "decisions")
        ));
    }
    if log.unknown_principals > 0 {
        notes.push(format!(
            "{} by principals neither the log nor the store describes (decided with no groups)",
            plural(log.unknown_principals, "action", "actions")
        ));
    }
    if log.unpaired > 0 {
        notes.push(format!(
            "{} without its pair (a submission without a decision, or the reverse): not replayed",
            plural(log.unpaired, "event", "events")
        ));
    }
    if log.unknown_kinds > 0 {
        notes.push(format!("{} of kinds this version does not know", plural(log.unknown_kinds, "event", "events")));
    }
    if log.malformed > 0 {
        let first: Vec<String> =
            report.malformed.iter().take(3).map(|m| format!("seq {} `{}`: {}", m.seq, m.kind, m.why)).collect();
        notes.push(format!(
            "{} could not be read and were skipped (first: {})",
            plural(log.malformed, "event", "events"),
            first.join("; ")
        ));
    }
    if report.recorded_policy_sets.len() > 1 {
        notes.push(format!("the recorded decisions came from {} policy sets", report.recorded_policy_sets.len()));
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "notes:");
        for note in notes {
            let _ = writeln!(out, "  {note}");
        }
    }
    out
}

fn side(side: &countersign_policy::simulate::Side) -> String {
    let policies = if side.policies.is_empty() { "no policy".to_owned() } else { side.policies.join(", ") };
    let mut line = format!("{} [{policies}]", side.outcome.as_str());
    for r in &side.requirements {
        let _ = write!(line, " {} of {} ({})", r.quorum, r.groups.join("|"), r.policy);
    }
    if let Some(reason) = &side.reason {
        let _ = write!(line, ": {reason}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
