//! Signed checkpoints of the audit log, and the proofs that tie events to
//! them.
//!
//! Every replica keeps the Merkle tree of the log in memory (a leaf hash
//! per event plus the complete subtrees, about 64 bytes an event), loaded
//! from the store at the first use and extended by reading the events
//! appended since: the append path itself does nothing more, so appends
//! stay group-committed. The signer (one replica at a time, by a
//! [`Lease`]) looks for new events every `checkpoint_interval` (1 s) and,
//! when the log grew, signs a C2SP checkpoint with the Ed25519 key and
//! stores it in the key-value area, namespace [`NAMESPACE`], key
//! [`CHECKPOINT_KEY`]: the latest one only (SIEM sinks and reports read
//! it there; older ones live where they were copied to). Every replica
//! also signs once at shutdown.
//!
//! Before replacing the stored checkpoint the signer checks that the
//! log still extends it (its root equals the tree's root at its size): a
//! log rewritten under a signed checkpoint is never signed over.
//!
//! The key: given by `[audit] key`/`COUNTERSIGN_AUDIT_KEY` or `key_file`,
//! or generated at first start into the data directory (mode 0600, SQLite
//! only). With PostgreSQL every replica must sign with the same key, so it
//! must be given; it is never kept in the store, since whoever can write
//! the store must not be able to sign.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use countersign_audit::checkpoint::{Checkpoint, CheckpointError};
use countersign_audit::merkle::{Hash, ProofError, Tree};
use countersign_audit::note::{NoteSigner, NoteVerifier};
use countersign_store::StoreError;

use crate::config::{read_text_file, AuditConfig, KeySource};
use crate::kv::Lease;
use crate::AppState;

/// The key-value namespace of the audit log's checkpoints.
pub const NAMESPACE: &str = "audit";
/// The key of the latest signed checkpoint (the note's text).
pub const CHECKPOINT_KEY: &str = "checkpoint";
/// The name of the generated key file in the data directory.
pub const KEY_FILE_NAME: &str = "audit-signing.key";
const LEASE_KEY: &str = "lease:checkpoint-signer";
const LEASE_TTL: Duration = Duration::from_secs(10);
/// Events read per store call while loading the tree.
const PAGE: usize = 10_000;

/// The tree and the signer, shared by the state's clones.
#[derive(Debug, Default)]
pub(crate) struct AuditLog {
    tree: tokio::sync::Mutex<Tree>,
    signer: OnceLock<Signing>,
}

#[derive(Debug)]
struct Signing {
    signer: NoteSigner,
    interval: Duration,
}

/// Why a proof or a checkpoint could not be given.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller asked for something the log cannot prove (bad index or size).
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("the audit log skips from seq {expected} to {found}: the store is damaged")]
    Gap { expected: u64, found: u64 },
    #[error("the audit log no longer matches the checkpoint signed at size {size}: its history was rewritten")]
    Inconsistent { size: u64 },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "with PostgreSQL every replica must sign audit checkpoints with the same key: \
         give it as `[audit] key_file` or `COUNTERSIGN_AUDIT_KEY` (generate one with \
         `countersign audit key --generate NAME`); it is never kept in the database"
    )]
    Required,
    #[error("no audit signing key in `{0}` yet: the gateway generates it at its first start")]
    Missing(String),
    #[error("cannot read the audit signing key: {0}")]
    Read(String),
    #[error("cannot write the audit signing key `{path}`: {reason}")]
    Write { path: String, reason: String },
    #[error("the audit signing key in `{path}` is not a key: {reason}")]
    Malformed { path: String, reason: String },
    #[error("the audit signing key is named `{key}`, but `audit.origin` is `{origin}`")]
    Origin { key: String, origin: String },
}

/// The signing key `config` names. `replicated` (PostgreSQL) requires it
/// to be given; otherwise the data directory's key is read, or generated
/// when `create`.
pub fn load_signer(
    config: &AuditConfig,
    data_dir: &Path,
    replicated: bool,
    create: bool,
) -> Result<NoteSigner, KeyError> {
    let signer = match &config.key {
        KeySource::Inline(secret) => NoteSigner::from_private_key(secret.expose())
            .map_err(|e| KeyError::Malformed { path: "audit.key".to_owned(), reason: e.to_string() })?,
        KeySource::File(path) => read_key(path)?,
        KeySource::DataDir if replicated => return Err(KeyError::Required),
        KeySource::DataDir => {
            let path = data_dir.join(KEY_FILE_NAME);
            if path.exists() {
                read_key(&path)?
            } else if create {
                let origin = config.origin.as_deref().unwrap_or(&config.default_origin);
                generate_key(&path, origin)?
            } else {
                return Err(KeyError::Missing(path.display().to_string()));
            }
        }
    };
    if let Some(origin) = &config.origin {
        if origin != signer.name() {
            return Err(KeyError::Origin { key: signer.name().to_owned(), origin: origin.clone() });
        }
    }
    Ok(signer)
}

fn read_key(path: &Path) -> Result<NoteSigner, KeyError> {
    let text = read_text_file(path).map_err(|e| KeyError::Read(e.to_string()))?;
    NoteSigner::from_private_key(&text)
        .map_err(|e| KeyError::Malformed { path: path.display().to_string(), reason: e.to_string() })
}

/// A new random key named `name`, written to `path` with mode 0600 (never
/// over an existing file).
pub fn generate_key(path: &Path, name: &str) -> Result<NoteSigner, KeyError> {
    let signer = new_signer(name)?;
    write_key(path, &signer)?;
    Ok(signer)
}

/// A new random key named `name`, not written anywhere.
pub fn new_signer(name: &str) -> Result<NoteSigner, KeyError> {
    let seed: [u8; 32] = rand::random();
    NoteSigner::new(name, seed)
        .map_err(|e| KeyError::Malformed { path: "audit.origin".to_owned(), reason: e.to_string() })
}

fn write_key(path: &Path, signer: &NoteSigner) -> Result<(), KeyError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let failed = |e: std::io::Error| KeyError::Write { path: path.display().to_string(), reason: e.kind().to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(failed)?;
    file.write_all(format!("{}\n", signer.private_key()).as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// The path of the generated key in `data_dir`.
pub fn data_dir_key(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE_NAME)
}

/// An inclusion proof as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub index: u64,
    pub size: u64,
    pub leaf: Hash,
    pub root: Hash,
    pub proof: Vec<Hash>,
}

/// A consistency proof as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistency {
    pub from: u64,
    pub to: u64,
    pub from_root: Hash,
    pub to_root: Hash,
    pub proof: Vec<Hash>,
}

impl AppState {
    /// Signs checkpoints with `signer`, every `interval` while
    /// [`AppState::run_checkpoint_signer`] runs and at shutdown. Only the
    /// first call counts.
    pub fn enable_checkpoints(&self, signer: NoteSigner, interval: Duration) {
        if self.0.audit.signer.set(Signing { signer, interval }).is_err() {
            tracing::warn!("the checkpoint signer was already set");
        }
    }

    /// The verifier key of the checkpoints this gateway signs, if it signs.
    pub fn audit_verifier(&self) -> Option<NoteVerifier> {
        self.0.audit.signer.get().map(|s| s.signer.verifier())
    }

    /// The latest signed checkpoint (the note's text), if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        self.key_values(NAMESPACE).get(CHECKPOINT_KEY).await
    }

    /// The tree, extended with every event appended since the last call.
    async fn synced_tree(&self) -> Result<tokio::sync::MutexGuard<'_, Tree>, AuditLogError> {
        let mut tree = self.0.audit.tree.lock().await;
        loop {
            let after = tree.size();
            let page = self.0.store.audit_events(after, PAGE).await?;
            for event in &page {
                let expected = tree.size() + 1;
                if event.seq != expected {
                    return Err(AuditLogError::Gap { expected, found: event.seq });
                }
                tree.push(event.leaf_hash());
            }
            if page.len() < PAGE {
                return Ok(tree);
            }
        }
    }

    /// The number of events in the log now.
    pub async fn audit_tree_size(&self) -> Result<u64, AuditLogError> {
        Ok(self.synced_tree().await?.size())
    }

    /// The proof that event `seq` is in the log of `size` events.
    pub async fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Inclusion, AuditLogError> {
        let tree = self.synced_tree().await?;
        let index = seq.checked_sub(1).ok_or(ProofError::IndexOutOfRange { index: 0, size })?;
        let proof = tree.inclusion_proof(index, size)?;
        let leaf = tree.leaf(index).ok_or(ProofError::IndexOutOfRange { index, size })?;
        Ok(Inclusion { index, size, leaf, root: tree.root(size)?, proof })
    }

    /// The proof that the log of `to` events extends the log of `from`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Consistency, AuditLogError> {
        let tree = self.synced_tree().await?;
        let proof = tree.consistency_proof(from, to)?;
        Ok(Consistency { from, to, from_root: tree.root(from)?, to_root: tree.root(to)?, proof })
    }

    /// Signs a checkpoint of the log as it is now, if it grew past the
    /// stored one, and stores it. Returns the new note, or `None` when
    /// there was nothing to sign (or another replica stored one first).
    pub async fn sign_checkpoint(&self) -> Result<Option<String>, AuditLogError> {
        let Some(signing) = self.0.audit.signer.get() else { return Ok(None) };
        let kv = self.key_values(NAMESPACE);
        let tree = self.synced_tree().await?;
        let size = tree.size();
        let current = kv.get(CHECKPOINT_KEY).await?;
        if let Some(text) = &current {
            match Checkpoint::parse_unverified(text) {
                Ok(stored) if stored.size > size => return Ok(None),
                Ok(stored) => {
                    if tree.root(stored.size)? != stored.root {
                        return Err(AuditLogError::Inconsistent { size: stored.size });
                    }
                    if stored.size == size {
                        return Ok(None);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the stored audit checkpoint is malformed; replacing it"),
            }
        }
        if size == 0 {
            return Ok(None);
        }
        let checkpoint =
            Checkpoint { origin: signing.signer.name().to_owned(), size, root: tree.root(size)?, extensions: vec![] };
        drop(tree);
        let note = checkpoint.sign(&signing.signer)?;
        if kv.compare_and_set(CHECKPOINT_KEY, current, Some(note.clone())).await? {
            tracing::debug!(size, "signed an audit checkpoint");
            Ok(Some(note))
        } else {
            Ok(None)
        }
    }

    /// Signs while the gateway runs: every interval, by whichever replica
    /// holds the lease. Returns at shutdown (the final checkpoint is
    /// [`AppState::final_checkpoint`]'s, after the last events).
    pub async fn run_checkpoint_signer(self) {
        let Some(interval) = self.0.audit.signer.get().map(|s| s.interval) else { return };
        let mut lease = Lease::new(self.key_values(NAMESPACE), self.clock(), LEASE_KEY, LEASE_TTL);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.stopped() => return,
            }
            if !lease.hold().await {
                continue;
            }
            match self.sign_checkpoint().await {
                Ok(_) => failing = false,
                Err(e) => {
                    // Once per failure, not once a second.
                    if !failing {
                        tracing::error!(error = %e, "cannot sign an audit checkpoint");
                    }
                    failing = true;
                }
            }
        }
    }

    /// The checkpoint every replica signs as it stops, covering the last
    /// events it wrote (with no lease: equal logs give equal notes, and a
    /// stored checkpoint never moves back).
    pub async fn final_checkpoint(&self) {
        match self.sign_checkpoint().await {
            Ok(Some(_)) => tracing::info!("signed the final audit checkpoint"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot sign the final audit checkpoint"),
        }
    }
}

/// Loads the signer for `config` and starts signing on `state` when
/// checkpoints are on. For `countersign serve`.
pub fn start(
    state: &AppState,
    config: &AuditConfig,
    data_dir: &Path,
    replicated: bool,
) -> Result<Option<NoteVerifier>, KeyError> {
    if !config.checkpoints {
        return Ok(None);
    }
    let signer = load_signer(config, data_dir, replicated, true)?;
    let verifier = signer.verifier();
    state.enable_checkpoints(signer, config.checkpoint_interval);
    Ok(Some(verifier))
}

/// The shared tree, for [`crate::state`].
pub(crate) fn new_log() -> Arc<AuditLog> {
    Arc::new(AuditLog::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawAudit;
    use countersign_audit::AuditDraft;
    use countersign_store::Store;
    use serde_json::json;

    async fn state() -> (tempfile::TempDir, AppState, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join("p.cedar"), "@id(\"all\") permit (principal, action, resource);").unwrap();
        let store: Arc<dyn Store> =
            Arc::new(countersign_store_sqlite::SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        let config = crate::config::GatewayConfig {
            policies_dir: policies,
            policies_defaulted: false,
            default_timeout: Duration::from_secs(60),
            default_valid_for: Duration::from_secs(60),
            public_url: "http://t.example".into(),
            limits: crate::config::LimitsConfig::default(),
            step_up_max_age: None,
            sql_dialects: Arc::default(),
            http_apis: Default::default(),
        };
        let state = AppState::new(config, store.clone()).await.unwrap();
        (dir, state, store)
    }

    #[test]
    fn the_key_is_generated_once_with_mode_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config = RawAudit::default().validate("http://gw.example:8470").unwrap();
        assert!(matches!(load_signer(&config, dir.path(), false, false), Err(KeyError::Missing(_))));
        let first = load_signer(&config, dir.path(), false, true).unwrap();
        assert_eq!(first.name(), "gw.example:8470/audit");
        let mode = std::fs::metadata(data_dir_key(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_signer(&config, dir.path(), false, true).unwrap();
        assert_eq!(again.verifier(), first.verifier());
        // Another public URL later does not rename the existing key.
        let moved = RawAudit::default().validate("http://elsewhere").unwrap();
        assert_eq!(load_signer(&moved, dir.path(), false, true).unwrap().name(), "gw.example:8470/audit");
        let renamed =
            RawAudit { origin: Some("other/audit".into()), ..RawAudit::default() }.validate("http://a").unwrap();
        assert!(matches!(load_signer(&renamed, dir.path(), false, true), Err(KeyError::Origin { .. })));
    }

    #[test]
    fn replicas_need_a_given_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = RawAudit::default().validate("http://a").unwrap();
        assert!(matches!(load_signer(&config, dir.path(), true, true), Err(KeyError::Required)));
        assert!(!data_dir_key(dir.path()).exists());
        let file = dir.path().join("given.key");
        std::fs::write(&file, NoteSigner::new("x/audit", [3; 32]).unwrap().private_key()).unwrap();
        let config = RawAudit { key_file: Some(file), ..RawAudit::default() }.validate("http://a").unwrap();
        assert_eq!(load_signer(&config, dir.path(), true, true).unwrap().name(), "x/audit");
    }

    #[tokio::test]
    async fn checkpoints_follow_the_log_and_proofs_verify() {
        let (_dir, state, store) = state().await;
        let signer = NoteSigner::new("t.example/audit", [5; 32]).unwrap();
        let verifier = signer.verifier();
        state.enable_checkpoints(signer, Duration::from_secs(1));
        let first = state.sign_checkpoint().await.unwrap().unwrap();
        let first = Checkpoint::open(&first, &verifier).unwrap();
        assert_eq!(
            state.latest_checkpoint().await.unwrap().map(|n| Checkpoint::open(&n, &verifier).unwrap()),
            Some(first.clone())
        );
        assert_eq!(state.sign_checkpoint().await.unwrap(), None, "nothing new");
        store
            .append_audit((0..5).map(|i| AuditDraft::raw("agent:a", "action.submitted", json!({"i": i}))).collect())
            .await
            .unwrap();
        let second = Checkpoint::open(&state.sign_checkpoint().await.unwrap().unwrap(), &verifier).unwrap();
        assert_eq!(second.size, first.size + 5);
        let c = state.consistency_proof(first.size, second.size).await.unwrap();
        countersign_audit::merkle::verify_consistency(first.size, second.size, &c.proof, &first.root, &second.root)
            .unwrap();
        let i = state.inclusion_proof(second.size, second.size).await.unwrap();
        countersign_audit::merkle::verify_inclusion(i.index, i.size, &i.leaf, &i.proof, &second.root).unwrap();
        assert!(matches!(state.inclusion_proof(0, 3).await, Err(AuditLogError::Proof(_))));
        assert!(matches!(state.inclusion_proof(2, second.size + 1).await, Err(AuditLogError::Proof(_))));
    }

    #[tokio::test]
    async fn a_rewritten_log_is_never_signed_over() {
        let (_dir, state, _store) = state().await;
        let signer = NoteSigner::new("t.example/audit", [5; 32]).unwrap();
        state.enable_checkpoints(signer.clone(), Duration::from_secs(1));
        state.sign_checkpoint().await.unwrap().unwrap();
        // A checkpoint of another history, as if the log had been rewritten since.
        let forged = Checkpoint { origin: "t.example/audit".into(), size: 1, root: [9; 32], extensions: vec![] };
        let kv = state.key_values(NAMESPACE);
        let current = kv.get(CHECKPOINT_KEY).await.unwrap();
        assert!(kv.compare_and_set(CHECKPOINT_KEY, current, Some(forged.sign(&signer).unwrap())).await.unwrap());
        state.0.store.append_audit(vec![AuditDraft::raw("agent:a", "action.submitted", json!({}))]).await.unwrap();
        assert!(matches!(state.sign_checkpoint().await, Err(AuditLogError::Inconsistent { size: 1 })));
    }
}
