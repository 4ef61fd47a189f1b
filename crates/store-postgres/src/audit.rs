//! The audit table: storing a batch's sealed events with one statement, and
//! reading them back in order.
//!
//! The chain's total order across replicas comes from the `chain_head` row
//! (see `writer.rs`): a batch seals its events onto the head it read under
//! that row's lock, so two replicas can never both extend the same head.

use countersign_audit::{AuditEvent, ChainHead};
use countersign_core::Timestamp;
use countersign_store::StoreError;
use deadpool_postgres::Client;

use crate::error::{col, db, overflow};
use crate::writer::{Fatal, Tx};

/// The head as the locked `chain_head` row says, and the change count.
pub(crate) async fn lock_head(tx: &mut Tx<'_>) -> Result<(ChainHead, i64), Fatal> {
    let row = tx.query_one("SELECT seq, hash, changes FROM chain_head WHERE id = 1 FOR UPDATE", &[]).await?;
    let seq: i64 = col(&row, 0).map_err(Fatal::Store)?;
    let seq = u64::try_from(seq).map_err(|_| Fatal::Store(StoreError::Corrupt(format!("audit head {seq}"))))?;
    let hash: String = col(&row, 1).map_err(Fatal::Store)?;
    Ok((ChainHead { seq, hash }, col(&row, 2).map_err(Fatal::Store)?))
}

const INSERT: &str = "INSERT INTO audit (seq, time, actor, type, body, prev_hash, hash)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])";
const MOVE_HEAD: &str = "UPDATE chain_head SET seq = $1, hash = $2, changes = changes + 1 WHERE id = 1";
const NOTIFY: &str = concat!("SELECT pg_notify('", channel!(), "', n) FROM unnest($1::text[]) n");

/// Ends a batch: stores `events` (one statement, however many), moves the
/// head row, and queues the notices (PostgreSQL delivers them if, and
/// when, the transaction commits). The three statements are pipelined:
/// one round trip, not three, while every replica waits for the lock.
pub(crate) async fn finish(
    tx: &mut Tx<'_>,
    events: &[AuditEvent],
    head: &ChainHead,
    notices: &[String],
) -> Result<(), Fatal> {
    let mut seqs = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    for event in events {
        seqs.push(i64::try_from(event.seq).map_err(|_| Fatal::Store(overflow("audit sequence")))?);
        times.push(event.time.as_millis());
    }
    let actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let bodies: Vec<&str> = events.iter().map(|e| e.body.as_str()).collect();
    let prevs: Vec<&str> = events.iter().map(|e| e.prev_hash.as_str()).collect();
    let hashes: Vec<&str> = events.iter().map(|e| e.hash.as_str()).collect();
    let seq = i64::try_from(head.seq).map_err(|_| Fatal::Store(overflow("audit sequence")))?;
    let insert = tx.statement(INSERT).await?;
    let move_head = tx.statement(MOVE_HEAD).await?;
    let notify = tx.statement(NOTIFY).await?;
    let inner = tx.transaction();
    let insert = async {
        if events.is_empty() {
            return Ok(0);
        }
        inner.execute(&insert, &[&seqs, &times, &actors, &kinds, &bodies, &prevs, &hashes]).await
    };
    let head_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&seq, &head.hash];
    let move_head = inner.execute(&move_head, &head_params);
    let notify = async {
        if notices.is_empty() {
            return Ok(0);
        }
        inner.execute(&notify, &[&notices]).await
    };
    futures_util::future::try_join3(insert, move_head, notify).await?;
    Ok(())
}

/// Up to `limit` events after `after`, in order.
pub(crate) async fn page(client: &Client, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stmt = client
        .prepare_cached(
            "SELECT seq, time, actor, type, body, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .await
        .map_err(db)?;
    let rows = client.query(&stmt, &[&after, &limit]).await.map_err(db)?;
    rows.iter().map(decode).collect()
}

fn decode(row: &tokio_postgres::Row) -> Result<AuditEvent, StoreError> {
    let seq: i64 = col(row, 0)?;
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative audit sequence {seq}")))?;
    Ok(AuditEvent {
        seq,
        time: Timestamp::from_millis(col(row, 1)?),
        actor: col(row, 2)?,
        kind: col(row, 3)?,
        body: col(row, 4)?,
        prev_hash: col(row, 5)?,
        hash: col(row, 6)?,
    })
}
