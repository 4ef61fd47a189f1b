//! The single writer thread and its group commit.
//!
//! Every mutation is a job sent over a bounded channel. The writer takes as
//! many queued jobs as it may (up to `max_batch`), runs them in ONE
//! `BEGIN IMMEDIATE` transaction, each inside its own savepoint so that a
//! failing job is undone alone (a job alone in its batch is undone with the
//! transaction), and commits once: one fsync pays for the
//! whole batch. Only after the commit does any job's caller get its answer,
//! so nobody hears of a change the log could still lose.
//!
//! The chain head is read from the database inside each transaction rather
//! than kept in memory: the CLI may append from another process between two
//! batches, and both must extend the same chain.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use countersign_audit::{AuditDraft, ChainHead};
use countersign_core::Timestamp;
use countersign_store::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::audit;
use crate::error::{db, writer_gone};

/// A transaction in progress, as a job sees it.
pub(crate) struct Tx<'a> {
    pub(crate) conn: &'a Connection,
    head: &'a mut ChainHead,
    now: Timestamp,
}

impl Tx<'_> {
    /// Seals `drafts` onto the chain and stores them. Returns the sequence
    /// number of the newest event (of the chain, if `drafts` is empty).
    pub(crate) fn append(&mut self, drafts: &[AuditDraft]) -> Result<u64, StoreError> {
        for draft in drafts {
            let event = self
                .head
                .seal(draft, self.now)
                .map_err(|e| StoreError::Internal(format!("cannot seal an audit event: {e}")))?;
            audit::insert(self.conn, &event)?;
        }
        Ok(self.head.seq)
    }
}

/// A queued mutation, erased to one type so that jobs of every result type
/// share the channel.
trait Job: Send {
    /// Runs inside the batch transaction. Returns whether it succeeded, so
    /// the writer knows whether to keep its savepoint.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;

    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, batch: Result<(), StoreError>);
}

struct Op<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Op<T, F>
where
    T: Send,
    F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // Jobs run caller-supplied transitions (`update_request`); one that
        // panics must fail alone, not take the writer down with it.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(tx)))
            .unwrap_or_else(|_| Err(StoreError::Internal("the operation panicked".to_owned())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, batch: Result<(), StoreError>) {
        let answer = match (batch, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(_), Some(Err(own))) => Err(own),
            (Err(batch), Some(Ok(_)) | None) => Err(batch),
            (Ok(()), None) => Err(StoreError::Internal("the operation did not run".to_owned())),
        };
        // The caller may have stopped waiting; the change stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// The handle the store keeps to its writer thread.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer on `conn`. `commits` is bumped after every commit,
    /// before any caller of that batch is answered.
    pub(crate) fn start(
        conn: Connection,
        max_batch: usize,
        queue_depth: usize,
        commits: Arc<AtomicU64>,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel(queue_depth.max(1));
        let max_batch = max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("countersign-sqlite-writer".to_owned())
            .spawn(move || run(&conn, queue, max_batch, &commits))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Runs `work` in the next batch transaction and returns its result once
    /// that transaction is durable.
    pub(crate) async fn call<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let jobs = self.jobs.as_ref().ok_or_else(writer_gone)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Op { work: Some(work), outcome: None, reply });
        jobs.send(job).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Whether the writer thread is still taking jobs.
    pub(crate) fn is_running(&self) -> bool {
        self.jobs.as_ref().is_some_and(|j| !j.is_closed())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and
        // stop; joining it means the file is closed when the store is gone,
        // so a reopen in the same process sees a quiet database.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, mut queue: mpsc::Receiver<Box<dyn Job>>, max_batch: usize, commits: &AtomicU64) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = match commit(conn, &mut batch) {
            Ok(committed) => {
                if committed {
                    commits.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "a store batch failed to commit");
                Err(e)
            }
        };
        for job in batch.drain(..) {
            job.finish(result.clone());
        }
    }
}

/// Runs one batch in one transaction; returns whether it committed
/// anything (a batch of one failed job is rolled back).
fn commit(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<bool, StoreError> {
    // Cached: parsing these two on every batch showed in profiles.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop).map_err(db);
    run("BEGIN IMMEDIATE")?;
    let ran = run_jobs(conn, batch).and_then(|keep| run(if keep { "COMMIT" } else { "ROLLBACK" }).map(|()| keep));
    if ran.is_err() && !conn.is_autocommit() {
        // The error that brought us here is the one to report.
        let _ = conn.execute_batch("ROLLBACK");
    }
    ran
}

/// Runs the batch's jobs; returns whether the transaction holds anything
/// to commit.
fn run_jobs(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<bool, StoreError> {
    let mut head = audit::chain_head(conn)?;
    let now = Timestamp::now();
    if let [job] = batch {
        // Alone in its batch, a job is undone with the transaction itself:
        // a savepoint would only copy every page it touches once more (the
        // batch of one is what a caller waits for whenever the gateway is
        // not busy).
        let ok = job.run(&mut Tx { conn, head: &mut head, now });
        if conn.is_autocommit() {
            return Err(rolled_back());
        }
        return Ok(ok);
    }
    for job in batch.iter_mut() {
        conn.prepare_cached("SAVEPOINT op").and_then(|mut s| s.execute([])).map_err(db)?;
        let before = head.clone();
        let ok = job.run(&mut Tx { conn, head: &mut head, now });
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, full
            // disk): the jobs before this one are lost too, so the batch
            // must fail as a whole.
            return Err(rolled_back());
        }
        if !ok {
            conn.prepare_cached("ROLLBACK TO op").and_then(|mut s| s.execute([])).map_err(db)?;
            head = before;
        }
        conn.prepare_cached("RELEASE op").and_then(|mut s| s.execute([])).map_err(db)?;
    }
    Ok(true)
}

fn rolled_back() -> StoreError {
    StoreError::Unavailable("the database rolled the transaction back".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn draft(id: &str) -> AuditDraft {
        AuditDraft::raw("system", "test.event", json!({ "id": id }))
    }

    /// A job that has written and then fails leaves nothing behind and
    /// does not move the chain, whether it is alone in its batch (undone
    /// with the transaction) or shares it (undone to its savepoint).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_wrote_then_failed_leaves_nothing() {
        for max_batch in [1, 8] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.db");
            let conn = crate::schema::open_writer(&path).unwrap();
            let commits = Arc::new(AtomicU64::new(0));
            let writer = Arc::new(Writer::start(conn, max_batch, 64, Arc::clone(&commits)).unwrap());
            let calls: Vec<_> = (0..16)
                .map(|i| {
                    let writer = Arc::clone(&writer);
                    tokio::spawn(async move {
                        writer
                            .call(move |tx| {
                                tx.append(&[draft(&format!("e{i}"))])?;
                                if i % 2 == 1 {
                                    return Err(StoreError::Internal(format!("job {i} fails after writing")));
                                }
                                Ok(i)
                            })
                            .await
                    })
                })
                .collect();
            for (i, call) in calls.into_iter().enumerate() {
                match call.await.unwrap() {
                    Ok(n) => assert_eq!((n, i % 2), (i, 0)),
                    Err(StoreError::Internal(message)) => assert_eq!(message, format!("job {i} fails after writing")),
                    Err(other) => panic!("{other:?}"),
                }
            }
            drop(writer);
            let reader = crate::schema::open_reader(&path).unwrap();
            let events = crate::audit::page(&reader, 0, 100).unwrap();
            let mut ids: Vec<String> = events.iter().map(|e| e.body.clone()).collect();
            ids.sort();
            let mut kept: Vec<String> = (0..16).step_by(2).map(|i| format!(r#"{{"id":"e{i}"}}"#)).collect();
            kept.sort();
            assert_eq!(ids, kept, "max_batch {max_batch}");
            assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
            assert!(crate::audit::verify(&reader).is_ok());
        }
    }
}
