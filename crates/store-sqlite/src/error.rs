//! Translating SQLite and JSON failures into [`StoreError`]s.
//!
//! Callers only learn the category (the detail goes into the message for the
//! logs), so the HTTP layer can answer 503 for a locked or missing database
//! and 500 for everything else.

use countersign_store::StoreError;
use rusqlite::ErrorCode;

/// Any SQLite failure that is not an expected constraint violation.
pub(crate) fn db(err: rusqlite::Error) -> StoreError {
    let detail = err.to_string();
    match err.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied,
        ) => StoreError::Unavailable(detail),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(detail),
        // The error-code enum is non-exhaustive; everything else is a bug or
        // an unexpected state, not something a retry would fix.
        Some(_) | None => StoreError::Internal(detail),
    }
}

/// A failed INSERT: a uniqueness violation means the key is taken.
pub(crate) fn insert(err: rusqlite::Error, what: &'static str, name: &str) -> StoreError {
    if err.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        StoreError::AlreadyExists { what, name: name.to_owned() }
    } else {
        db(err)
    }
}

/// Stored JSON that no longer decodes.
pub(crate) fn corrupt(what: &str, err: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// A value the store failed to encode: a bug, not a data problem.
pub(crate) fn encode(what: &str, err: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("cannot encode {what}: {err}"))
}

/// The writer thread is gone (it stopped, or the store is being dropped).
pub(crate) fn writer_gone() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".to_owned())
}

/// A blocking read task did not finish (it panicked or was cancelled).
pub(crate) fn task(err: tokio::task::JoinError) -> StoreError {
    StoreError::Internal(format!("a store task failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("detail".into()))
    }

    #[test]
    fn busy_and_io_are_unavailable() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_IOERR,
        ] {
            assert!(matches!(db(failure(code)), StoreError::Unavailable(_)), "code {code}");
        }
    }

    #[test]
    fn constraint_on_insert_is_already_exists() {
        let err = insert(failure(rusqlite::ffi::SQLITE_CONSTRAINT), "user", "alice");
        assert_eq!(err, StoreError::AlreadyExists { what: "user", name: "alice".into() });
        assert!(matches!(insert(failure(rusqlite::ffi::SQLITE_BUSY), "user", "a"), StoreError::Unavailable(_)));
    }

    #[test]
    fn other_failures_are_internal() {
        assert!(matches!(db(rusqlite::Error::QueryReturnedNoRows), StoreError::Internal(_)));
        assert!(matches!(db(failure(rusqlite::ffi::SQLITE_CORRUPT)), StoreError::Corrupt(_)));
    }
}
