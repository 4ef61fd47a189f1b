//! Opening connections with the settings every one of them needs, and
//! bringing the schema up to date.
//!
//! Migrations are numbered SQL files compiled into the binary and recorded
//! in `schema_migrations`, so the server and the CLI (which may open the same
//! file at once) agree on which ones ran.

use std::path::Path;
use std::time::Duration;

use countersign_core::Timestamp;
use countersign_store::StoreError;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::db;

/// How long a connection waits for another process's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: enough for every query shape
/// the store issues (including each `list_requests` filter combination).
const STATEMENT_CACHE: usize = 64;

/// Every migration, in order. Never edit one that has shipped; add a file.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_kv.sql")),
    (3, include_str!("../migrations/0003_profiles_expiry.sql")),
    (4, include_str!("../migrations/0004_request_audience.sql")),
    (5, include_str!("../migrations/0005_request_fingerprint.sql")),
    (6, include_str!("../migrations/0006_ascending_indexes.sql")),
];

/// Opens the read-write connection, in WAL mode with full fsync, and
/// applies pending migrations.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    configure(&conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "the database could not switch to WAL mode (it is in `{mode}` mode)"
        )));
    }
    // FULL: in WAL mode this fsyncs the log on every commit, which is what
    // lets a caller be told "recorded" only once the event is on disk.
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;").map_err(db)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens the connection that copies the log into the database file (see
/// [`crate::checkpointer`]). The writer must have opened the file first.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    configure(&conn)?;
    conn.execute_batch("PRAGMA synchronous=FULL;").map_err(db)?;
    Ok(conn)
}

/// Opens a read-only connection. The writer must have opened the file first
/// (it creates the database and switches it to WAL).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    configure(&conn)?;
    Ok(conn)
}

/// What every connection gets. The query planner is held stable (QPSG):
/// the bundled SQLite is built with STAT4, under which a statement whose
/// plan might depend on a bound value is parsed and planned again every
/// time the value changes, so the cached identity lookup of every
/// authenticated call was re-parsed on every call (an eighth of a routine
/// decision's CPU). Our queries are written for their indexes; one plan
/// per statement is what we want.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(db)?;
    // A savepoint's undo pages (every job in a batch has one) stay in
    // memory: on disk they were a temporary file created, written and
    // deleted on every commit.
    conn.execute_batch("PRAGMA temp_store=MEMORY;").map_err(db)?;
    Ok(())
}

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER PRIMARY KEY NOT NULL,
             applied_at  INTEGER NOT NULL
         ) STRICT;",
    )
    .map_err(db)?;
    let applied: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(db)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        // IMMEDIATE takes the write lock before checking, so two processes
        // opening a fresh file at once cannot both apply the same migration.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let applied = apply(conn, *version, sql);
        let end = match applied {
            Ok(()) => conn.execute_batch("COMMIT"),
            Err(_) => conn.execute_batch("ROLLBACK"),
        };
        applied?;
        end.map_err(db)?;
    }
    let newest: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))
        .optional()
        .map_err(db)?
        .flatten();
    match newest {
        Some(v) if v > latest_version() => Err(StoreError::Internal(format!(
            "the database has schema version {v}, newer than this build supports ({}); upgrade countersign",
            latest_version()
        ))),
        Some(_) | None => Ok(()),
    }
}

fn apply(conn: &Connection, version: i64, sql: &str) -> Result<(), StoreError> {
    let done: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)", [version], |r| r.get(0))
        .map_err(db)?;
    if done {
        return Ok(());
    }
    conn.execute_batch(sql).map_err(db)?;
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
        (version, Timestamp::now().as_millis()),
    )
    .map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_new_values() {
        // With STAT4 compiled in, SQLite re-prepares a statement whenever a
        // bound value might change its plan, unless the planner is held
        // stable; the per-call identity lookup was re-parsed on every call.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(open_writer(&path).unwrap());
        for conn in [open_writer(&path).unwrap(), open_reader(&path).unwrap()] {
            for n in 0..5 {
                crate::identities::principal_by_token_hash(&conn, &format!("hash-{n}")).unwrap();
            }
            let stmt = conn.prepare_cached(crate::identities::PRINCIPAL_BY_TOKEN_HASH).unwrap();
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
        }
    }

    /// Every list a filter can ask for is read from its index, in the
    /// list's order (newest first) where one index serves the whole
    /// filter: never a scan, whichever way the index is declared.
    #[test]
    fn lists_are_read_in_index_order() {
        use countersign_core::{PrincipalRef, Status};
        use countersign_store::{Audience, Cursor, RequestFilter};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(open_writer(&path).unwrap());
        let reader = open_reader(&path).unwrap();
        let cursor = Some(Cursor { created_at: Timestamp(5), id: "r".to_owned() });
        let audience = Some(Audience { principal: Some(PrincipalRef::agent("bot")), groups: vec!["sre".to_owned()] });
        let filters = [
            (RequestFilter::default(), "requests_created"),
            (RequestFilter { after: cursor.clone(), ..Default::default() }, "requests_created"),
            (
                RequestFilter { status: Some(Status::Pending), after: cursor.clone(), ..Default::default() },
                "requests_status",
            ),
            (RequestFilter { kind: Some("k".to_owned()), ..Default::default() }, "requests_kind"),
            (RequestFilter { resource: Some("r".to_owned()), ..Default::default() }, "requests_resource"),
            (RequestFilter { principal: Some(PrincipalRef::agent("bot")), ..Default::default() }, "requests_principal"),
            (
                RequestFilter { visible_to: audience.clone(), after: cursor, ..Default::default() },
                "request_audience_created",
            ),
            (
                RequestFilter { visible_to: audience, status: Some(Status::Pending), ..Default::default() },
                "request_audience_status",
            ),
        ];
        for (filter, index) in filters {
            let (sql, params) = crate::requests::list_query(&filter);
            let plan: Vec<String> = reader
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(plan.iter().any(|step| step.contains(index)), "{filter:?} should read {index}: {plan:?}");
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN") || step.contains("USING")),
                "{filter:?}: {plan:?}"
            );
            // A list for one audience may gather the ids it may see from
            // each of its keys' ranges and order them; every other list
            // stops after a page.
            if filter.visible_to.is_none() {
                assert!(plan.iter().all(|step| !step.contains("TEMP B-TREE")), "{filter:?}: {plan:?}");
            }
        }
    }

    #[test]
    fn migrations_apply_once_and_record_their_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(open_writer(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = open_writer(&path).unwrap();
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)", []).unwrap();
        drop(conn);
        assert!(matches!(open_writer(&path), Err(StoreError::Internal(_))));
    }

    #[test]
    fn migration_3_moves_login_profiles_into_users_and_bounds_old_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL) STRICT;")
            .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 2) {
            apply(&conn, *version, sql).unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO users (name, email, email_key, groups, created_at) VALUES
                   ('dana@example.com', 'dana@example.com', 'dana@example.com', '["dev"]', 1),
                   ('erin', 'erin@example.com', 'erin@example.com', '["ops"]', 1);
               INSERT INTO kv (namespace, key, value, updated_at) VALUES
                   ('identity.profiles', 'dana@example.com',
                    '{"subject":"s","email":"dana@example.com","display_name":"Dana","groups":["sre","admin"],"last_login":"2026-01-01T00:00:00Z"}', 1),
                   ('console.sessions', 'abc', '{}', 1),
                   ('console.logins', 'def', '{}', 1),
                   ('countersign.policy', 'hash', 'sha256:not-json', 1);"#,
        )
        .unwrap();
        migrate(&conn).unwrap();
        let row = |name: &str| -> (String, Option<String>) {
            conn.query_row("SELECT groups, display_name FROM users WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        };
        assert_eq!(row("dana@example.com"), (r#"["sre","admin"]"#.to_owned(), Some("Dana".to_owned())));
        assert_eq!(row("erin"), (r#"["ops"]"#.to_owned(), None), "no profile, no change");
        let left: i64 =
            conn.query_row("SELECT COUNT(*) FROM kv WHERE namespace = 'identity.profiles'", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0, "the profiles are gone from the key-value area");
        let expiries: Vec<(String, Option<i64>)> = conn
            .prepare("SELECT namespace, expires_at FROM kv ORDER BY namespace")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let month = 30 * 86_400_000;
        let now = Timestamp::now().as_millis();
        for (namespace, expires_at) in expiries {
            match namespace.as_str() {
                "console.sessions" | "console.logins" => {
                    let at = expires_at.unwrap();
                    assert!(at > now + month - 60_000 && at <= now + month, "{namespace}: {at}");
                }
                _ => assert_eq!(expires_at, None, "{namespace} never expires"),
            }
        }
    }

    #[test]
    fn migration_4_indexes_who_may_see_the_requests_already_stored() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL) STRICT;")
            .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 3) {
            apply(&conn, *version, sql).unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, body) VALUES
                   ('r1', 'pending', 'agent', 'bot', 'k', 'r', 5,
                    '{"requirements":[{"groups":["dba","sre"]},{"groups":["dba",7]}]}'),
                   ('r2', 'allowed', 'user', 'alice', 'k', 'r', 6, '{"requirements":[]}'),
                   ('r3', 'pending', 'agent', 'bot', 'k', 'r', 7, 'not json'),
                   ('r4', 'denied', 'agent', 'bot', 'k', 'r', 8, '{"requirements":[{"groups":"sre"},3]}');"#,
        )
        .unwrap();
        migrate(&conn).unwrap();
        let rows: Vec<(String, String, String, i64)> = conn
            .prepare(
                "SELECT request_id, audience, status, created_at FROM request_audience ORDER BY request_id, audience",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |id: &str, audience: &str, status: &str, at: i64| (id.into(), audience.into(), status.into(), at);
        assert_eq!(
            rows,
            vec![
                row("r1", "g:dba", "pending", 5),
                row("r1", "g:sre", "pending", 5),
                row("r1", "p:agent:bot", "pending", 5),
                row("r2", "p:user:alice", "allowed", 6),
                row("r3", "p:agent:bot", "pending", 7),
                row("r4", "p:agent:bot", "denied", 8),
            ]
        );
    }

    #[test]
    fn migration_5_copies_the_fingerprints_already_stored_and_the_lookup_reads_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL) STRICT;")
            .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 4) {
            apply(&conn, *version, sql).unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO requests (id, status, principal_kind, principal_name, kind, resource, created_at, body) VALUES
                   ('r1', 'pending', 'agent', 'bot', 'k', 'r', 5, '{"fingerprint":"sha256:aa"}'),
                   ('r2', 'released', 'agent', 'bot', 'k', 'r', 6, '{"fingerprint":"sha256:aa"}'),
                   ('r3', 'pending', 'agent', 'bot', 'k', 'r', 7, 'not json'),
                   ('r4', 'pending', 'agent', 'bot', 'k', 'r', 8, '{"fingerprint":7}');"#,
        )
        .unwrap();
        migrate(&conn).unwrap();
        let rows: Vec<(String, Option<String>)> = conn
            .prepare("SELECT id, fingerprint FROM requests ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let aa = Some("sha256:aa".to_owned());
        assert_eq!(rows, vec![("r1".into(), aa.clone()), ("r2".into(), aa), ("r3".into(), None), ("r4".into(), None)]);

        // Both halves of the lookup are ranges of the partial index, never
        // a scan of the requester's rows.
        let reader = open_reader(&path).unwrap();
        let plan: Vec<String> = reader
            .prepare(&format!("EXPLAIN QUERY PLAN {}", crate::requests::OPEN_BY_FINGERPRINT))
            .unwrap()
            .query_map(("sha256:aa", "agent", "bot", 0, 1), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let searches: Vec<&String> = plan.iter().filter(|step| step.contains("requests")).collect();
        assert_eq!(searches.len(), 2, "{plan:?}");
        for step in searches {
            assert!(step.starts_with("SEARCH") && step.contains("requests_open_fingerprint"), "{plan:?}");
        }
        // Each range is read in index order; only the two bounded halves
        // are merged.
        assert_eq!(plan.iter().filter(|step| step.contains("TEMP B-TREE")).count(), 1, "{plan:?}");
        let fingerprint = countersign_core::Fingerprint::from_stored("sha256:aa".to_owned());
        let bot = countersign_core::PrincipalRef::agent("bot");
        let found = crate::requests::open_by_fingerprint(&reader, &bot, &fingerprint, Timestamp(0), 0);
        // r1's body is no request: found through the index, then refused
        // as corrupt rather than skipped.
        assert!(matches!(found, Err(StoreError::Corrupt(_))), "{found:?}");
    }
}
