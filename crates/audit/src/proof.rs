//! C2SP transparency log proofs (c2sp.org/tlog-proof): an entry's index,
//! its inclusion proof and the signed checkpoint it leads to, checkable
//! offline with the log's verifier key alone.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the event's canonical bytes>
//! index <zero-based index>
//! <base64 hash, from the leaf's sibling up>…
//!
//! <signed checkpoint, verbatim>
//! ```
//!
//! An audit proof file (`countersign audit prove`) is one such proof per
//! event of a request, one after another; each is a complete tlog-proof
//! on its own. The `extra` line carries the event's canonical bytes (the
//! leaf), so the file is self-contained: the verifier hashes it, walks the
//! inclusion proof to the checkpoint's root and checks the signature.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use crate::checkpoint::{parse_hash, parse_size, Checkpoint, CheckpointError};
use crate::merkle::{leaf_hash, verify_inclusion, Hash, ProofError, MAX_PROOF_HASHES};
use crate::note::{NoteVerifier, MAX_NOTE_BYTES, MAX_SIGNATURES};

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The largest proof file accepted.
pub const MAX_PROOF_FILE_BYTES: usize = 16 * 1024 * 1024;
/// The most proofs in one file.
pub const MAX_PROOFS: usize = 10_000;
/// The largest `extra` (one event's canonical bytes).
pub const MAX_EXTRA_BYTES: usize = 1024 * 1024;

/// One tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// A proof file that is malformed or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    #[error("the proof file is larger than 16 MiB")]
    TooLarge,
    #[error("the proof file holds no proof")]
    Empty,
    #[error("the proof file holds more than {MAX_PROOFS} proofs")]
    TooMany,
    #[error("malformed proof at line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("proof {n}: its checkpoint: {source}")]
    Checkpoint { n: usize, source: CheckpointError },
    #[error("proof {n}: it has no `extra` line holding the event")]
    NoEvent { n: usize },
    #[error("proof {n}: the event is not an audit event ({reason})")]
    Event { n: usize, reason: String },
    #[error("proof {n}: the event's seq {seq} does not match index {index}")]
    IndexMismatch { n: usize, seq: u64, index: u64 },
    #[error("proof {n}: the event is not in the signed log: {source}")]
    Inclusion { n: usize, source: ProofError },
}

impl TlogProof {
    /// The proof's text.
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            text.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.path {
            text.push_str(&BASE64.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }
}

/// Reads a file of one or more tlog-proofs, one after another.
pub fn parse_proofs(text: &str) -> Result<Vec<TlogProof>, ProofFileError> {
    if text.len() > MAX_PROOF_FILE_BYTES {
        return Err(ProofFileError::TooLarge);
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut at = 0;
    let mut proofs = Vec::new();
    while at < lines.len() {
        if proofs.len() == MAX_PROOFS {
            return Err(ProofFileError::TooMany);
        }
        proofs.push(parse_one(&lines, &mut at)?);
    }
    if proofs.is_empty() {
        return Err(ProofFileError::Empty);
    }
    Ok(proofs)
}

fn parse_one(lines: &[&str], at: &mut usize) -> Result<TlogProof, ProofFileError> {
    let bad = |line: usize, reason| ProofFileError::Malformed { line: line + 1, reason };
    let next = |at: &mut usize, reason| -> Result<(usize, &str), ProofFileError> {
        let n = *at;
        let line = lines.get(n).ok_or(bad(n, reason))?;
        *at += 1;
        let line = line.strip_suffix('\n').ok_or(bad(n, "every line must end with a newline"))?;
        Ok((n, line))
    };
    let (n, header) = next(at, "missing header")?;
    if header != HEADER {
        return Err(bad(n, "the first line must be `c2sp.org/tlog-proof@v1`"));
    }
    let (mut n, mut line) = next(at, "missing `index` line")?;
    let mut extra = None;
    if let Some(encoded) = line.strip_prefix("extra ") {
        if encoded.len() > MAX_EXTRA_BYTES * 4 / 3 + 4 {
            return Err(bad(n, "the extra data is too large"));
        }
        extra = Some(BASE64.decode(encoded).map_err(|_| bad(n, "the extra data is not base64"))?);
        (n, line) = next(at, "missing `index` line")?;
    }
    let index = line.strip_prefix("index ").ok_or(bad(n, "expected `index <n>`"))?;
    let index = parse_size(index).ok_or(bad(n, "the index is not a decimal number without leading zeros"))?;
    let mut path = Vec::new();
    loop {
        let (n, line) = next(at, "missing blank line before the checkpoint")?;
        if line.is_empty() {
            break;
        }
        if path.len() == MAX_PROOF_HASHES {
            return Err(bad(n, "the inclusion proof is too long"));
        }
        path.push(parse_hash(line).ok_or(bad(n, "a proof line is not a base64 SHA-256 hash"))?);
    }
    // The checkpoint: its body lines, a blank line, then signature lines.
    let start = *at;
    let mut body_lines = 0;
    loop {
        let (n, line) = next(at, "the checkpoint is cut short")?;
        if line.is_empty() {
            break;
        }
        body_lines += 1;
        if body_lines > 3 + crate::checkpoint::MAX_EXTENSIONS {
            return Err(bad(n, "the checkpoint has too many lines"));
        }
    }
    let mut signatures = 0;
    while lines.get(*at).is_some_and(|l| l.starts_with('\u{2014}')) {
        signatures += 1;
        if signatures > MAX_SIGNATURES {
            return Err(bad(*at, "the checkpoint has too many signatures"));
        }
        next(at, "")?;
    }
    if signatures == 0 {
        return Err(bad(*at, "the checkpoint has no signature line"));
    }
    let checkpoint: String = lines[start..*at].concat();
    if checkpoint.len() > MAX_NOTE_BYTES {
        return Err(bad(start, "the checkpoint is too large"));
    }
    Ok(TlogProof { extra, index, path, checkpoint })
}

/// An event proven to be in the signed log.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenEvent {
    pub seq: u64,
    /// The event as recorded: `{actor, body, prev_hash, seq, time, type}`.
    pub event: Value,
    /// The event's chain hash (hex SHA-256 of its canonical bytes).
    pub chain_hash: String,
    /// The checkpoint it is proven against.
    pub checkpoint: Checkpoint,
}

/// Verifies every proof of an audit proof file against `verifier`: each
/// checkpoint is signed by the key and names it as origin, each `extra`
/// is an audit event whose seq matches the index, and each inclusion
/// proof leads from the event to the checkpoint's root.
pub fn verify_audit_proofs(text: &str, verifier: &NoteVerifier) -> Result<Vec<ProvenEvent>, ProofFileError> {
    let proofs = parse_proofs(text)?;
    let mut proven = Vec::with_capacity(proofs.len());
    for (i, proof) in proofs.iter().enumerate() {
        let n = i + 1;
        let checkpoint =
            Checkpoint::open(&proof.checkpoint, verifier).map_err(|source| ProofFileError::Checkpoint { n, source })?;
        let extra = proof.extra.as_deref().ok_or(ProofFileError::NoEvent { n })?;
        if extra.len() > MAX_EXTRA_BYTES {
            return Err(ProofFileError::Event { n, reason: "it is too large".to_owned() });
        }
        let event: Value =
            serde_json::from_slice(extra).map_err(|e| ProofFileError::Event { n, reason: e.to_string() })?;
        let seq = event
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProofFileError::Event { n, reason: "no `seq`".to_owned() })?;
        if seq.checked_sub(1) != Some(proof.index) {
            return Err(ProofFileError::IndexMismatch { n, seq, index: proof.index });
        }
        verify_inclusion(proof.index, checkpoint.size, &leaf_hash(extra), &proof.path, &checkpoint.root)
            .map_err(|source| ProofFileError::Inclusion { n, source })?;
        let chain_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(extra));
        proven.push(ProvenEvent { seq, event, chain_hash, checkpoint });
    }
    Ok(proven)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::Tree;
    use crate::note::NoteSigner;
    use crate::{AuditDraft, ChainHead};
    use countersign_core::Timestamp;
    use serde_json::json;

    fn fixture(n: usize) -> (NoteSigner, Vec<crate::AuditEvent>, Tree, String) {
        let signer = NoteSigner::new("gw.example/audit", [4; 32]).unwrap();
        let mut head = ChainHead::default();
        let mut tree = Tree::new();
        let events: Vec<_> = (0..n)
            .map(|i| {
                let e = head
                    .seal(&AuditDraft::raw("agent:a", "action.submitted", json!({"id": format!("r{i}")})), Timestamp(9))
                    .unwrap();
                tree.push(e.leaf_hash());
                e
            })
            .collect();
        let size = tree.size();
        let checkpoint =
            Checkpoint { origin: "gw.example/audit".into(), size, root: tree.root(size).unwrap(), extensions: vec![] };
        let note = checkpoint.sign(&signer).unwrap();
        (signer, events, tree, note)
    }

    fn proof_of(events: &[crate::AuditEvent], tree: &Tree, note: &str, i: usize) -> TlogProof {
        TlogProof {
            extra: Some(events[i].canonical_text().into_bytes()),
            index: i as u64,
            path: tree.inclusion_proof(i as u64, tree.size()).unwrap(),
            checkpoint: note.to_owned(),
        }
    }

    #[test]
    fn a_file_of_proofs_round_trips_and_verifies() {
        let (signer, events, tree, note) = fixture(11);
        let proofs: Vec<_> = [2, 5, 10].iter().map(|&i| proof_of(&events, &tree, &note, i)).collect();
        let text: String = proofs.iter().map(TlogProof::to_text).collect();
        assert_eq!(parse_proofs(&text).unwrap(), proofs);
        let proven = verify_audit_proofs(&text, &signer.verifier()).unwrap();
        assert_eq!(proven.iter().map(|p| p.seq).collect::<Vec<_>>(), [3, 6, 11]);
        assert_eq!(proven[0].chain_hash, events[2].hash);
    }

    #[test]
    fn altered_proofs_fail() {
        let (signer, events, tree, note) = fixture(9);
        let good = proof_of(&events, &tree, &note, 4);
        let verifier = signer.verifier();
        let mut wrong_index = good.clone();
        wrong_index.index = 3;
        let mut wrong_event = good.clone();
        wrong_event.extra = Some(events[4].canonical_text().replace("r4", "r5").into_bytes());
        let mut wrong_path = good.clone();
        wrong_path.path[1][0] ^= 1;
        let mut wrong_checkpoint = good.clone();
        wrong_checkpoint.checkpoint = note.replacen("\n9\n", "\n8\n", 1);
        let mut no_event = good.clone();
        no_event.extra = None;
        for (proof, what) in [
            (wrong_index, "index"),
            (wrong_event, "event"),
            (wrong_path, "path"),
            (wrong_checkpoint, "checkpoint"),
            (no_event, "extra"),
        ] {
            assert!(verify_audit_proofs(&proof.to_text(), &verifier).is_err(), "{what}");
        }
        let other = NoteSigner::new("gw.example/audit", [5; 32]).unwrap();
        assert!(verify_audit_proofs(&good.to_text(), &other.verifier()).is_err());
    }

    #[test]
    fn malformed_files_fail_closed() {
        let (_, events, tree, note) = fixture(3);
        let text = proof_of(&events, &tree, &note, 1).to_text();
        for bad in [
            String::new(),
            text.replacen(HEADER, "c2sp.org/tlog-proof@v2", 1),
            text.replacen("index 1", "index 01", 1),
            text.replacen("index 1", "index", 1),
            text.trim_end().to_owned(),
            text.split("\n\n").next().unwrap().to_owned(),
            format!("{text}garbage\n"),
            text.replacen("\n\n", "\nAAAA\n\n", 1),
        ] {
            assert!(parse_proofs(&bad).is_err(), "{bad:?}");
        }
    }
}
