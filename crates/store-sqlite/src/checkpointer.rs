//! Copies the write-ahead log into the database file off the commit path.
//!
//! By default SQLite checkpoints on the committing connection once the log
//! passes 1,000 pages: the commit that crosses it copies every page and
//! fsyncs the database file before its callers hear back, so one decision
//! in every few dozen waited for a checkpoint (the p99 of every benchmark).
//! Here the writer only nudges this thread, which checkpoints PASSIVE on
//! its own connection (never blocking the writer or the readers). The
//! writer still checkpoints itself at a much larger log, as a backstop
//! should this thread fall behind or fail.

use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use countersign_store::StoreError;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

use crate::error::db;
use crate::schema;

/// A log this long (in pages) is worth copying: SQLite's own threshold.
const NUDGE_PAGES: c_int = 1_000;
/// A log this long means the thread is not keeping up: the writer copies it
/// itself, so the log cannot grow without bound.
const BACKSTOP_PAGES: c_int = 16_000;
/// The least time between two checkpoints, so that a log the readers keep
/// from restarting does not turn into a checkpoint after every commit.
const MIN_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Wanted {
    pending: bool,
    stopping: bool,
}

#[derive(Debug, Default)]
struct Shared {
    wanted: Mutex<Wanted>,
    wake: Condvar,
    /// Checkpoints run by this thread, and by the writer's backstop.
    done: AtomicU64,
    backstops: AtomicU64,
}

impl Shared {
    fn nudge(&self) {
        let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        if !wanted.pending {
            wanted.pending = true;
            self.wake.notify_one();
        }
    }
}

/// The checkpointing thread; stops when dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `path`.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open_checkpointer(path)?;
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("countersign-sqlite-checkpoint".to_owned())
            .spawn(move || run(&conn, &for_thread))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Makes `writer` hand its checkpoints to this thread. This replaces
    /// SQLite's automatic checkpoint on that connection.
    pub(crate) fn take_over(&self, writer: &mut Connection) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        writer
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                after_commit(&shared, pages, || wal.checkpoint_v2(CheckpointMode::PASSIVE).map(|_| ()));
                // Whatever happened, the commit stands: an error here would
                // be reported as the COMMIT's, to callers whose changes are
                // already durable.
                Ok(())
            }))
            .map_err(db)
    }

    /// How many checkpoints ran here, and how many the writer had to run.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.shared.done.load(Ordering::Relaxed), self.shared.backstops.load(Ordering::Relaxed))
    }
}

/// What the writer does once a commit leaves `pages` in the log. A failed
/// backstop is only logged: the thread, or the next commit, tries again.
fn after_commit(shared: &Shared, pages: c_int, checkpoint: impl FnOnce() -> rusqlite::Result<()>) {
    if pages >= BACKSTOP_PAGES {
        shared.backstops.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = checkpoint() {
            tracing::warn!(error = %e, pages, "the SQLite log is long and could not be checkpointed");
        }
    } else if pages >= NUDGE_PAGES {
        shared.nudge();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let mut wanted = self.shared.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            wanted.stopping = true;
            self.shared.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    loop {
        {
            let mut wanted = shared.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            while !wanted.pending && !wanted.stopping {
                wanted = shared.wake.wait(wanted).unwrap_or_else(PoisonError::into_inner);
            }
            if wanted.stopping {
                return;
            }
            wanted.pending = false;
        }
        // A failed checkpoint loses nothing (the log still holds every
        // page); the next nudge, or the writer's backstop, tries again.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => {
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "a background checkpoint of the SQLite log failed"),
        }
        std::thread::sleep(MIN_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_long_log_is_copied_by_the_thread_not_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut writer = schema::open_writer(&path).unwrap();
        let checkpointer = Checkpointer::start(&path).unwrap();
        checkpointer.take_over(&mut writer).unwrap();
        writer.execute_batch("CREATE TABLE filler (body BLOB NOT NULL)").unwrap();
        // About 1,500 pages in all, one commit at a time.
        for _ in 0..1_500 {
            writer.execute("INSERT INTO filler (body) VALUES (zeroblob(4000))", []).unwrap();
        }
        let started = Instant::now();
        while checkpointer.counts().0 == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "no background checkpoint ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(checkpointer.counts().1, 0, "the writer checkpointed on its commit path");
        // The copied pages are in the database file itself.
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > 1_000 * 4096, "the database file holds {size} bytes");
    }

    #[test]
    fn a_failed_backstop_leaves_the_commit_standing() {
        let shared = Shared::default();
        // e.g. SQLITE_BUSY while the thread is mid-checkpoint: before this
        // was handled, the writer's COMMIT failed after it was durable.
        let busy = || Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None));
        after_commit(&shared, BACKSTOP_PAGES, busy);
        assert_eq!(shared.backstops.load(Ordering::Relaxed), 1);
        after_commit(&shared, NUDGE_PAGES, || panic!("no checkpoint below the backstop"));
        assert!(shared.wanted.lock().unwrap().pending);
    }

    #[test]
    fn the_writer_copies_the_log_itself_when_the_thread_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut writer = schema::open_writer(&path).unwrap();
        let checkpointer = Checkpointer::start(&path).unwrap();
        checkpointer.take_over(&mut writer).unwrap();
        // The thread stops; only the backstop is left.
        let shared = Arc::clone(&checkpointer.shared);
        drop(checkpointer);
        writer.execute_batch("CREATE TABLE filler (body BLOB NOT NULL)").unwrap();
        writer.execute_batch("BEGIN").unwrap();
        for _ in 0..17_000 {
            writer.execute("INSERT INTO filler (body) VALUES (zeroblob(4000))", []).unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
        writer.execute("INSERT INTO filler (body) VALUES (zeroblob(10))", []).unwrap();
        assert!(shared.backstops.load(Ordering::Relaxed) >= 1);
        assert_eq!(shared.done.load(Ordering::Relaxed), 0);
    }
}
