//! The PostgreSQL store: any number of gateway replicas share one database.
//!
//! - **Writes** go through one writer task per store, which batches queued
//!   mutations into one transaction (group commit). Each transaction first
//!   locks the single `chain_head` row, so writes from every replica are
//!   serialised by the database: the audit chain keeps one total order and
//!   every transition sees the request as the previous one left it.
//! - **Reads** use a connection pool and never wait for writers.
//! - **Wake-ups**: a committed change to a request or key sends a NOTIFY;
//!   each store LISTENs and rebroadcasts what other replicas did through
//!   [`Store::change_feed`]. [`Store::change_counter`] reads the committed
//!   write count, for the fallback poll.
//! - **Durability**: every session runs with `synchronous_commit = on`, so
//!   a caller hears "done" only after the commit's WAL is flushed.
//!
//! - **TLS** when the URL says `sslmode=require` (see `tls.rs`).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// The NOTIFY channel every replica listens on, as a macro so that SQL
/// constants can be built from it with `concat!` (defined before the
/// modules, which see it by textual scope).
macro_rules! channel {
    () => {
        "countersign_changes"
    };
}

mod audit;
mod error;
mod identities;
mod kv;
mod listener;
mod requests;
mod schema;
#[cfg(feature = "test-cluster")]
pub mod testing;
mod tls;
mod writer;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use countersign_audit::{AuditDraft, AuditEvent};
use countersign_core::{Fingerprint, Principal, PrincipalKind, PrincipalRef, Request, Timestamp};
use countersign_store::{
    Agent, Change, NewAgent, NewUser, RequestFilter, Store, StoreError, UpdateFn, Updated, User, UserProfile,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use error::{col, db, pool as pool_error};
use writer::{Op, Output, Writer};

/// The NOTIFY channel every replica listens on.
pub(crate) const CHANNEL: &str = channel!();

/// Tuning for [`PostgresStore::connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Pooled connections for reads (the writer and the listener have one
    /// each besides).
    pub pool_size: usize,
    /// The most mutations committed in one transaction.
    pub max_batch: usize,
    /// How many mutations may wait for the writer before callers wait.
    pub queue_depth: usize,
    /// How long one statement may run (also bounds lock waits and how long
    /// a frozen replica can hold the chain-head lock).
    pub statement_timeout: Duration,
    /// How long connecting, or waiting for a pooled connection, may take.
    pub connect_timeout: Duration,
    /// CA certificates (PEM) to trust besides the public web PKI roots, for
    /// `sslmode=require` against a private CA.
    pub ca_file: Option<PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            max_batch: 256,
            queue_depth: 4096,
            statement_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    target: String,
    ping_timeout: Duration,
    read_timeout: Duration,
    pool: Pool,
    writer: Writer,
    feed: broadcast::Sender<Change>,
    listening: Arc<AtomicBool>,
    listener: JoinHandle<()>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("PostgresStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.pool.close();
    }
}

/// Whether `url` names a PostgreSQL database (rather than a SQLite path).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `host:port/dbname` of a connection string, for messages and logs: never
/// the user or password.
pub fn describe_url(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(config) => describe(&config),
        Err(_) => "an unparsable database URL".to_owned(),
    }
}

/// The URL with its user and password replaced by `***`, for showing a
/// configuration back to its owner.
pub fn redact_url(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(config) => format!("postgres://***@{}", describe(&config)),
        Err(_) => "***".to_owned(),
    }
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("(default)"))
}

impl PostgresStore {
    /// Connects with default options and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to `url` (`postgres://user:password@host:port/dbname?...`),
    /// applies pending migrations, and starts the writer and the listener.
    /// Fails if the database cannot be reached now; after that, the store
    /// rides out outages by reconnecting.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut base = tokio_postgres::Config::from_str(&tls::libpq_sslmodes(url))
            .map_err(|e| StoreError::Unavailable(format!("the database URL is not valid: {e}")))?;
        if !tls::mentions_sslmode(url) {
            base.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        let tls = tls::connector(options.ca_file.as_deref())?;
        let config = schema::session_config(&base, options.statement_timeout, options.connect_timeout);
        let target = describe(&config);

        let migrator = schema::connect(&config, &tls).await?;
        schema::migrate(&migrator).await?;
        drop(migrator);

        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let timeouts = Timeouts {
            wait: Some(options.connect_timeout),
            create: Some(options.connect_timeout),
            recycle: Some(options.connect_timeout),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .timeouts(timeouts)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))?;

        let origin = format!("{:016x}", rand::random::<u64>());
        let writer = Writer::start(
            config.clone(),
            tls.clone(),
            options.max_batch,
            options.queue_depth,
            origin.clone(),
            // Longer than any batch that is merely slow: a lock wait and a
            // few statements, each bounded by the statement timeout.
            options.statement_timeout * 3,
        );
        let (feed, _) = broadcast::channel(4096);
        let listening = Arc::new(AtomicBool::new(false));
        let listener = tokio::spawn(listener::run(config, tls, origin, feed.clone(), Arc::clone(&listening)));
        Ok(Self {
            target,
            ping_timeout: options.connect_timeout,
            // Waiting for a connection, then one statement.
            read_timeout: options.connect_timeout + options.statement_timeout,
            pool,
            writer,
            feed,
            listening,
            listener,
        })
    }

    /// `host:port/dbname`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the change feed is connected right now.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Runs a read with a deadline: a database that hangs (rather than
    /// refusing) must turn into an error, not a call that never returns.
    async fn bounded<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.read_timeout, read)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".to_owned())))
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn write(&self, op: Op) -> Result<Output, StoreError> {
        self.writer.call(op).await
    }

    async fn revoke(
        &self,
        kind: PrincipalKind,
        name: &str,
        now: Timestamp,
        events: Vec<AuditDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        match self.write(Op::Revoke(kind, name.to_owned(), now, events)).await? {
            Output::Revoked(requests) => Ok(requests),
            other => Err(mismatch(&other)),
        }
    }
}

/// The writer answered with another kind of output than the call expects:
/// a bug in this crate.
fn mismatch(output: &Output) -> StoreError {
    StoreError::Internal(format!("the writer answered with an unexpected result: {output:?}"))
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, user: NewUser, events: Vec<AuditDraft>) -> Result<User, StoreError> {
        match self.write(Op::CreateUser(user, events)).await? {
            Output::User(user) => Ok(user),
            other => Err(mismatch(&other)),
        }
    }

    async fn create_agent(&self, agent: NewAgent, events: Vec<AuditDraft>) -> Result<Agent, StoreError> {
        match self.write(Op::CreateAgent(agent, events)).await? {
            Output::Agent(agent) => Ok(agent),
            other => Err(mismatch(&other)),
        }
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.bounded(async { identities::user(&self.client().await?, name).await }).await
    }

    async fn users_with_email(&self, email: &str) -> Result<Vec<User>, StoreError> {
        self.bounded(async { identities::users_with_email(&self.client().await?, email).await }).await
    }

    async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        self.bounded(async { identities::agent(&self.client().await?, name).await }).await
    }

    async fn update_user_profile(
        &self,
        name: &str,
        profile: UserProfile,
        events: Vec<AuditDraft>,
    ) -> Result<User, StoreError> {
        match self.write(Op::UpdateProfile(name.to_owned(), profile, events)).await? {
            Output::User(user) => Ok(user),
            other => Err(mismatch(&other)),
        }
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.bounded(async { identities::list_users(&self.client().await?).await }).await
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.bounded(async { identities::list_agents(&self.client().await?).await }).await
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
        self.bounded(async { identities::principal_by_token_hash(&self.client().await?, token_hash).await }).await
    }

    async fn insert_request(&self, request: Request, events: Vec<AuditDraft>) -> Result<(), StoreError> {
        // Encoded here, on the caller's task, to keep the writer's work small.
        let row = requests::Row::encode(&request)?;
        match self.write(Op::Insert(Box::new(row), events)).await? {
            Output::Inserted => Ok(()),
            other => Err(mismatch(&other)),
        }
    }

    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        self.bounded(async { requests::get(&self.client().await?, id).await }).await
    }

    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        self.bounded(async { requests::list(&self.client().await?, filter).await }).await
    }

    async fn open_requests_by_fingerprint(
        &self,
        requester: &PrincipalRef,
        fingerprint: &Fingerprint,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Request>, StoreError> {
        self.bounded(async {
            requests::open_by_fingerprint(&self.client().await?, requester, fingerprint, now, limit).await
        })
        .await
    }

    async fn update_request(&self, id: &str, update: UpdateFn) -> Result<Updated, StoreError> {
        match self.write(Op::Update(id.to_owned(), update)).await? {
            Output::Updated(updated) => Ok(*updated),
            other => Err(mismatch(&other)),
        }
    }

    async fn due_requests(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.bounded(async { requests::due(&self.client().await?, now).await }).await
    }

    async fn append_audit(&self, events: Vec<AuditDraft>) -> Result<u64, StoreError> {
        match self.write(Op::Append(events)).await? {
            Output::Seq(seq) => Ok(seq),
            other => Err(mismatch(&other)),
        }
    }

    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.bounded(async { audit::page(&self.client().await?, after, limit).await }).await
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.bounded(async { kv::get(&self.client().await?, namespace, key).await }).await
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
        let op = Op::KvCas { namespace: namespace.to_owned(), key: key.to_owned(), expected, value, expires_at };
        match self.write(op).await? {
            Output::Cas(set) => Ok(set),
            other => Err(mismatch(&other)),
        }
    }

    async fn kv_purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        match self.write(Op::KvPurge(now)).await? {
            Output::Purged(deleted) => Ok(deleted),
            other => Err(mismatch(&other)),
        }
    }

    async fn change_counter(&self) -> Result<u64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached("SELECT changes FROM chain_head WHERE id = 1").await.map_err(db)?;
            let row = client.query_one(&stmt, &[]).await.map_err(db)?;
            let changes: i64 = col(&row, 0)?;
            Ok(changes.unsigned_abs())
        })
        .await
    }

    fn change_feed(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.feed.subscribe())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.writer.is_running() {
            return Err(error::writer_gone());
        }
        // Readiness must answer even when the database hangs.
        let ping = async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(db).map(|_| ())
        };
        tokio::time::timeout(self.ping_timeout, ping)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_without_credentials() {
        let url = "postgres://cs:hunter2@db.internal:6432/countersign?application_name=x";
        assert_eq!(describe_url(url), "db.internal:6432/countersign");
        assert_eq!(redact_url(url), "postgres://***@db.internal:6432/countersign");
        let many = redact_url("postgres://cs:hunter2@a:1,b:2/db?target_session_attrs=read-write");
        assert!(!many.contains("hunter2") && many.ends_with("a:1/db"), "{many}");
        assert_eq!(redact_url("not a url at all ::"), "***");
        assert!(is_postgres_url(url) && is_postgres_url("postgresql://h/d") && !is_postgres_url("/var/lib/x.db"));
    }
}
