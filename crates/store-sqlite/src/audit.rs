//! The audit table: appending sealed events, reading them back in order,
//! and streaming the whole chain through the verifier.

use std::sync::mpsc;

use countersign_audit::{AuditEvent, ChainBreak, ChainHead, ChainVerifier, Verified};
use countersign_core::Timestamp;
use countersign_store::StoreError;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::db;

const SELECT: &str = "SELECT seq, time, actor, type, body, prev_hash, hash FROM audit";

/// Why `verify_audit` failed: the log could not be read, or it was read and
/// does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broken(#[from] ChainBreak),
}

/// Stores one sealed event.
pub(crate) fn insert(conn: &Connection, event: &AuditEvent) -> Result<(), StoreError> {
    let seq = i64::try_from(event.seq).map_err(|_| StoreError::Internal("audit sequence overflow".to_owned()))?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit (seq, time, actor, type, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(db)?;
    stmt.execute((seq, event.time.as_millis(), &event.actor, &event.kind, &event.body, &event.prev_hash, &event.hash))
        .map_err(db)?;
    Ok(())
}

/// Where the next event attaches, read from the table itself.
pub(crate) fn chain_head(conn: &Connection) -> Result<ChainHead, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").map_err(db)?;
    let head = stmt.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).optional().map_err(db)?;
    match head {
        None => Ok(ChainHead::default()),
        Some((seq, hash)) => {
            let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative audit sequence {seq}")))?;
            Ok(ChainHead { seq, hash })
        }
    }
}

/// Up to `limit` events after `after`, in order.
pub(crate) fn page(conn: &Connection, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2")).map_err(db)?;
    let rows = stmt.query_map((after, limit), decode).map_err(db)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row.map_err(db)??);
    }
    Ok(events)
}

/// Feeds every event after `after` to `f`, in order, from one snapshot.
/// Returns how many were fed.
pub(crate) fn for_each<E>(
    conn: &Connection,
    after: u64,
    mut f: impl FnMut(AuditEvent) -> Result<(), E>,
) -> Result<u64, E>
where
    E: From<StoreError>,
{
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    // Not cached: the cursor lives as long as the scan, which may be long.
    let mut stmt = conn.prepare(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq")).map_err(db)?;
    let mut rows = stmt.query([after]).map_err(db)?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(db)? {
        let event = decode(row).map_err(db)??;
        f(event)?;
        count += 1;
    }
    Ok(count)
}

/// Reads and verifies the whole chain on two threads: one decodes rows,
/// the other hashes, so both cores work on a long log. Verified chunks go
/// back to the reader, which overwrites their strings in place: no
/// allocation per event, and no memory freed on a thread other than the
/// one that allocated it (both are costly at a million events).
pub(crate) fn verify(conn: &Connection) -> Result<Verified, VerifyError> {
    /// Events handed over at a time: large enough that channel traffic is
    /// noise, small enough to stay in cache.
    const CHUNK: usize = 1024;
    const IN_FLIGHT: usize = 4;
    let (full, to_verify) = mpsc::sync_channel::<Vec<AuditEvent>>(IN_FLIGHT);
    let (give_back, returned) = mpsc::sync_channel::<Vec<AuditEvent>>(IN_FLIGHT + 2);
    std::thread::scope(|scope| {
        let verifier = scope.spawn(move || {
            let mut verifier = ChainVerifier::new();
            for chunk in to_verify {
                for event in &chunk {
                    verifier.push(event)?;
                }
                // Full means the reader has spares enough; dropping is fine.
                let _ = give_back.try_send(chunk);
            }
            Ok::<_, ChainBreak>(verifier.finish())
        });
        let read = read_chunks(conn, CHUNK, &full, &returned);
        drop(full);
        let verified = verifier
            .join()
            .map_err(|_| VerifyError::Store(StoreError::Internal("the verifier thread panicked".to_owned())))?;
        // A break found by the verifier explains a reader that was cut off.
        let verified = verified?;
        match read {
            Ok(()) => Ok(verified),
            Err(StopReading::Store(e)) => Err(VerifyError::Store(e)),
            Err(StopReading::Stopped) => {
                Err(VerifyError::Store(StoreError::Internal("the audit read stopped early".to_owned())))
            }
        }
    })
}

/// Decodes every event into chunks of `size`, reusing returned events.
fn read_chunks(
    conn: &Connection,
    size: usize,
    full: &mpsc::SyncSender<Vec<AuditEvent>>,
    returned: &mpsc::Receiver<Vec<AuditEvent>>,
) -> Result<(), StopReading> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY seq")).map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let mut spare: Vec<AuditEvent> = Vec::new();
    let mut chunk = Vec::with_capacity(size);
    while let Some(row) = rows.next().map_err(db)? {
        let mut event = spare.pop().unwrap_or_else(blank);
        overwrite(&mut event, row)?;
        chunk.push(event);
        if chunk.len() == size {
            // A closed channel means the verifier found a break.
            full.send(std::mem::replace(&mut chunk, Vec::with_capacity(size))).map_err(|_| StopReading::Stopped)?;
            if spare.is_empty() {
                spare = returned.try_recv().unwrap_or_default();
            }
        }
    }
    if !chunk.is_empty() {
        full.send(chunk).map_err(|_| StopReading::Stopped)?;
    }
    Ok(())
}

enum StopReading {
    Store(StoreError),
    Stopped,
}

impl From<StoreError> for StopReading {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn blank() -> AuditEvent {
    AuditEvent {
        seq: 0,
        time: Timestamp::from_millis(0),
        actor: String::new(),
        kind: String::new(),
        body: String::new(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Decodes a row into an existing event, reusing its strings' buffers.
fn overwrite(event: &mut AuditEvent, row: &Row<'_>) -> Result<(), StoreError> {
    let seq: i64 = row.get(0).map_err(db)?;
    event.seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative audit sequence {seq}")))?;
    event.time = Timestamp::from_millis(row.get(1).map_err(db)?);
    for (column, field) in [
        (2, &mut event.actor),
        (3, &mut event.kind),
        (4, &mut event.body),
        (5, &mut event.prev_hash),
        (6, &mut event.hash),
    ] {
        let text = row
            .get_ref(column)
            .map_err(db)?
            .as_str()
            .map_err(|e| StoreError::Corrupt(format!("audit event {seq}, column {column}: {e}")))?;
        field.clear();
        field.push_str(text);
    }
    Ok(())
}

fn decode(row: &Row<'_>) -> rusqlite::Result<Result<AuditEvent, StoreError>> {
    let seq: i64 = row.get(0)?;
    let Ok(seq) = u64::try_from(seq) else {
        return Ok(Err(StoreError::Corrupt(format!("negative audit sequence {seq}"))));
    };
    Ok(Ok(AuditEvent {
        seq,
        time: Timestamp::from_millis(row.get(1)?),
        actor: row.get(2)?,
        kind: row.get(3)?,
        body: row.get(4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
    }))
}
