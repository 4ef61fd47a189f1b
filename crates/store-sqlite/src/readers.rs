//! A small pool of read-only connections. In WAL mode they read a
//! consistent snapshot while the writer commits, so reads never queue
//! behind the group commit; they run on tokio's blocking threads so the
//! async runtime never waits on disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use countersign_store::StoreError;
use rusqlite::Connection;

use crate::error::task;
use crate::schema::open_reader;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections kept open between reads; bursts beyond this open extra
    /// connections that are closed afterwards.
    keep: usize,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, keep: usize) -> Result<Self, StoreError> {
        // Open one now, so a store that cannot be read fails at startup.
        let first = open_reader(&path)?;
        Ok(Self { path, idle: Mutex::new(vec![first]), keep: keep.max(1) })
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.with(f)).await.map_err(task)?
    }

    /// Runs `f` on a pooled connection on this thread.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(conn);
        }
        out
    }
}
