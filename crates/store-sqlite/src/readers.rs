//! A small pool of read-only connections. In WAL mode they read a
//! consistent snapshot while the writer commits, so reads never queue
//! behind the group commit. Scans run on tokio's blocking threads so the
//! async runtime never waits on a long read; a lookup of one row by its
//! key (every authenticated call does one) runs on the calling thread
//! when a connection is free, since handing it to the blocking pool and
//! back cost more than the read itself.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use countersign_store::StoreError;
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::error::task;
use crate::schema::open_reader;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection: more concurrent reads than that would
    /// only contend for the same cores, so callers queue here instead of
    /// opening ever more connections.
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, size: usize) -> Result<Self, StoreError> {
        // Open one now, so a store that cannot be read fails at startup;
        // the rest open on first use.
        let first = open_reader(&path)?;
        Ok(Self { path, idle: Mutex::new(vec![first]), permits: Arc::new(Semaphore::new(size.max(1))) })
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("the read pool is closed".to_owned()))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let out = this.with(f);
            drop(permit);
            out
        })
        .await
        .map_err(task)?
    }

    /// Runs `f`, a read of a few rows by key, on the calling thread when a
    /// connection is free at once, and on the blocking pool otherwise.
    ///
    /// Only for reads that touch a handful of pages through an index: they
    /// take microseconds on a warm cache, less than a round trip through
    /// `spawn_blocking` (its hand-off and wake-ups were an eighth of a
    /// routine decision's CPU). A reader in WAL mode never waits for the
    /// writer, so the runtime thread is not held by another's commit.
    pub(crate) async fn lookup<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return self.run(f).await;
        };
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(conn) = pooled else {
            // Connections open lazily; opening one is file I/O, so that
            // happens on the blocking pool.
            drop(permit);
            return self.run(f).await;
        };
        let out = f(&conn);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        drop(permit);
        out
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        out
    }
}
