//! `audit key`, `audit prove`, `audit verify-proof` and
//! `audit verify --since-checkpoint`: the signed side of the audit log.
//!
//! `prove` and `verify --since-checkpoint` read the store directly (as
//! `verify` does); `verify-proof` reads only the file and the key.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use countersign::config::Config;
use countersign_audit::checkpoint::Checkpoint;
use countersign_audit::merkle::Tree;
use countersign_audit::note::{NoteSigner, NoteVerifier};
use countersign_audit::proof::{verify_audit_proofs, TlogProof, MAX_PROOF_FILE_BYTES};
use countersign_audit::{AuditEvent, ChainVerifier};
use countersign_core::events::Parsed;
use countersign_gateway::checkpoints::{self, CHECKPOINT_KEY, NAMESPACE};
use countersign_store::Store;
use serde_json::{json, Value};

use crate::exit::{Exit, Failure};
use crate::output::Output;

/// Events fetched per store call.
const PAGE: usize = 10_000;

/// `audit key`: the configured key's vkey, or a new private key.
pub fn key(config: &Config, generate: Option<String>, output: Output) -> anyhow::Result<Exit> {
    if let Some(name) = generate {
        let signer = checkpoints::new_signer(&name).map_err(|e| Failure::usage(e.to_string()))?;
        println!("{}", signer.private_key());
        eprintln!("vkey: {}", signer.verifier().vkey());
        return Ok(Exit::OK);
    }
    let signer = configured_signer(config)?;
    let vkey = signer.verifier().vkey();
    if output.is_json() {
        println!("{}", json!({"vkey": vkey, "origin": signer.name()}));
    } else {
        println!("{vkey}");
    }
    Ok(Exit::OK)
}

fn configured_signer(config: &Config) -> anyhow::Result<NoteSigner> {
    let replicated = config.database.postgres_url().is_some();
    Ok(checkpoints::load_signer(&config.audit, &config.data_dir, replicated, false)?)
}

/// The configured key's verifier, when there is one to read.
pub fn configured_verifier(config: &Config) -> Option<NoteVerifier> {
    configured_signer(config).ok().map(|s| s.verifier())
}

/// The log read in full: its tree, the chain checked on the way, and the
/// events `keep` selects.
struct Scan {
    tree: Tree,
    kept: Vec<AuditEvent>,
    broken: Option<countersign_audit::ChainBreak>,
}

async fn scan(store: &dyn Store, keep: impl Fn(&AuditEvent) -> bool) -> anyhow::Result<Scan> {
    let mut tree = Tree::new();
    let mut verifier = ChainVerifier::new();
    let mut kept = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            if let Err(chain_break) = verifier.push(event) {
                return Ok(Scan { tree, kept, broken: Some(chain_break) });
            }
            tree.push(event.leaf_hash());
            if keep(event) {
                kept.push(event.clone());
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(Scan { tree, kept, broken: None })
}

/// The request whose history `event` is part of (as the console reads it).
fn request_of(event: &AuditEvent) -> Option<String> {
    match event.parsed() {
        Parsed::Known(known) => known.request().map(str::to_owned),
        Parsed::Unknown(unknown) => unknown.body.get("id").and_then(Value::as_str).map(str::to_owned),
    }
}

/// `audit prove ID`.
pub async fn prove(
    store: &dyn Store,
    config: &Config,
    id: &str,
    output_path: Option<PathBuf>,
    output: Output,
) -> anyhow::Result<Exit> {
    let note = store.kv_get(NAMESPACE, CHECKPOINT_KEY).await?.ok_or_else(|| {
        anyhow::anyhow!("no signed checkpoint yet: the gateway signs one within a second of new events")
    })?;
    let checkpoint = match configured_verifier(config) {
        Some(verifier) => Checkpoint::open(&note, &verifier)
            .context("the stored checkpoint does not verify with the configured key")?,
        None => Checkpoint::parse_unverified(&note).context("the stored checkpoint is malformed")?,
    };
    let scan = scan(store, |e| request_of(e).as_deref() == Some(id)).await?;
    if let Some(chain_break) = scan.broken {
        anyhow::bail!("cannot prove from a broken log: {chain_break}");
    }
    if scan.tree.size() < checkpoint.size || scan.tree.root(checkpoint.size)? != checkpoint.root {
        anyhow::bail!(
            "the log no longer matches the latest checkpoint (size {}): run `countersign audit verify`",
            checkpoint.size
        );
    }
    if scan.kept.is_empty() {
        anyhow::bail!("no audit events for request `{id}`");
    }
    let (covered, later): (Vec<_>, Vec<_>) = scan.kept.iter().partition(|e| e.seq <= checkpoint.size);
    if covered.is_empty() {
        anyhow::bail!("the events of request `{id}` are newer than the latest checkpoint; try again in a second");
    }
    let mut text = String::new();
    for event in &covered {
        let index = event.seq - 1;
        let proof = TlogProof {
            extra: Some(event.canonical_text().into_bytes()),
            index,
            path: scan.tree.inclusion_proof(index, checkpoint.size)?,
            checkpoint: note.clone(),
        };
        text.push_str(&proof.to_text());
    }
    let path = output_path.unwrap_or_else(|| PathBuf::from(format!("{}.tlog-proof", safe_file_name(id))));
    if path == Path::new("-") {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&path, &text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    let shown = path.display().to_string();
    if output.is_json() {
        println!(
            "{}",
            json!({"file": shown, "events": covered.len(), "not_yet_checkpointed": later.len(), "checkpoint_size": checkpoint.size})
        );
    } else if path != Path::new("-") {
        println!(
            "wrote {shown}: {} events of request {id}, proven against checkpoint {} size {}",
            covered.len(),
            checkpoint.origin,
            checkpoint.size
        );
    }
    if !later.is_empty() {
        eprintln!(
            "{} later events of request {id} are not in a checkpoint yet; run again to include them",
            later.len()
        );
    }
    Ok(Exit::OK)
}

/// A request id as a file name: anything but `[A-Za-z0-9._-]` becomes `_`.
fn safe_file_name(id: &str) -> String {
    let name: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).take(100).collect();
    if name.is_empty() || name.starts_with('.') {
        format!("request{name}")
    } else {
        name
    }
}

fn read_bounded(path: &Path, limit: usize) -> anyhow::Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() > limit {
        anyhow::bail!("`{}` is larger than {limit} bytes", path.display());
    }
    String::from_utf8(bytes).with_context(|| format!("`{}` is not UTF-8 text", path.display()))
}

fn parse_vkey(text: &str) -> anyhow::Result<NoteVerifier> {
    NoteVerifier::from_vkey(text).map_err(|e| Failure::usage(format!("--key: {e}")))
}

/// `audit verify-proof FILE --key VKEY`.
pub fn verify_proof(file: &Path, key: &str, output: Output) -> anyhow::Result<Exit> {
    let verifier = parse_vkey(key)?;
    let text = read_bounded(file, MAX_PROOF_FILE_BYTES)?;
    let proven = match verify_audit_proofs(&text, &verifier) {
        Ok(proven) => proven,
        Err(e) => {
            if output.is_json() {
                println!("{}", json!({"ok": false, "error": e.to_string()}));
            } else {
                println!("proof invalid: {e}");
            }
            return Ok(Exit::ERROR);
        }
    };
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    if output.is_json() {
        let events: Vec<Value> = proven
            .iter()
            .map(
                |p| json!({"seq": p.seq, "hash": p.chain_hash, "event": p.event, "checkpoint_size": p.checkpoint.size}),
            )
            .collect();
        println!("{}", json!({"ok": true, "origin": verifier.name(), "events": events}));
        return Ok(Exit::OK);
    }
    for p in &proven {
        let request = p.event.get("body").and_then(|b| b.get("id")).and_then(Value::as_str).unwrap_or("-");
        println!(
            "seq {}  {}  {}  {}  request {request}",
            p.seq,
            field(&p.event, "time"),
            field(&p.event, "type"),
            field(&p.event, "actor")
        );
    }
    let sizes: std::collections::BTreeSet<u64> = proven.iter().map(|p| p.checkpoint.size).collect();
    let sizes: Vec<String> = sizes.iter().map(u64::to_string).collect();
    println!(
        "verified {} events against checkpoint {} size {} signed by {}",
        proven.len(),
        verifier.name(),
        sizes.join(", "),
        verifier.vkey()
    );
    Ok(Exit::OK)
}

/// `audit verify --since-checkpoint FILE`: the chain, and that the log's
/// first `size` events still hash to the saved checkpoint's root.
pub async fn verify_since(
    store: &dyn Store,
    config: &Config,
    file: &Path,
    key: Option<&str>,
    output: Output,
) -> anyhow::Result<Exit> {
    let note = read_bounded(file, countersign_audit::note::MAX_NOTE_BYTES)?;
    let (checkpoint, signed) = match key.map(parse_vkey).transpose()?.or_else(|| configured_verifier(config)) {
        Some(verifier) => (
            Checkpoint::open(&note, &verifier)
                .with_context(|| format!("`{}` is not a checkpoint signed by {}", file.display(), verifier.vkey()))?,
            true,
        ),
        None => (
            Checkpoint::parse_unverified(&note).with_context(|| format!("`{}` is not a checkpoint", file.display()))?,
            false,
        ),
    };
    let scan = scan(store, |_| false).await?;
    let failure = if let Some(chain_break) = &scan.broken {
        Some((
            chain_break.seq.saturating_sub(1),
            format!("audit chain broken at seq {}: {}", chain_break.seq, chain_break),
        ))
    } else if scan.tree.size() < checkpoint.size {
        Some((
            scan.tree.size(),
            format!(
                "the log has {} events, fewer than the {} of the checkpoint: it was truncated",
                scan.tree.size(),
                checkpoint.size
            ),
        ))
    } else if scan.tree.root(checkpoint.size)? != checkpoint.root {
        Some((
            scan.tree.size(),
            format!(
                "the log's first {} events are not the ones the checkpoint signed: its history was rewritten",
                checkpoint.size
            ),
        ))
    } else {
        None
    };
    if let Some((events, message)) = failure {
        if output.is_json() {
            println!(
                "{}",
                json!({"ok": false, "events": events, "checkpoint_size": checkpoint.size, "error": message})
            );
        } else {
            println!("{message}");
        }
        return Ok(Exit::ERROR);
    }
    if !signed {
        eprintln!("note: no key given or configured; the checkpoint's signature was not checked (pass --key VKEY)");
    }
    if output.is_json() {
        println!(
            "{}",
            json!({"ok": true, "events": scan.tree.size(), "checkpoint_size": checkpoint.size, "origin": checkpoint.origin, "signature_checked": signed})
        );
    } else {
        println!(
            "verified {} events; the log extends checkpoint {} size {}",
            scan.tree.size(),
            checkpoint.origin,
            checkpoint.size
        );
    }
    Ok(Exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_make_safe_file_names() {
        assert_eq!(safe_file_name("01J0ABC"), "01J0ABC");
        assert_eq!(safe_file_name("../../etc/passwd"), "request.._.._etc_passwd");
        assert_eq!(safe_file_name(""), "request");
    }
}
