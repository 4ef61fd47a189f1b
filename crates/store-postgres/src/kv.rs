//! The key-value area: reads on the pool, compare-and-set in the writer
//! (under the chain-head lock), so racing setters on every replica resolve
//! to exactly one winner. Entries may carry an expiry, after which the purge
//! deletes them.

use countersign_core::Timestamp;
use countersign_store::StoreError;
use deadpool_postgres::Client;

use crate::error::{col, db};
use crate::writer::{Fatal, Tx};

pub(crate) async fn get(client: &Client, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
    let stmt = client.prepare_cached("SELECT value FROM kv WHERE namespace = $1 AND key = $2").await.map_err(db)?;
    let rows = client.query(&stmt, &[&namespace, &key]).await.map_err(db)?;
    rows.first().map(|r| col(r, 0)).transpose()
}

pub(crate) async fn compare_and_set(
    tx: &mut Tx<'_>,
    namespace: &str,
    key: &str,
    expected: Option<&str>,
    value: Option<&str>,
    expires_at: Option<Timestamp>,
) -> Result<bool, Fatal> {
    let rows = tx.query("SELECT value FROM kv WHERE namespace = $1 AND key = $2", &[&namespace, &key]).await?;
    let current: Option<String> = rows.first().map(|r| col(r, 0)).transpose().map_err(Fatal::Store)?;
    if current.as_deref() != expected {
        return Ok(false);
    }
    match value {
        Some(value) => {
            tx.execute(
                "INSERT INTO kv (namespace, key, value, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (namespace, key) DO UPDATE
                 SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                &[&namespace, &key, &value, &Timestamp::now().as_millis(), &expires_at.map(Timestamp::as_millis)],
            )
            .await?
        }
        None => tx.execute("DELETE FROM kv WHERE namespace = $1 AND key = $2", &[&namespace, &key]).await?,
    };
    tx.notice_kv(namespace, key);
    Ok(true)
}

/// Deletes the entries whose expiry is at or before `now`. Other replicas
/// hear of nothing: an expired entry is one nobody should be reading.
pub(crate) async fn purge_expired(tx: &mut Tx<'_>, now: Timestamp) -> Result<u64, Fatal> {
    let deleted =
        tx.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= $1", &[&now.as_millis()]).await?;
    if deleted > 0 {
        tx.mark_dirty();
    }
    Ok(deleted)
}
