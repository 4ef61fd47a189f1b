//! `audit verify`, `audit export` and `audit report`: reading the
//! hash-chained log straight from the store, in pages, so a long log
//! streams in constant memory (a report keeps only what it lists). The
//! checkpoint and proof commands are in [`crate::audit_proof_cmd`].

use std::io::{BufWriter, ErrorKind, Write};
use std::time::Instant;

use countersign_audit::{csv, AuditEvent, BreakReason, ChainVerifier};
use countersign_core::Timestamp;
use countersign_evidence::Period;
use serde_json::json;

use crate::audit_proof_cmd;
use crate::cli::{AuditCommand, ExportFormat, ReportFormat};
use crate::exit::Exit;
use crate::local::{self, Open};
use crate::output::{Output, Style};

/// Events fetched per store call.
const PAGE: usize = 10_000;

pub async fn run(command: AuditCommand, output: Output) -> anyhow::Result<Exit> {
    match command {
        AuditCommand::Verify { store, since_checkpoint: None, key: _ } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            verify(store.as_ref(), output).await
        }
        AuditCommand::Verify { store, since_checkpoint: Some(file), key } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            audit_proof_cmd::verify_since(store.as_ref(), &config, &file, key.as_deref(), output).await
        }
        AuditCommand::Key { generate, store } => {
            let config = local::config(&store)?;
            audit_proof_cmd::key(&config, generate, output)
        }
        AuditCommand::Prove { id, out, store } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            audit_proof_cmd::prove(store.as_ref(), &config, &id, out, output).await
        }
        AuditCommand::VerifyProof { file, key } => audit_proof_cmd::verify_proof(&file, &key, output),
        AuditCommand::Export { since, until, format, store } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            export(store.as_ref(), since, until, format).await
        }
        AuditCommand::Report { since, until, format, out, store } => {
            let config = local::config(&store)?;
            let store = local::open_store(&config, Open::Existing).await?;
            let verifier = audit_proof_cmd::configured_verifier(&config);
            report(store.as_ref(), verifier.as_ref(), Period { since, until }, format, out.as_deref()).await
        }
    }
}

async fn report(
    store: &dyn countersign_store::Store,
    verifier: Option<&countersign_audit::note::NoteVerifier>,
    period: Period,
    format: ReportFormat,
    out: Option<&std::path::Path>,
) -> anyhow::Result<Exit> {
    if let (Some(since), Some(until)) = (period.since, period.until) {
        if since >= until {
            crate::output::print_error("`--since` must be before `--until`");
            return Ok(Exit::USAGE);
        }
    }
    let report = countersign_gateway::evidence::report(store, period, Timestamp::now(), verifier).await?;
    let text = match format {
        ReportFormat::Html => countersign_evidence::render_html(&report),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
    };
    match out {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
    }
    let verified = report.verification.chain_ok && report.verification.checkpoint.as_ref().is_none_or(|c| c.ok);
    if !verified {
        let why = report.verification.error.as_deref().unwrap_or("the log does not match its signed checkpoint");
        crate::output::print_error(&format!("the audit log does not verify: {why}"));
        return Ok(Exit::ERROR);
    }
    Ok(Exit::OK)
}

async fn verify(store: &dyn countersign_store::Store, output: Output) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    let mut broken = None;
    'pages: loop {
        let page = store.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            if let Err(chain_break) = verifier.push(event) {
                broken = Some(chain_break);
                break 'pages;
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    let elapsed = started.elapsed();
    let style = Style::stderr();
    if let Some(chain_break) = broken {
        let reason = describe(&chain_break.reason);
        if output.is_json() {
            println!(
                "{}",
                json!({
                    "ok": false,
                    "events": chain_break.seq.saturating_sub(1),
                    "first_bad_seq": chain_break.seq,
                    "error": reason,
                })
            );
        } else {
            println!("audit chain broken at seq {}: {reason}", chain_break.seq);
        }
        return Ok(Exit::ERROR);
    }
    let verified = verifier.finish();
    if output.is_json() {
        println!(
            "{}",
            json!({
                "ok": true,
                "events": verified.count,
                "head_seq": verified.head.seq,
                "head_hash": verified.head.hash,
                "head_time": verified.last_time,
            })
        );
    } else {
        let at = verified.last_time.map(|t| format!(" at {t}")).unwrap_or_default();
        println!("verified {} events; head seq {} hash {}{at}", verified.count, verified.head.seq, verified.head.hash);
        let secs = elapsed.as_secs_f64();
        if verified.count > 0 && secs > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let rate = verified.count as f64 / secs;
            eprintln!("{}", style.dim(&format!("{:.0} events/s ({:.3} s)", rate, secs)));
        }
    }
    Ok(Exit::OK)
}

fn describe(reason: &BreakReason) -> String {
    match reason {
        BreakReason::Sequence { found } => {
            format!("found seq {found} instead (an event was removed, inserted or reordered)")
        }
        BreakReason::Link => "its prev_hash does not match the previous event's hash".to_owned(),
        BreakReason::Content => "its content does not match its hash (the event was altered)".to_owned(),
    }
}

async fn export(
    store: &dyn countersign_store::Store,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    format: ExportFormat,
) -> anyhow::Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = write_events(store, since, until, format, &mut out).await;
    let result = match result {
        Ok(()) => out.flush().map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Exit::OK),
        // A reader that stops early (`| head`) is not a failure.
        Err(e) if is_broken_pipe(&e) => Ok(Exit::OK),
        Err(e) => Err(e),
    }
}

async fn write_events(
    store: &dyn countersign_store::Store,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if format == ExportFormat::Csv {
        write!(out, "{}", csv::row(["seq", "time", "actor", "type", "body", "prev_hash", "hash"]))?;
    }
    let mut after = 0;
    loop {
        let page = store.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            if since.is_some_and(|s| event.time < s) {
                continue;
            }
            // Events are in time order, so the first past `until` ends it.
            if until.is_some_and(|u| event.time >= u) {
                return Ok(());
            }
            match format {
                ExportFormat::Jsonl => writeln!(out, "{}", event.to_json())?,
                ExportFormat::Csv => write!(out, "{}", csv_row(event))?,
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(())
}

/// One event as a CSV row (the writer shared with the console, so cells an
/// actor or a body could make look like formulas are defused).
fn csv_row(event: &AuditEvent) -> String {
    csv::row([
        event.seq.to_string(),
        event.time.to_rfc3339(),
        event.actor.clone(),
        event.kind.clone(),
        event.body.clone(),
        event.prev_hash.clone(),
        event.hash.clone(),
    ])
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_have_seven_columns() {
        let event = AuditEvent {
            seq: 3,
            time: Timestamp(0),
            actor: "cli:me".into(),
            kind: "identity.user_created".into(),
            body: r#"{"name":"a"}"#.into(),
            prev_hash: "00".into(),
            hash: "ff".into(),
        };
        assert_eq!(
            csv_row(&event),
            "3,1970-01-01T00:00:00Z,cli:me,identity.user_created,\"{\"\"name\"\":\"\"a\"\"}\",00,ff\r\n"
        );
    }

    #[test]
    fn csv_rows_defuse_formula_cells() {
        for actor in ["=HYPERLINK(\"https://evil.example\",\"x\")", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", " =1"] {
            let event = AuditEvent {
                seq: 1,
                time: Timestamp(0),
                actor: actor.into(),
                kind: "@type".into(),
                body: "=1".into(),
                prev_hash: "00".into(),
                hash: "ff".into(),
            };
            let row = csv_row(&event);
            let cells: Vec<&str> = row.trim_end().splitn(3, ',').collect();
            let actor_cell = cells[2].trim_start_matches('"');
            assert!(actor_cell.starts_with('\''), "{row:?}");
            assert!(row.contains(",'@type,'=1,00,ff"), "{row:?}");
        }
    }
}
