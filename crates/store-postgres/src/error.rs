//! Translating PostgreSQL, pool and JSON failures into [`StoreError`]s.
//!
//! Callers only learn the category, so the HTTP layer can answer 503 while
//! the database is away and 500 for everything else. The detail is for the
//! logs; it never contains the connection string (tokio-postgres does not
//! echo it, and we never format it).

use countersign_store::StoreError;
use tokio_postgres::error::SqlState;

/// Any PostgreSQL failure.
pub(crate) fn db(err: tokio_postgres::Error) -> StoreError {
    let detail = err.to_string();
    if is_unavailable(&err) {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Internal(detail)
    }
}

/// Whether a retry later could succeed: the connection or the server is
/// gone, shutting down, overloaded, or we waited too long for a lock.
pub(crate) fn is_unavailable(err: &tokio_postgres::Error) -> bool {
    let Some(code) = err.code() else {
        // No SQLSTATE: an I/O error, a closed connection, a timeout while
        // connecting — the database is not there.
        return true;
    };
    let class = code.code().get(..2).unwrap_or_default();
    matches!(class, "08" | "53" | "57" | "58" | "40")
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
}

/// Column `index` of `row`, or `Corrupt` if it has another type: a schema
/// this build does not expect must fail the call, not panic the task.
pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}

/// A failure to get a pooled connection.
pub(crate) fn pool(err: deadpool_postgres::PoolError) -> StoreError {
    match err {
        deadpool_postgres::PoolError::Backend(e) => db(e),
        deadpool_postgres::PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("timed out waiting for a database connection ({kind:?})"))
        }
        deadpool_postgres::PoolError::Closed => StoreError::Unavailable("the connection pool is closed".to_owned()),
        deadpool_postgres::PoolError::NoRuntimeSpecified => {
            StoreError::Internal("the connection pool has no runtime".to_owned())
        }
        deadpool_postgres::PoolError::PostCreateHook(e) => StoreError::Unavailable(format!("connection setup: {e}")),
    }
}

/// Stored JSON that no longer decodes.
pub(crate) fn corrupt(what: &str, err: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// The writer task is gone (the store is being dropped).
pub(crate) fn writer_gone() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".to_owned())
}

/// A number that does not fit the column.
pub(crate) fn overflow(what: &str) -> StoreError {
    StoreError::Internal(format!("{what} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_are_unavailable() {
        let err = pool(deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait));
        assert!(matches!(err, StoreError::Unavailable(_)));
        assert!(matches!(pool(deadpool_postgres::PoolError::Closed), StoreError::Unavailable(_)));
    }
}
