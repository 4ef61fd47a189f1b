//! The key-value area: reads on a reader connection, compare-and-set in the
//! writer, so concurrent setters resolve to exactly one winner. Entries may
//! carry an expiry, after which the purge deletes them.

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
    expires_at: Option<Timestamp>,
) -> Result<bool, StoreError> {
    if get(conn, namespace, key)?.as_deref() != expected {
        return Ok(false);
    }
    match value {
        Some(value) => conn
            .prepare_cached(
                "INSERT INTO kv (namespace, key, value, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (namespace, key) DO UPDATE
                 SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at",
            )
            .map_err(db)?
            .execute(params![namespace, key, value, Timestamp::now().as_millis(), expires_at.map(Timestamp::as_millis)])
            .map_err(db)?,
        None => conn
            .prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")
            .map_err(db)?
            .execute(params![namespace, key])
            .map_err(db)?,
    };
    Ok(true)
}

/// Deletes the entries whose expiry is at or before `now`.
pub(crate) fn purge_expired(conn: &Connection, now: Timestamp) -> Result<u64, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1")
        .map_err(db)?
        .execute(params![now.as_millis()])
        .map_err(db)?;
    Ok(deleted as u64)
}
