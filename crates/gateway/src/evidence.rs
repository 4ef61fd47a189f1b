//! Evidence packs for auditors, read from the store: the whole log, page by
//! page, folded by [`countersign_evidence::Collector`] (which holds the
//! rules; this module only reads), and the latest signed checkpoint checked
//! against the log's Merkle tree on the same pass.

use countersign_audit::checkpoint::Checkpoint;
use countersign_audit::merkle::Tree;
use countersign_audit::note::NoteVerifier;
use countersign_core::Timestamp;
use countersign_evidence::{CheckpointEvidence, Collector, Period, Report};
use countersign_store::{Store, StoreError};

use crate::checkpoints::{CHECKPOINT_KEY, NAMESPACE};
use crate::AppState;

/// Events read per store call.
const PAGE: usize = 10_000;

/// The pack for `period` from the log in `store`, generated at `now`. The
/// latest signed checkpoint in the store, if any, is checked against the
/// log: its signature with `verifier` when there is one, and always its
/// root against the log's Merkle tree at its size.
pub async fn report(
    store: &dyn Store,
    period: Period,
    now: Timestamp,
    verifier: Option<&NoteVerifier>,
) -> Result<Report, StoreError> {
    let mut collector = Collector::new(period);
    let mut tree = Tree::new();
    let mut after = 0;
    loop {
        let page = store.audit_events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        // Read to the end even past `until`: the pack vouches for the
        // whole chain its period hangs from.
        for event in &page {
            collector.push(event);
            tree.push(event.leaf_hash());
        }
        if page.len() < PAGE {
            break;
        }
    }
    let checkpoint = store.kv_get(NAMESPACE, CHECKPOINT_KEY).await?.map(|note| check_checkpoint(note, verifier, &tree));
    Ok(collector.finish(now, checkpoint))
}

/// What checking `note` against the log's tree finds.
fn check_checkpoint(note: String, verifier: Option<&NoteVerifier>, tree: &Tree) -> CheckpointEvidence {
    let key = verifier.map(NoteVerifier::vkey);
    let opened = match verifier {
        Some(verifier) => Checkpoint::open(&note, verifier).map_err(|e| format!("the signature does not verify: {e}")),
        None => Checkpoint::parse_unverified(&note).map_err(|e| format!("the checkpoint is malformed: {e}")),
    };
    let (ok, detail) = match opened {
        Err(detail) => (false, detail),
        Ok(checkpoint) if checkpoint.size > tree.size() => (
            false,
            format!(
                "the checkpoint covers {} events but the log holds {}: events were removed",
                checkpoint.size,
                tree.size()
            ),
        ),
        Ok(checkpoint) => match tree.root(checkpoint.size) {
            Ok(root) if root == checkpoint.root => (
                true,
                match verifier {
                    Some(_) => format!(
                        "signature verified; the log's Merkle root at {} events equals the checkpoint's",
                        checkpoint.size
                    ),
                    None => format!(
                        "the log's Merkle root at {} events equals the checkpoint's; the signature was not checked (no key)",
                        checkpoint.size
                    ),
                },
            ),
            Ok(_) => (
                false,
                format!("the log's first {} events were rewritten after the checkpoint was signed", checkpoint.size),
            ),
            Err(e) => (false, format!("cannot compute the root: {e}")),
        },
    };
    CheckpointEvidence { note, key, ok, detail }
}

impl AppState {
    /// The evidence pack for `period`, from this gateway's store, checked
    /// against its latest checkpoint with this gateway's key.
    pub async fn evidence_report(&self, period: Period) -> Result<Report, StoreError> {
        let verifier = self.audit_verifier();
        report(self.0.store.as_ref(), period, self.now(), verifier.as_ref()).await
    }
}
