//! The key-value area: reads on a reader connection, compare-and-set in the
//! writer, so concurrent setters resolve to exactly one winner.

use countersign_core::Timestamp;
use countersign_store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::db;

pub(crate) fn get(conn: &Connection, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
        .map_err(db)?
        .query_row(params![namespace, key], |r| r.get(0))
        .optional()
        .map_err(db)
}

pub(crate) fn compare_and_set(
    conn: &Connection,
    namespace: &str,
    key: &str,
    expected: Option<&str>,
    value: Option<&str>,
) -> Result<bool, StoreError> {
    if get(conn, namespace, key)?.as_deref() != expected {
        return Ok(false);
    }
    match value {
        Some(value) => conn
            .prepare_cached(
                "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .map_err(db)?
            .execute(params![namespace, key, value, Timestamp::now().as_millis()])
            .map_err(db)?,
        None => conn
            .prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")
            .map_err(db)?
            .execute(params![namespace, key])
            .map_err(db)?,
    };
    Ok(true)
}
