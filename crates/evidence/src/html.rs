//! The evidence pack as one self-contained HTML page: inline styles, an
//! inline SVG chart, no scripts and nothing fetched, so it opens offline,
//! prints as it shows, and can be archived as a single file.
//!
//! Everything that came from the log (names, reasons, payload-derived text)
//! is escaped: a requester chooses its justification, and a report must not
//! become a way to run script in an auditor's browser.

use std::fmt::Write;

use countersign_core::{OutcomeStatus, Timestamp};

use crate::controls::{Section, Status};
use crate::report::{ActionRecord, Distribution, Report, VoteRecord};

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:#1b1f24;margin:2em auto;max-width:1100px;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:1.8em}\
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #d8dbe0;padding:.3em .45em;text-align:left;vertical-align:top}\
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.92em;word-break:break-all}\
.ok{color:#116329;font-weight:600}.bad{color:#b42318;font-weight:600}.muted{color:#57606a}\
.summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.5em}.summary div{border:1px solid #d8dbe0;border-radius:6px;padding:.5em}\
.summary b{display:block;font-size:1.4em}@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}a{color:inherit;text-decoration:none}}";

/// The pack as an HTML document.
pub fn render_html(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024 + report.actions.len() * 600);
    let period = period_text(report);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>countersign evidence pack — {period}</title><style>{STYLE}</style></head><body>\
<h1>countersign evidence pack</h1><p class=\"muted\">Period: {period}. Generated {}. Format {}.</p>",
        esc(&report.generated_at.to_rfc3339()),
        esc(report.format)
    );
    summary(&mut out, report);
    controls(&mut out, report);
    verification(&mut out, report);
    actions(&mut out, report);
    segregation(&mut out, report);
    refusals(&mut out, report);
    time_to_decision(&mut out, &report.time_to_decision);
    closures(&mut out, report);
    out.push_str("</body></html>\n");
    out
}

fn period_text(report: &Report) -> String {
    let since = report.period.since.map_or("the first event".to_owned(), Timestamp::to_rfc3339);
    let until = report.period.until.map_or("the last event".to_owned(), Timestamp::to_rfc3339);
    esc(&format!("{since} to {until}"))
}

fn summary(out: &mut String, report: &Report) {
    let t = &report.totals;
    let v = &report.verification;
    let log = match (v.chain_ok, v.checkpoint.as_ref().map(|c| c.ok)) {
        (true, Some(true)) => "<span class=\"ok\">verified, checkpoint signed</span>",
        (true, None) => "<span class=\"ok\">chain verified</span>",
        (true, Some(false)) | (false, _) => "<span class=\"bad\">does not verify</span>",
    };
    let _ = write!(
        out,
        "<div class=\"summary\"><div>Log<b>{log}</b></div><div>Actions<b>{}</b></div><div>Held for approval<b>{}</b></div>\
<div>Approved<b>{}</b></div><div>Denied<b>{}</b></div><div>Expired<b>{}</b></div><div>Refused attempts<b>{}</b></div>\
<div>Segregation exceptions<b>{}</b></div></div>",
        t.submitted,
        t.held,
        t.approved,
        t.denied_by_approver + t.denied_by_policy,
        t.expired,
        report.refusals.total,
        report.segregation.violations.len()
    );
}

fn controls(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"controls\">Controls</h2><table><tr><th>Framework</th><th>Control</th><th>Evidence</th><th>Status</th><th>Finding</th></tr>");
    for c in &report.controls {
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|s: &Section| format!("<a href=\"#{}\">{}</a>", s.anchor(), esc(s.title())))
            .collect();
        let status = match c.status {
            Status::Met => "<span class=\"ok\">met</span>",
            Status::Exception => "<span class=\"bad\">exception</span>",
            Status::NoActivity => "<span class=\"muted\">no activity</span>",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td><b>{}</b> {}</td><td>{}</td><td>{status}</td><td>{}</td></tr>",
            esc(c.framework),
            esc(c.control),
            esc(c.title),
            evidence.join(", "),
            esc(&c.finding)
        );
    }
    out.push_str("</table>");
}

fn verification(out: &mut String, report: &Report) {
    let v = &report.verification;
    let chain = match (&v.error, v.chain_ok) {
        (Some(e), _) => format!("<span class=\"bad\">broken</span>: {}", esc(e)),
        (None, true) => format!("<span class=\"ok\">verified</span> ({} events)", v.events),
        (None, false) => "<span class=\"bad\">broken</span>".to_owned(),
    };
    let _ = write!(
        out,
        "<h2 id=\"verification\">Log verification</h2><table><tr><th>Hash chain</th><td>{chain}</td></tr>\
<tr><th>Head</th><td>seq {} <code>{}</code></td></tr><tr><th>Events this version cannot read</th><td>{}</td></tr>",
        v.head_seq,
        esc(&v.head_hash),
        v.unreadable_events
    );
    match &v.checkpoint {
        Some(c) => {
            let verdict = match c.ok {
                true => "<span class=\"ok\">verified</span>",
                false => "<span class=\"bad\">failed</span>",
            };
            let _ = write!(
                out,
                "<tr><th>Signed checkpoint</th><td>{verdict}: {}<pre>{}</pre></td></tr><tr><th>Verifier key</th><td><code>{}</code></td></tr>",
                esc(&c.detail),
                esc(&c.note),
                esc(c.key.as_deref().unwrap_or("(none)"))
            );
        }
        None => out.push_str("<tr><th>Signed checkpoint</th><td class=\"muted\">none checked</td></tr>"),
    }
    out.push_str("</table>");
}

fn actions(out: &mut String, report: &Report) {
    let _ = write!(
        out,
        "<h2 id=\"actions\">Privileged actions</h2><p>{} submitted in the period{}. Policy set hashes are those in force at each decision.</p>",
        report.totals.submitted,
        match report.actions_omitted {
            0 => String::new(),
            n => format!("; the first {} are listed, {n} more are counted only (see the JSON pack)", report.actions.len()),
        }
    );
    if report.actions.is_empty() {
        return;
    }
    out.push_str("<table><tr><th>Submitted</th><th>Request</th><th>Requester</th><th>Action</th><th>Decision</th><th>Approvers</th><th>Ended</th><th>Outcome</th></tr>");
    for a in &report.actions {
        action_row(out, a);
    }
    out.push_str("</table>");
}

fn action_row(out: &mut String, a: &ActionRecord) {
    let requester = match &a.on_behalf_of {
        Some(user) => format!("{} <span class=\"muted\">for</span> {}", esc(&a.requester), esc(user)),
        None => esc(&a.requester),
    };
    let decision = format!(
        "{}<br><span class=\"muted\">{}</span><br><code>{}</code>",
        esc(a.decision.as_deref().unwrap_or("undecided")),
        esc(&a.requirements.join(", ")),
        esc(a.policy_hash.as_deref().unwrap_or(""))
    );
    let votes = |votes: &[VoteRecord], verb: &str| -> String {
        votes
            .iter()
            .map(|v| format!("{verb} {} ({}) {}", esc(&v.by), esc(&v.person), esc(&v.at.to_rfc3339())))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let mut people = votes(&a.approvals, "✔");
    if !a.denials.is_empty() {
        if !people.is_empty() {
            people.push_str("<br>");
        }
        people.push_str(&votes(&a.denials, "✘"));
    }
    let ended = match (&a.state, a.concluded_at.or(a.released_at)) {
        (Some(state), Some(at)) => format!("{} {}", esc(state), esc(&at.to_rfc3339())),
        (Some(state), None) => esc(state),
        (None, _) => "<span class=\"muted\">waiting</span>".to_owned(),
    };
    let outcome = a.outcome.as_ref().map_or(String::new(), |o| {
        let text = match o.status {
            OutcomeStatus::Succeeded => "succeeded",
            OutcomeStatus::Failed => "failed",
        };
        match o.exit_code {
            Some(code) => format!("{text} (exit {code})"),
            None => text.to_owned(),
        }
    });
    let _ = write!(
        out,
        "<tr><td>{}</td><td><code>{}</code></td><td>{requester}</td><td>{} on <b>{}</b><br><span class=\"muted\">{}</span></td><td>{decision}</td><td>{people}</td><td>{ended}</td><td>{outcome}</td></tr>",
        esc(&a.submitted_at.to_rfc3339()),
        esc(&a.id),
        esc(&a.kind),
        esc(&a.resource),
        esc(a.justification.as_deref().unwrap_or(""))
    );
}

fn segregation(out: &mut String, report: &Report) {
    let s = &report.segregation;
    let _ = write!(
        out,
        "<h2 id=\"segregation\">Segregation of duties</h2><p>Recomputed from the log: {} votes checked; {} approved actions had only distinct approvers, none of them the requester, the requesting agent's owner or the person the action was done for. {} self-approval attempts were refused.</p>",
        s.votes_checked, s.approved_with_distinct_approvers, report.refusals.self_approval
    );
    match s.violations.is_empty() {
        true => out.push_str("<p class=\"ok\">No exceptions.</p>"),
        false => {
            out.push_str(
                "<table><tr><th>Request</th><th>Seq</th><th>Voter</th><th>Person</th><th>Rule broken</th></tr>",
            );
            for v in &s.violations {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
                    esc(&v.id),
                    v.seq,
                    esc(&v.by),
                    esc(&v.person),
                    esc(&v.rule)
                );
            }
            out.push_str("</table>");
        }
    }
}

fn refusals(out: &mut String, report: &Report) {
    let r = &report.refusals;
    let _ = write!(
        out,
        "<h2 id=\"refusals\">Refused attempts</h2><table><tr><th>Self-approval attempts</th><td class=\"num\">{}</td></tr>\
<tr><th>Bad, expired or revoked credentials</th><td class=\"num\">{}</td></tr><tr><th>Chat callbacks refused (forged, stale or replayed signatures)</th><td class=\"num\">{}</td></tr>\
<tr><th>Rate-limited</th><td class=\"num\">{}</td></tr><tr><th>All refusals</th><td class=\"num\">{}</td></tr></table>",
        r.self_approval, r.bad_credentials, r.integration, r.rate_limited, r.total
    );
    if !r.by_code.is_empty() {
        out.push_str("<table><tr><th>Event / code</th><th>Count</th></tr>");
        for (code, count) in &r.by_code {
            let _ = write!(out, "<tr><td><code>{}</code></td><td class=\"num\">{count}</td></tr>", esc(code));
        }
        out.push_str("</table>");
    }
}

fn time_to_decision(out: &mut String, d: &Distribution) {
    let ms = |v: Option<i64>| v.map_or("–".to_owned(), duration_text);
    let _ = write!(
        out,
        "<h2 id=\"time-to-decision\">Time to decision</h2><p>{} held actions reached a decision: median {}, 90th percentile {}, longest {}.</p>",
        d.count,
        ms(d.p50_ms),
        ms(d.p90_ms),
        ms(d.max_ms)
    );
    let max = d.buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let (width, bar_height, gap) = (640u64, 22u64, 6u64);
    let height = (bar_height + gap) * d.buckets.len() as u64;
    let _ = write!(
        out,
        "<svg role=\"img\" aria-label=\"time to decision\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">",
        width + 200,
        width + 200
    );
    for (i, bucket) in d.buckets.iter().enumerate() {
        let y = i as u64 * (bar_height + gap);
        let w = bucket.count * width / max;
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"90\" y=\"{y}\" width=\"{w}\" height=\"{bar_height}\" fill=\"#3b82f6\"/><text x=\"{}\" y=\"{}\">{}</text>",
            y + 15,
            esc(bucket.label),
            96 + w,
            y + 15,
            bucket.count
        );
    }
    out.push_str("</svg>");
}

fn closures(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"closures\">Expiries and revocations</h2>");
    match report.closures.is_empty() {
        true => out.push_str("<p class=\"muted\">No request expired or was revoked in the period.</p>"),
        false => {
            out.push_str("<table><tr><th>At</th><th>Request</th><th>Ended</th><th>Reason</th></tr>");
            for c in &report.closures {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    esc(&c.at.to_rfc3339()),
                    esc(&c.id),
                    c.kind,
                    esc(&c.reason)
                );
            }
            out.push_str("</table>");
        }
    }
    out.push_str("<h2 id=\"revocations\">Identity revocations</h2>");
    match report.identity_revocations.is_empty() {
        true => out.push_str("<p class=\"muted\">No identity was revoked in the period.</p>"),
        false => {
            out.push_str("<table><tr><th>At</th><th>Identity</th><th>By</th></tr>");
            for r in &report.identity_revocations {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.at.to_rfc3339()),
                    esc(&r.identity),
                    esc(&r.by)
                );
            }
            out.push_str("</table>");
        }
    }
    out.push_str("<h2 id=\"policy-changes\">Policy changes</h2>");
    match report.policy_changes.is_empty() {
        true => out.push_str("<p class=\"muted\">The policy set did not change in the period.</p>"),
        false => {
            out.push_str("<table><tr><th>At</th><th>Seq</th><th>Change</th><th>Set hash</th><th>By</th></tr>");
            for p in &report.policy_changes {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&p.at.to_rfc3339()),
                    p.seq,
                    p.change,
                    esc(p.hash.as_deref().unwrap_or("")),
                    esc(&p.by)
                );
            }
            out.push_str("</table>");
        }
    }
}

fn duration_text(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 7_200_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        ms => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
