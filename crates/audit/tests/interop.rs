//! Our checkpoints, signatures and proofs checked by an independent
//! implementation: Cloudflare's `signed_note` and `tlog_tiles` crates
//! (a port of Go's `sumdb/note` and `sumdb/tlog`), so the formats are not
//! only consistent with themselves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_audit::checkpoint::Checkpoint;
use countersign_audit::merkle::{leaf_hash, Tree};
use countersign_audit::note::{NoteSigner, NoteVerifier};
use countersign_audit::proof::{parse_proofs, verify_audit_proofs, TlogProof};
use countersign_audit::{AuditDraft, AuditEvent, ChainHead};
use countersign_core::Timestamp;
use serde_json::json;
use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{check_record, check_tree, record_hash, stored_hashes, tree_hash, Hash, HashReader};

const ORIGIN: &str = "countersign.example/audit";

/// Stored hashes in tlog_tiles' own layout, computed by tlog_tiles.
struct Stored(Vec<Hash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[usize::try_from(i).unwrap()]).collect())
    }
}

fn events(n: usize) -> Vec<AuditEvent> {
    let mut head = ChainHead::default();
    (0..n)
        .map(|i| {
            let draft =
                AuditDraft::raw(format!("agent:a{i}"), "action.submitted", json!({"id": format!("r{i}"), "é": "\n"}));
            head.seal(&draft, Timestamp(1_000 + i64::try_from(i).unwrap())).unwrap()
        })
        .collect()
}

#[test]
fn roots_and_proofs_agree_with_tlog_tiles() {
    let events = events(77);
    let mut ours = Tree::new();
    let mut theirs = Stored(Vec::new());
    for (n, event) in events.iter().enumerate() {
        let data = event.canonical_text();
        assert_eq!(record_hash(data.as_bytes()).0, leaf_hash(data.as_bytes()));
        let add = stored_hashes(n as u64, data.as_bytes(), &theirs).unwrap();
        theirs.0.extend(add);
        ours.push(event.leaf_hash());
    }
    for size in 1..=77u64 {
        let root = ours.root(size).unwrap();
        assert_eq!(tree_hash(size, &theirs).unwrap().0, root, "root at {size}");
        for index in (0..size).step_by(7) {
            let proof: Vec<Hash> = ours.inclusion_proof(index, size).unwrap().into_iter().map(Hash).collect();
            check_record(&proof, size, Hash(root), index, Hash(ours.leaf(index).unwrap())).unwrap();
        }
        for first in (1..=size).step_by(5) {
            let proof: Vec<Hash> = ours.consistency_proof(first, size).unwrap().into_iter().map(Hash).collect();
            check_tree(&proof, size, Hash(root), first, Hash(ours.root(first).unwrap())).unwrap();
        }
    }
}

#[test]
fn checkpoints_and_keys_agree_with_signed_note() {
    let signer = NoteSigner::new(ORIGIN, [42; 32]).unwrap();
    let vkey = signer.verifier().vkey();
    let checkpoint = Checkpoint { origin: ORIGIN.into(), size: 12, root: [7; 32], extensions: vec![] };
    let note = checkpoint.sign(&signer).unwrap();

    // Their verifier accepts our vkey and our signature.
    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(&vkey).unwrap())]);
    let parsed = Note::from_bytes(note.as_bytes()).unwrap();
    let (verified, _) = parsed.verify(&verifiers).unwrap();
    assert_eq!(verified.len(), 1);
    let theirs = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    assert_eq!((theirs.origin(), theirs.size(), theirs.hash().0), (ORIGIN, 12, [7; 32]));
    // An altered note fails there too.
    let altered = note.replacen("\n12\n", "\n13\n", 1);
    assert!(Note::from_bytes(altered.as_bytes()).unwrap().verify(&verifiers).is_err());

    // Their signer, from our private key string, signs what we verify, byte for byte.
    let their_signer = StandardSigner::new(&signer.private_key()).unwrap();
    assert_eq!((their_signer.name(), their_signer.key_id()), (ORIGIN, signer.key_id()));
    let mut their_note = Note::new(checkpoint.to_text().as_bytes(), &[]).unwrap();
    their_note.add_sigs(&[&their_signer]).unwrap();
    let their_note = String::from_utf8(their_note.to_bytes()).unwrap();
    assert_eq!(their_note, note);
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    assert_eq!(Checkpoint::open(&their_note, &verifier).unwrap(), checkpoint);
}

#[test]
fn a_proof_file_checks_out_with_the_independent_verifiers() {
    let events = events(20);
    let mut tree = Tree::new();
    for e in &events {
        tree.push(e.leaf_hash());
    }
    let signer = NoteSigner::new(ORIGIN, [3; 32]).unwrap();
    let root = tree.root(20).unwrap();
    let note = Checkpoint { origin: ORIGIN.into(), size: 20, root, extensions: vec![] }.sign(&signer).unwrap();
    let file: String = [0u64, 9, 19]
        .iter()
        .map(|&i| {
            TlogProof {
                extra: Some(events[usize::try_from(i).unwrap()].canonical_text().into_bytes()),
                index: i,
                path: tree.inclusion_proof(i, 20).unwrap(),
                checkpoint: note.clone(),
            }
            .to_text()
        })
        .collect();
    assert_eq!(verify_audit_proofs(&file, &signer.verifier()).unwrap().len(), 3);

    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(&signer.verifier().vkey()).unwrap())]);
    for proof in parse_proofs(&file).unwrap() {
        let parsed = Note::from_bytes(proof.checkpoint.as_bytes()).unwrap();
        parsed.verify(&verifiers).unwrap();
        let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
        let path: Vec<Hash> = proof.path.iter().copied().map(Hash).collect();
        let leaf = record_hash(proof.extra.as_deref().unwrap());
        check_record(&path, cp.size(), *cp.hash(), proof.index, leaf).unwrap();
        assert!(check_record(&path, cp.size(), *cp.hash(), proof.index ^ 1, leaf).is_err());
    }
}
