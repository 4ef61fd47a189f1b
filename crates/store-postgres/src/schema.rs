//! Connecting with the settings every session needs, and bringing the
//! schema up to date.
//!
//! Migrations are numbered SQL files compiled into the binary and recorded
//! in `schema_migrations`. Replicas starting at once serialise on a
//! session-level advisory lock, so each migration runs exactly once.

use std::time::Duration;

use countersign_core::Timestamp;
use countersign_store::StoreError;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{col, db};

/// Every migration, in order. Never edit one that has shipped; add a file.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_profiles_expiry.sql")),
    (3, include_str!("../migrations/0003_request_audience.sql")),
    (4, include_str!("../migrations/0004_request_fingerprint.sql")),
    (5, include_str!("../migrations/0005_ascending_indexes.sql")),
];

/// The advisory lock key migrations hold ("countersign" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x636f_756e_7465_7273;

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Session settings for every connection this store opens.
///
/// - `synchronous_commit = on`: a commit returns only once its WAL is
///   flushed, so nobody hears of a decision the log could lose (a server
///   configured with `off` must not weaken that for us).
/// - `statement_timeout`, `lock_timeout`: a hung or overloaded database
///   turns into an error (503, not ready) instead of callers piling up.
/// - `idle_in_transaction_session_timeout`: a replica that froze while
///   holding the chain-head lock cannot stall every other replica for long.
pub(crate) fn session_config(base: &Config, statement_timeout: Duration, connect_timeout: Duration) -> Config {
    let mut config = base.clone();
    let millis = |d: Duration| d.as_millis().max(1);
    let ours = format!(
        "-c synchronous_commit=on -c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        millis(statement_timeout),
        millis(statement_timeout / 2),
        millis(statement_timeout * 2),
    );
    let options = match base.get_options() {
        Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
        Some(_) | None => ours,
    };
    config.options(&options);
    if base.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    if base.get_application_name().is_none() {
        config.application_name("countersign");
    }
    // Notice a peer that vanished (a network cut) in about half a minute
    // rather than the kernel's default two hours.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
    config
}

/// Opens one connection and drives it on its own task.
pub(crate) async fn connect(config: &Config, tls: &MakeRustlsConnect) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(tls.clone()).await.map_err(db)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "a database connection ended");
        }
    });
    Ok(client)
}

/// Applies every pending migration.
pub(crate) async fn migrate(client: &Client) -> Result<(), StoreError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(db)?;
    let result = migrate_locked(client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(db);
    result?;
    unlocked.map(|_| ())
}

async fn migrate_locked(client: &Client) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version     BIGINT PRIMARY KEY,
                 applied_at  BIGINT NOT NULL
             )",
        )
        .await
        .map_err(db)?;
    let applied: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(db)?
        .iter()
        .map(|r| col(r, 0))
        .collect::<Result<_, _>>()?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        // One transaction per migration: DDL is transactional in PostgreSQL,
        // so a failed migration leaves nothing half-applied.
        client.batch_execute("BEGIN").await.map_err(db)?;
        let ran = async {
            client.batch_execute(sql).await?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &Timestamp::now().as_millis()],
                )
                .await
        }
        .await;
        match ran {
            Ok(_) => client.batch_execute("COMMIT").await.map_err(db)?,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(StoreError::Internal(format!("migration {version} failed: {e}")));
            }
        }
        tracing::info!(version, "applied a database migration");
    }
    let newest: Option<i64> =
        col(&client.query_one("SELECT MAX(version) FROM schema_migrations", &[]).await.map_err(db)?, 0)?;
    match newest {
        Some(v) if v > latest_version() => Err(StoreError::Internal(format!(
            "the database has schema version {v}, newer than this build supports ({}); upgrade countersign",
            latest_version()
        ))),
        Some(_) | None => Ok(()),
    }
}
