//! The embedded SQLite store: one database file in WAL mode, every commit
//! fsynced (`synchronous=FULL`), one writer thread with group commit, and a
//! pool of read-only connections.
//!
//! Mutations (including every audit append) go through the writer, which
//! runs up to `max_batch` queued operations in one transaction and one
//! fsync, answering each caller only after the commit. Reads run on
//! read-only connections that see committed data and never wait for the
//! writer. Several processes may open the same file (the server, and the CLI
//! managing users); they share one audit chain because each batch reads the
//! chain head inside its own write transaction.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod audit;
mod changes;
mod checkpointer;
mod error;
mod identities;
mod kv;
mod readers;
mod requests;
mod schema;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent, Verified};
use countersign_core::{Fingerprint, Principal, PrincipalKind, PrincipalRef, Request, Timestamp};
use countersign_store::{
    Agent, NewAgent, NewUser, RequestFilter, Store, StoreError, UpdateFn, Updated, User, UserProfile,
};

pub use audit::VerifyError;

use changes::Changes;
use checkpointer::Checkpointer;
use readers::Readers;
use writer::Writer;

/// Up to this many rows, an open-request lookup runs as a point read
/// (see [`Readers::lookup`]).
const POINT_READ_ROWS: usize = 8;

/// Tuning for [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The most operations committed in one transaction (one fsync).
    pub max_batch: usize,
    /// How many operations may wait for the writer before callers wait to
    /// enqueue (back-pressure instead of unbounded memory).
    pub queue_depth: usize,
    /// Read-only connections, which is also how many reads run at once;
    /// more would only contend for the same cores.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { max_batch: 256, queue_depth: 4096, readers: 4 }
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Readers>,
    changes: Arc<Changes>,
    /// Declared after the writer, so it stops after the writer's last commit.
    _checkpointer: Checkpointer,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database at `path`, creating its
    /// parent directories, and applies pending migrations.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create the data directory {}: {e}", parent.display()))
            })?;
        }
        let mut conn = schema::open_writer(path)?;
        let checkpointer = Checkpointer::start(path)?;
        checkpointer.take_over(&mut conn)?;
        let commits = Arc::new(AtomicU64::new(0));
        let readers = Arc::new(Readers::new(path.to_owned(), options.readers)?);
        let changes = Arc::new(Changes::new(path, Arc::clone(&commits))?);
        let writer = Writer::start(conn, options.max_batch, options.queue_depth, commits)?;
        Ok(Self { path: path.to_owned(), writer, readers, changes, _checkpointer: checkpointer })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and verifies the whole audit chain from one snapshot, decoding
    /// and hashing on two threads. This is what `countersign audit verify`
    /// runs.
    pub async fn verify_audit(&self) -> Result<Verified, VerifyError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = schema::open_reader(&path)?;
            audit::verify(&conn)
        })
        .await
        .map_err(|e| VerifyError::Store(error::task(e)))?
    }

    /// Feeds every audit event after `after` to `f`, in order, from one
    /// snapshot, on its own connection; stops at the first error `f`
    /// returns. Returns how many events were fed.
    ///
    /// This blocks: call it from a plain thread or `spawn_blocking`.
    pub fn for_each_audit_event<E>(&self, after: u64, f: impl FnMut(AuditEvent) -> Result<(), E>) -> Result<u64, E>
    where
        E: From<StoreError>,
    {
        let conn = schema::open_reader(&self.path)?;
        audit::for_each(&conn, after, f)
    }

    async fn revoke(
        &self,
        kind: PrincipalKind,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        let name = name.to_owned();
        self.writer.call(move |tx| identities::revoke(tx, kind, &name, now, &events)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, user: NewUser, events: Vec<AuditDraft>) -> Result<User, StoreError> {
        self.writer.call(move |tx| identities::create_user(tx, user, &events)).await
    }

    async fn create_agent(&self, agent: NewAgent, events: Vec<AuditDraft>) -> Result<Agent, StoreError> {
        self.writer.call(move |tx| identities::create_agent(tx, agent, &events)).await
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_owned();
        self.readers.run(move |c| identities::user(c, &name)).await
    }

    async fn users_with_email(&self, email: &str) -> Result<Vec<User>, StoreError> {
        let email = email.to_owned();
        self.readers.run(move |c| identities::users_with_email(c, &email)).await
    }

    async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        let name = name.to_owned();
        self.readers.run(move |c| identities::agent(c, &name)).await
    }

    async fn update_user_profile(
        &self,
        name: &str,
        profile: UserProfile,
        events: Vec<AuditDraft>,
    ) -> Result<User, StoreError> {
        let name = name.to_owned();
        self.writer.call(move |tx| identities::update_profile(tx, &name, &profile, &events)).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.readers.run(identities::list_users).await
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.readers.run(identities::list_agents).await
    }

    async fn revoke_user(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        self.revoke(PrincipalKind::User, name, now, events).await
    }

    async fn revoke_agent(
        &self,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        self.revoke(PrincipalKind::Agent, name, now, events).await
    }

    async fn principal_by_token_hash(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.readers.lookup(move |c| identities::principal_by_token_hash(c, &token_hash)).await
    }

    async fn insert_request(&self, request: Request, events: Vec<AuditDraft>) -> Result<(), StoreError> {
        // Encoded here, on the caller's thread, to keep the writer's work
        // per operation small.
        let row = requests::Row::encode(&request)?;
        self.writer
            .call(move |tx| {
                requests::insert(tx.conn, &row)?;
                tx.append(&events).map(|_| ())
            })
            .await
    }

    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        let id = id.to_owned();
        self.readers.lookup(move |c| requests::get(c, &id)).await
    }

    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        let filter = filter.clone();
        self.readers.run(move |c| requests::list(c, &filter)).await
    }

    async fn open_requests_by_fingerprint(
        &self,
        requester: &PrincipalRef,
        fingerprint: &Fingerprint,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Request>, StoreError> {
        let (requester, fingerprint) = (requester.clone(), fingerprint.clone());
        let read =
            move |c: &rusqlite::Connection| requests::open_by_fingerprint(c, &requester, &fingerprint, now, limit);
        // A few rows of one index range (the gateway asks for one) is a
        // point read; a long page is a scan, off the runtime's threads.
        if (1..=POINT_READ_ROWS).contains(&limit) {
            self.readers.lookup(read).await
        } else {
            self.readers.run(read).await
        }
    }

    async fn update_request(&self, id: &str, update: UpdateFn) -> Result<Updated, StoreError> {
        let id = id.to_owned();
        self.writer.call(move |tx| requests::update(tx, &id, update)).await
    }

    async fn due_requests(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.readers.run(move |c| requests::due(c, now)).await
    }

    async fn append_audit(&self, events: Vec<AuditDraft>) -> Result<u64, StoreError> {
        self.writer.call(move |tx| tx.append(&events)).await
    }

    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.readers.run(move |c| audit::page(c, after, limit)).await
    }

    async fn change_counter(&self) -> Result<u64, StoreError> {
        let changes = Arc::clone(&self.changes);
        tokio::task::spawn_blocking(move || changes.current()).await.map_err(error::task)?
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.readers.lookup(move |c| kv::get(c, &namespace, &key)).await
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
    ) -> Result<bool, StoreError> {
        self.kv_compare_and_set_expiring(namespace, key, expected, value, None).await
    }

    async fn kv_compare_and_set_expiring(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.writer
            .call(move |tx| {
                kv::compare_and_set(tx.conn, &namespace, &key, expected.as_deref(), value.as_deref(), expires_at)
            })
            .await
    }

    async fn kv_purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.writer.call(move |tx| kv::purge_expired(tx.conn, now)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.writer.is_running() {
            return Err(error::writer_gone());
        }
        self.readers.run(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(|_| ()).map_err(error::db)).await
    }
}
