//! The store conformance suite, run against SQLite: one fresh database
//! file in its own temporary directory per scenario.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_store_sqlite::SqliteStore;

async fn make() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("data").join("countersign.db")).expect("open store");
    (store, dir)
}

countersign_store::conformance_tests!(make);
