//! The writer task and its group commit.
//!
//! Every mutation is a job sent over a bounded channel. The writer takes as
//! many queued jobs as it may (up to `max_batch`) and runs them in ONE
//! transaction on its own connection, which begins by locking the single
//! `chain_head` row (`SELECT ... FOR UPDATE`). Every writer on every
//! replica does the same, so:
//!
//! - the audit chain has one total order: a batch seals its events onto the
//!   head it read under the lock, and the next batch, on whichever replica,
//!   reads the head this one committed;
//! - every read-decide-write (an approval, a release, a compare-and-set) is
//!   serialised against every other write: exactly one racer wins, enforced
//!   by the database, not by anything in this process.
//!
//! The cost is that writes are serial across replicas; group commit keeps
//! that cheap (one lock, one round of audit inserts and one WAL flush per
//! batch), and reads never take the lock.
//!
//! Jobs are written so that a refused one (a taken name, an unknown id)
//! writes nothing before it is refused: the batch then goes on without
//! savepoints (which would cost a subtransaction each). Any database error
//! fails the whole batch, and every caller in it hears so; nobody is told
//! "done" before the commit returned.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use countersign_audit::{AuditDraft, AuditEvent, ChainHead};
use countersign_core::{PrincipalKind, Request, Timestamp};
use countersign_store::{Agent, NewAgent, NewUser, StoreError, UpdateFn, Updated, User, UserProfile};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{db, writer_gone};
use crate::requests::Row as RequestRow;
use crate::{audit, identities, kv, requests, schema};

/// A failure that aborts the batch: the transaction is no longer usable.
#[derive(Debug)]
pub(crate) enum Fatal {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fatal {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl Fatal {
    fn into_store(self) -> StoreError {
        match self {
            Self::Db(e) => db(e),
            Self::Store(e) => e,
        }
    }
}

/// Statements prepared on the writer's connection, by SQL text.
type Statements = HashMap<&'static str, Statement>;

/// A transaction in progress, as a job sees it.
pub(crate) struct Tx<'a> {
    tx: &'a Transaction<'a>,
    statements: &'a mut Statements,
    origin: &'a str,
    head: ChainHead,
    now: Timestamp,
    sealed: Vec<AuditEvent>,
    notices: BTreeSet<String>,
    dirty: bool,
}

impl<'a> Tx<'a> {
    pub(crate) async fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The transaction itself, for statements run concurrently (pipelined).
    pub(crate) fn transaction(&self) -> &'a Transaction<'a> {
        self.tx
    }

    pub(crate) async fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Fatal> {
        let statement = self.statement(sql).await?;
        self.dirty = true;
        Ok(self.tx.execute(&statement, params).await?)
    }

    pub(crate) async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Fatal> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.query(&statement, params).await?)
    }

    pub(crate) async fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, Fatal> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.query_one(&statement, params).await?)
    }

    /// Seals `drafts` onto the chain; they are stored with the rest of the
    /// batch. Returns the sequence number of the newest event (of the
    /// chain, if `drafts` is empty).
    pub(crate) fn append(&mut self, drafts: &[AuditDraft]) -> Result<u64, StoreError> {
        for draft in drafts {
            let event = self
                .head
                .seal(draft, self.now)
                .map_err(|e| StoreError::Internal(format!("cannot seal an audit event: {e}")))?;
            self.sealed.push(event);
        }
        Ok(self.head.seq)
    }

    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Tells other replicas, on commit, that this request changed.
    pub(crate) fn notice_request(&mut self, id: &str) {
        self.notice(json!({"o": self.origin, "r": id}).to_string());
    }

    /// Tells other replicas, on commit, that this key changed.
    pub(crate) fn notice_kv(&mut self, namespace: &str, key: &str) {
        self.notice(json!({"o": self.origin, "k": [namespace, key]}).to_string());
    }

    fn notice(&mut self, payload: String) {
        // NOTIFY payloads are limited to 8000 bytes; a longer one becomes
        // "re-check everything", which is always correct.
        let payload = if payload.len() < 7900 { payload } else { json!({"o": self.origin}).to_string() };
        self.notices.insert(payload);
    }
}

/// One mutation.
pub(crate) enum Op {
    CreateUser(NewUser, Vec<AuditDraft>),
    CreateAgent(NewAgent, Vec<AuditDraft>),
    Revoke(PrincipalKind, String, Timestamp, Vec<AuditDraft>),
    Insert(Box<RequestRow>, Vec<AuditDraft>),
    Update(String, UpdateFn),
    Append(Vec<AuditDraft>),
    UpdateProfile(String, UserProfile, Vec<AuditDraft>),
    KvCas {
        namespace: String,
        key: String,
        expected: Option<String>,
        value: Option<String>,
        expires_at: Option<Timestamp>,
    },
    KvPurge(Timestamp),
}

/// What a mutation returns.
#[derive(Debug)]
pub(crate) enum Output {
    User(User),
    Agent(Agent),
    Revoked(Vec<Request>),
    Inserted,
    Updated(Box<Updated>),
    Seq(u64),
    Cas(bool),
    Purged(u64),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Output, StoreError>>,
}

/// The handle the store keeps to its writer task.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer. It connects lazily and reconnects after any
    /// failure, so a database restart costs the batches in flight, not the
    /// writer.
    pub(crate) fn start(
        config: Config,
        tls: MakeRustlsConnect,
        max_batch: usize,
        queue_depth: usize,
        origin: String,
        batch_timeout: Duration,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(queue_depth.max(1));
        tokio::spawn(run(config, tls, queue, max_batch.max(1), origin, batch_timeout));
        Self { jobs }
    }

    /// Runs `op` in the next batch and returns its result once that batch
    /// is committed.
    pub(crate) async fn call(&self, op: Op) -> Result<Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { op, reply }).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    pub(crate) fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }
}

async fn run(
    config: Config,
    tls: MakeRustlsConnect,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    origin: String,
    batch_timeout: Duration,
) {
    let mut conn: Option<(Client, Statements)> = None;
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.drain(..).map(|j| (j.op, j.reply)).unzip();
        if conn.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            match schema::connect(&config, &tls).await {
                Ok(client) => conn = Some((client, Statements::new())),
                Err(e) => {
                    tracing::warn!(error = %e, "the store's writer cannot reach the database");
                    conn = None;
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                    continue;
                }
            }
        }
        let Some((client, statements)) = conn.as_mut() else { continue };
        let jobs = ops.len();
        // A connection that died silently (a network cut) would otherwise
        // hold every caller until TCP keepalive gives up.
        let committed = tokio::time::timeout(batch_timeout, commit(client, statements, ops, &origin))
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".to_owned())));
        match committed {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // The caller may have stopped waiting; the change stands.
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs, "a store batch failed to commit");
                // Start afresh: the connection may be broken, and its
                // prepared statements with it.
                conn = None;
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Runs one batch in one transaction. The outer error fails every job.
async fn commit(
    client: &mut Client,
    statements: &mut Statements,
    ops: Vec<Op>,
    origin: &str,
) -> Result<Vec<Result<Output, StoreError>>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let outcomes = {
        let mut t = Tx {
            tx: &tx,
            statements,
            origin,
            head: ChainHead::default(),
            now: Timestamp::now(),
            sealed: Vec::new(),
            notices: BTreeSet::new(),
            dirty: false,
        };
        let (head, _) = audit::lock_head(&mut t).await.map_err(Fatal::into_store)?;
        t.head = head;
        // Read after the lock, so that events sealed later are never dated
        // before events another replica committed earlier (clocks allowing).
        t.now = Timestamp::now();
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            outcomes.push(run_op(&mut t, op).await.map_err(Fatal::into_store)?);
        }
        if t.dirty || !t.sealed.is_empty() || !t.notices.is_empty() {
            let sealed = std::mem::take(&mut t.sealed);
            let notices: Vec<String> = std::mem::take(&mut t.notices).into_iter().collect();
            let head = t.head.clone();
            audit::finish(&mut t, &sealed, &head, &notices).await.map_err(Fatal::into_store)?;
        }
        outcomes
    };
    tx.commit().await.map_err(db)?;
    Ok(outcomes)
}

async fn run_op(t: &mut Tx<'_>, op: Op) -> Result<Result<Output, StoreError>, Fatal> {
    Ok(match op {
        Op::CreateUser(user, events) => identities::create_user(t, user, &events).await?.map(Output::User),
        Op::CreateAgent(agent, events) => identities::create_agent(t, agent, &events).await?.map(Output::Agent),
        Op::Revoke(kind, name, now, events) => {
            identities::revoke(t, kind, &name, now, &events).await?.map(Output::Revoked)
        }
        Op::Insert(row, events) => {
            if requests::insert(t, &row).await? {
                t.append(&events).map_err(Fatal::Store)?;
                Ok(Output::Inserted)
            } else {
                Err(StoreError::AlreadyExists { what: "request", name: row.id.clone() })
            }
        }
        Op::Update(id, update) => requests::update(t, &id, update).await?.map(|u| Output::Updated(Box::new(u))),
        Op::Append(events) => Ok(Output::Seq(t.append(&events).map_err(Fatal::Store)?)),
        Op::UpdateProfile(name, profile, events) => {
            identities::update_profile(t, &name, &profile, &events).await?.map(Output::User)
        }
        Op::KvCas { namespace, key, expected, value, expires_at } => Ok(Output::Cas(
            kv::compare_and_set(t, &namespace, &key, expected.as_deref(), value.as_deref(), expires_at).await?,
        )),
        Op::KvPurge(now) => Ok(Output::Purged(kv::purge_expired(t, now).await?)),
    })
}
