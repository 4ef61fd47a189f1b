//! The key-value area: reads on the pool, compare-and-set in the writer
//! (under the chain-head lock), so racing setters on every replica resolve
//! to exactly one winner.

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
) -> Result<bool, Fatal> {
    let rows = tx.query("SELECT value FROM kv WHERE namespace = $1 AND key = $2", &[&namespace, &key]).await?;
    let current: Option<String> = rows.first().map(|r| col(r, 0)).transpose().map_err(Fatal::Store)?;
    if current.as_deref() != expected {
        return Ok(false);
    }
    match value {
        Some(value) => {
            tx.execute(
                "INSERT INTO kv (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                &[&namespace, &key, &value, &Timestamp::now().as_millis()],
            )
            .await?
        }
        None => tx.execute("DELETE FROM kv WHERE namespace = $1 AND key = $2", &[&namespace, &key]).await?,
    };
    tx.notice_kv(namespace, key);
    Ok(true)
}
