//! The requests table: the whole request as JSON text, plus copies of the
//! fields that lists and the expiry sweep filter on.

use countersign_core::{Fingerprint, PrincipalRef, Request, Timestamp};
use countersign_store::{RequestFilter, StoreError, Update, UpdateFn, Updated};
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::{col, corrupt, db};
use crate::writer::{Fatal, Tx};

pub(crate) use countersign_store::RequestRow as Row;

/// The row's values in column order.
fn params(row: &Row) -> [&(dyn ToSql + Sync); 10] {
    [
        &row.id,
        &row.status,
        &row.principal_kind,
        &row.principal_name,
        &row.kind,
        &row.resource,
        &row.created_at,
        &row.deadline,
        &row.body,
        &row.fingerprint,
    ]
}

fn decode(body: &str) -> Result<Request, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt("request", e))
}

/// Inserts a new request; `false` if the id is taken (nothing written).
pub(crate) async fn insert(tx: &mut Tx<'_>, row: &Row) -> Result<bool, Fatal> {
    let inserted = tx
        .execute(
            "INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, deadline, body,
                                   fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            &params(row),
        )
        .await?;
    // Nobody can be waiting on a request that did not exist, so a new one
    // needs no notice to other replicas; the change counter still moves.
    tx.mark_dirty();
    if inserted == 1 {
        index_audience(tx, row, false).await?;
    }
    Ok(inserted == 1)
}

/// Writes the request's rows of the visibility index (see migration 3),
/// replacing any it had (`replace`: a request saved again).
async fn index_audience(tx: &mut Tx<'_>, row: &Row, replace: bool) -> Result<(), Fatal> {
    if replace {
        tx.execute("DELETE FROM request_audience WHERE request_id = $1", &[&row.id]).await?;
    }
    for audience in &row.audiences {
        tx.execute(
            "INSERT INTO request_audience (audience, request_id, status, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[audience, &row.id, &row.status, &row.created_at],
        )
        .await?;
    }
    Ok(())
}

/// Overwrites a stored request and tells other replicas.
pub(crate) async fn save(tx: &mut Tx<'_>, row: &Row) -> Result<u64, Fatal> {
    let changed = tx
        .execute(
            "UPDATE requests SET status = $2, principal_kind = $3, principal_name = $4, kind = $5, resource = $6,
                    created_at = $7, deadline = $8, body = $9, fingerprint = $10
              WHERE id = $1",
            &params(row),
        )
        .await?;
    if changed > 0 {
        index_audience(tx, row, true).await?;
    }
    tx.notice_request(&row.id);
    Ok(changed)
}

/// The current request inside the write transaction.
pub(crate) async fn get_in(tx: &mut Tx<'_>, id: &str) -> Result<Option<String>, Fatal> {
    let rows = tx.query("SELECT body FROM requests WHERE id = $1", &[&id]).await?;
    rows.first().map(|r| col(r, 0)).transpose().map_err(Fatal::Store)
}

/// Runs a transition against the current request, inside the writer.
/// Logical failures (`NotFound`, undecodable rows, a transition that
/// panicked) write nothing, so the batch goes on without them.
pub(crate) async fn update(tx: &mut Tx<'_>, id: &str, update: UpdateFn) -> Result<Result<Updated, StoreError>, Fatal> {
    let Some(body) = get_in(tx, id).await? else {
        return Ok(Err(StoreError::NotFound { what: "request", name: id.to_owned() }));
    };
    let current = match decode(&body) {
        Ok(current) => current,
        Err(e) => return Ok(Err(e)),
    };
    // Transitions are caller code; one that panics must fail alone, not
    // take the writer (and every replica's chain lock) down with it.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| update(&current)));
    let Ok(Update { save: next, events, result }) = ran else {
        return Ok(Err(StoreError::Internal("the transition panicked".to_owned())));
    };
    let before = current.status;
    let changed = next.as_ref().is_some_and(|next| next != &current);
    let request = match next {
        Some(next) if next.id != current.id => {
            return Ok(Err(StoreError::Internal(format!(
                "an update of request `{}` tried to save request `{}`",
                current.id, next.id
            ))));
        }
        Some(next) => {
            let row = match Row::encode(&next) {
                Ok(row) => row,
                Err(e) => return Ok(Err(e)),
            };
            save(tx, &row).await?;
            next
        }
        None => current,
    };
    // Appended whether or not anything changed: refused attempts are audited.
    if let Err(e) = tx.append(&events) {
        return Err(Fatal::Store(e));
    }
    Ok(Ok(Updated { request, result, before, changed }))
}

/// Every open request, oldest first.
pub(crate) async fn open(tx: &mut Tx<'_>) -> Result<Vec<Result<Request, StoreError>>, Fatal> {
    let rows = tx
        .query("SELECT body FROM requests WHERE status IN ('pending', 'approved') ORDER BY created_at, id", &[])
        .await?;
    Ok(rows.iter().map(|r| col::<&str>(r, 0).and_then(decode)).collect())
}

pub(crate) async fn get(client: &Client, id: &str) -> Result<Option<Request>, StoreError> {
    let stmt = client.prepare_cached("SELECT body FROM requests WHERE id = $1").await.map_err(db)?;
    let rows = client.query(&stmt, &[&id]).await.map_err(db)?;
    rows.first().map(|r| col::<&str>(r, 0).and_then(decode)).transpose()
}

/// The requests `filter` selects, newest first. Every filter (the
/// audience and the cursor too) is part of the query, so the limit counts
/// only matching rows.
pub(crate) async fn list(client: &Client, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut bind = |value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        format!("${}", params.len())
    };
    let status = filter.status.map(|s| bind(Box::new(s.as_str().to_owned())));
    if let Some(status) = &status {
        clauses.push(format!("status = {status}"));
    }
    if let Some(principal) = &filter.principal {
        let kind = bind(Box::new(principal.kind.as_str().to_owned()));
        let name = bind(Box::new(principal.name.clone()));
        clauses.push(format!("principal_kind = {kind} AND principal_name = {name}"));
    }
    if let Some(kind) = &filter.kind {
        clauses.push(format!("kind = {}", bind(Box::new(kind.clone()))));
    }
    if let Some(resource) = &filter.resource {
        clauses.push(format!("resource = {}", bind(Box::new(resource.clone()))));
    }
    let after = filter.after.as_ref().map(|c| (bind(Box::new(c.created_at.as_millis())), bind(Box::new(c.id.clone()))));
    if let Some((at, id)) = &after {
        clauses.push(format!("(created_at, id) < ({at}, {id})"));
    }
    if let Some(audience) = &filter.visible_to {
        // Read from the audience index; an audience with no keys sees nothing.
        let keys = bind(Box::new(audience.keys()));
        let mut inner = vec![format!("audience = ANY({keys})")];
        if let Some(status) = &status {
            inner.push(format!("status = {status}"));
        }
        if let Some((at, id)) = &after {
            inner.push(format!("(created_at, request_id) < ({at}, {id})"));
        }
        clauses.push(format!("id IN (SELECT request_id FROM request_audience WHERE {})", inner.join(" AND ")));
    }
    let limit = countersign_store::page_limit(filter.limit);
    let limit = bind(Box::new(i64::try_from(limit).unwrap_or(100)));
    let filter_sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    let sql = format!("SELECT body FROM requests{filter_sql} ORDER BY created_at DESC, id DESC LIMIT {limit}");
    let stmt = client.prepare_cached(&sql).await.map_err(db)?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&stmt, &refs).await.map_err(db)?;
    rows.iter().map(|r| col::<&str>(r, 0).and_then(decode)).collect()
}

/// The requester's open requests with this fingerprint, within their
/// deadline: approved first, then pending, each oldest first. Each status
/// is its own range of the partial index of migration 4, read in one
/// statement so that both come from one snapshot: a request approved
/// between two reads could otherwise be missed by both.
pub(crate) const OPEN_BY_FINGERPRINT: &str = "
    SELECT body FROM (
        SELECT 0 AS rank, created_at, id, body FROM (
            SELECT created_at, id, body FROM requests
             WHERE fingerprint = $1 AND principal_kind = $2 AND principal_name = $3
               AND status = 'approved' AND status IN ('pending', 'approved')
               AND (deadline IS NULL OR deadline > $4)
             ORDER BY created_at, id LIMIT $5) AS approved
        UNION ALL
        SELECT 1 AS rank, created_at, id, body FROM (
            SELECT created_at, id, body FROM requests
             WHERE fingerprint = $1 AND principal_kind = $2 AND principal_name = $3
               AND status = 'pending' AND status IN ('pending', 'approved')
               AND (deadline IS NULL OR deadline > $4)
             ORDER BY created_at, id LIMIT $5) AS pending) AS found
     ORDER BY rank, created_at, id LIMIT $5";

pub(crate) async fn open_by_fingerprint(
    client: &Client,
    requester: &PrincipalRef,
    fingerprint: &Fingerprint,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Request>, StoreError> {
    let limit = countersign_store::page_limit(limit);
    let limit = i64::try_from(limit).unwrap_or(100);
    let stmt = client.prepare_cached(OPEN_BY_FINGERPRINT).await.map_err(db)?;
    let rows = client
        .query(&stmt, &[&fingerprint.as_str(), &requester.kind.as_str(), &requester.name, &now.as_millis(), &limit])
        .await
        .map_err(db)?;
    rows.iter().map(|r| col::<&str>(r, 0).and_then(decode)).collect()
}

pub(crate) async fn due(client: &Client, now: Timestamp) -> Result<Vec<String>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT id FROM requests WHERE deadline IS NOT NULL AND deadline <= $1
                AND status IN ('pending', 'approved') ORDER BY deadline, id",
        )
        .await
        .map_err(db)?;
    let rows = client.query(&stmt, &[&now.as_millis()]).await.map_err(db)?;
    rows.iter().map(|r| col(r, 0)).collect()
}
