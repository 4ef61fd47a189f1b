//! The requests table: the whole request as JSON, plus copies of the
//! fields that lists and the expiry sweep filter on.

use countersign_core::{Fingerprint, PrincipalRef, Request, Timestamp};
use countersign_store::{RequestFilter, StoreError, Update, UpdateFn, Updated};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

use crate::error::{corrupt, db, insert as insert_error};
use crate::writer::Tx;

pub(crate) use countersign_store::RequestRow as Row;

pub(crate) fn insert(conn: &Connection, row: &Row) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, deadline, body,
                               fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute((
            &row.id,
            row.status,
            row.principal_kind,
            &row.principal_name,
            &row.kind,
            &row.resource,
            row.created_at,
            row.deadline,
            &row.body,
            &row.fingerprint,
        ))
    })
    .map_err(|e| insert_error(e, "request", &row.id))?;
    index_audience(conn, row)
}

/// Writes the request's rows of the visibility index (see migration 4).
/// A new request has none yet; [`save`] removes the old ones first.
fn index_audience(conn: &Connection, row: &Row) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO request_audience (audience, request_id, status, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db)?;
    for audience in &row.audiences {
        stmt.execute((audience, &row.id, row.status, row.created_at)).map_err(db)?;
    }
    Ok(())
}

/// Overwrites a stored request.
pub(crate) fn save(conn: &Connection, request: &Request) -> Result<(), StoreError> {
    let row = Row::encode(request)?;
    let changed = conn
        .prepare_cached(
            "UPDATE requests SET status = ?2, principal_kind = ?3, principal_name = ?4, kind = ?5, resource = ?6,
                    created_at = ?7, deadline = ?8, body = ?9, fingerprint = ?10
              WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute((
                &row.id,
                row.status,
                row.principal_kind,
                &row.principal_name,
                &row.kind,
                &row.resource,
                row.created_at,
                row.deadline,
                &row.body,
                &row.fingerprint,
            ))
        })
        .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::NotFound { what: "request", name: request.id.clone() });
    }
    conn.prepare_cached("DELETE FROM request_audience WHERE request_id = ?1")
        .and_then(|mut s| s.execute([&row.id]))
        .map_err(db)?;
    index_audience(conn, &row)
}

/// Runs a transition against the current request, inside the writer.
pub(crate) fn update(tx: &mut Tx<'_>, id: &str, update: UpdateFn) -> Result<Updated, StoreError> {
    let current = get(tx.conn, id)?.ok_or_else(|| StoreError::NotFound { what: "request", name: id.to_owned() })?;
    let Update { save: next, events, result } = update(&current);
    let before = current.status;
    let changed = next.as_ref().is_some_and(|next| next != &current);
    let request = match next {
        Some(next) if next.id != current.id => {
            return Err(StoreError::Internal(format!(
                "an update of request `{}` tried to save request `{}`",
                current.id, next.id
            )));
        }
        Some(next) => {
            save(tx.conn, &next)?;
            next
        }
        None => current,
    };
    // Appended whether or not anything changed: refused attempts are audited.
    tx.append(&events)?;
    Ok(Updated { request, result, before, changed })
}

pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Request>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT body FROM requests WHERE id = ?1").map_err(db)?;
    let body: Option<String> = stmt.query_row([id], |r| r.get(0)).optional().map_err(db)?;
    body.map(|b| decode(&b)).transpose()
}

/// The requests `filter` selects, newest first. Every filter (the
/// audience and the cursor too) is part of the query, so the limit counts
/// only matching rows.
pub(crate) fn list(conn: &Connection, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
    let (sql, params) = list_query(filter);
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt.query_map(params_from_iter(params), |r| r.get::<_, String>(0)).map_err(db)?;
    rows.map(|r| decode(&r.map_err(db)?)).collect()
}

/// The statement [`list`] runs for `filter`, and its parameters.
pub(crate) fn list_query(filter: &RequestFilter) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    let status = filter.status.map(|s| bind(Value::Text(s.as_str().to_owned())));
    if let Some(status) = &status {
        clauses.push(format!("status = {status}"));
    }
    if let Some(principal) = &filter.principal {
        let kind = bind(Value::Text(principal.kind.as_str().to_owned()));
        let name = bind(Value::Text(principal.name.clone()));
        clauses.push(format!("principal_kind = {kind} AND principal_name = {name}"));
    }
    if let Some(kind) = &filter.kind {
        clauses.push(format!("kind = {}", bind(Value::Text(kind.clone()))));
    }
    if let Some(resource) = &filter.resource {
        clauses.push(format!("resource = {}", bind(Value::Text(resource.clone()))));
    }
    let after = filter
        .after
        .as_ref()
        .map(|c| (bind(Value::Integer(c.created_at.as_millis())), bind(Value::Text(c.id.clone()))));
    if let Some((at, id)) = &after {
        clauses.push(format!("(created_at, id) < ({at}, {id})"));
    }
    if let Some(audience) = &filter.visible_to {
        // Read from the audience index, each key's range in index order;
        // an audience with no keys sees nothing.
        let keys: Vec<String> = audience.keys().into_iter().map(|k| bind(Value::Text(k))).collect();
        let mut inner = vec![format!("audience IN ({})", keys.join(", "))];
        if let Some(status) = &status {
            inner.push(format!("status = {status}"));
        }
        if let Some((at, id)) = &after {
            inner.push(format!("(created_at, request_id) < ({at}, {id})"));
        }
        clauses.push(format!("id IN (SELECT request_id FROM request_audience WHERE {})", inner.join(" AND ")));
    }
    let limit = countersign_store::page_limit(filter.limit);
    let limit = bind(Value::Integer(i64::try_from(limit).unwrap_or(100)));
    let filter_sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (format!("SELECT body FROM requests{filter_sql} ORDER BY created_at DESC, id DESC LIMIT {limit}"), params)
}

/// The requester's open requests with this fingerprint, within their
/// deadline: approved first, then pending, each oldest first. Each status
/// is its own range of the partial index of migration 5 (the repeated
/// `status IN` lets SQLite see that the index covers the query), read in
/// one statement so that both come from one snapshot: a request approved
/// between two reads could otherwise be missed by both.
pub(crate) const OPEN_BY_FINGERPRINT: &str = "
    SELECT body FROM (
        SELECT 0 AS rank, created_at, id, body FROM (
            SELECT created_at, id, body FROM requests
             WHERE fingerprint = ?1 AND principal_kind = ?2 AND principal_name = ?3
               AND status = 'approved' AND status IN ('pending', 'approved')
               AND (deadline IS NULL OR deadline > ?4)
             ORDER BY created_at, id LIMIT ?5)
        UNION ALL
        SELECT 1 AS rank, created_at, id, body FROM (
            SELECT created_at, id, body FROM requests
             WHERE fingerprint = ?1 AND principal_kind = ?2 AND principal_name = ?3
               AND status = 'pending' AND status IN ('pending', 'approved')
               AND (deadline IS NULL OR deadline > ?4)
             ORDER BY created_at, id LIMIT ?5))
     ORDER BY rank, created_at, id LIMIT ?5";

pub(crate) fn open_by_fingerprint(
    conn: &Connection,
    requester: &PrincipalRef,
    fingerprint: &Fingerprint,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Request>, StoreError> {
    let limit = countersign_store::page_limit(limit);
    let mut stmt = conn.prepare_cached(OPEN_BY_FINGERPRINT).map_err(db)?;
    let rows = stmt
        .query_map(
            (
                fingerprint.as_str(),
                requester.kind.as_str(),
                &requester.name,
                now.as_millis(),
                i64::try_from(limit).unwrap_or(100),
            ),
            |r| r.get::<_, String>(0),
        )
        .map_err(db)?;
    rows.map(|r| decode(&r.map_err(db)?)).collect()
}

pub(crate) fn due(conn: &Connection, now: Timestamp) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM requests WHERE deadline IS NOT NULL AND deadline <= ?1
                AND status IN ('pending', 'approved') ORDER BY deadline, id",
        )
        .map_err(db)?;
    let rows = stmt.query_map([now.as_millis()], |r| r.get::<_, String>(0)).map_err(db)?;
    rows.map(|r| r.map_err(db)).collect()
}

/// Every open request, oldest first.
pub(crate) fn open(conn: &Connection) -> Result<Vec<Request>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body FROM requests WHERE status IN ('pending', 'approved') ORDER BY created_at, id")
        .map_err(db)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
    rows.map(|r| decode(&r.map_err(db)?)).collect()
}

fn decode(body: &str) -> Result<Request, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt("request", e))
}
