//! The change counter waiters poll: it moves on every commit, whichever
//! process made it.
//!
//! `PRAGMA data_version` on a connection that never writes changes when any
//! *other* connection commits (another process, or this process's writer),
//! but only when someone asks; the writer's own commit count moves even if
//! nobody asked in between. The counter is the sum of both, each of which
//! only grows, so any commit anywhere changes it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use countersign_store::StoreError;
use rusqlite::Connection;

use crate::error::db;
use crate::schema::open_reader;

pub(crate) struct Changes {
    watch: Mutex<Watch>,
    commits: Arc<AtomicU64>,
}

struct Watch {
    conn: Connection,
    last_version: i64,
    seen: u64,
}

impl Changes {
    pub(crate) fn new(path: &Path, commits: Arc<AtomicU64>) -> Result<Self, StoreError> {
        let conn = open_reader(path)?;
        let last_version = data_version(&conn)?;
        Ok(Self { watch: Mutex::new(Watch { conn, last_version, seen: 0 }), commits })
    }

    pub(crate) fn current(&self) -> Result<u64, StoreError> {
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        let version = data_version(&watch.conn)?;
        if version != watch.last_version {
            watch.last_version = version;
            watch.seen += 1;
        }
        Ok(watch.seen.wrapping_add(self.commits.load(Ordering::SeqCst)))
    }
}

fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |r| r.get(0))).map_err(db)
}
