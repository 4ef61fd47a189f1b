//! Commands that work on the store directly (identities, audit): resolving
//! the configuration and opening the store it names — SQLite in the data
//! directory, or PostgreSQL with `--database postgres://…`.
//!
//! The database arbitrates between this process and running gateways, so
//! these commands work whether or not `countersign serve` is up.

use std::sync::Arc;

use anyhow::Context as _;
use countersign::config::{Config, DatabaseConfig, Overrides, ProcessEnv};
use countersign_store::Store;
use countersign_store_postgres::{describe_url, PostgresOptions, PostgresStore};
use countersign_store_sqlite::SqliteStore;

use crate::cli::StoreArgs;

/// The effective configuration for a store command.
pub fn config(args: &StoreArgs) -> anyhow::Result<Config> {
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        config_file: args.config.clone(),
        database: args.database.clone(),
        ..Overrides::default()
    };
    Ok(Config::load(&overrides, &ProcessEnv)?)
}

/// Whether opening may create a fresh data directory and database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Identity creation on a fresh install: make the directory.
    Create,
    /// Reads and revocations: a missing store is a mistake (wrong path).
    Existing,
}

/// Opens the store the configuration points at.
pub async fn open_store(config: &Config, mode: Open) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = config.database.postgres_url() {
        // The schema is created on first use; `Open::Existing` has no
        // "wrong path" to guard against here.
        return open_postgres(url, &config.database).await;
    }
    let db = config.database_path();
    match mode {
        Open::Create => std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory `{}`", config.data_dir.display()))?,
        Open::Existing => {
            if !db.exists() {
                anyhow::bail!(
                    "no countersign store at `{}`; pass --data-dir, or start `countersign serve` first",
                    db.display()
                );
            }
        }
    }
    let store = SqliteStore::open(&db).with_context(|| format!("cannot open the store `{}`", db.display()))?;
    Ok(Arc::new(store))
}

/// Connects to PostgreSQL. Errors name the host and database, never the
/// URL (it may carry a password).
pub async fn open_postgres(url: &str, database: &DatabaseConfig) -> anyhow::Result<Arc<dyn Store>> {
    let options = PostgresOptions {
        pool_size: database.pool_size,
        ca_file: database.ca_file.clone(),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(url, options)
        .await
        .with_context(|| format!("cannot open the PostgreSQL store at {}", describe_url(url)))?;
    Ok(Arc::new(store))
}

/// The audit actor for changes made from this command line.
pub fn cli_actor() -> String {
    let user = std::env::var("USER").ok().filter(|u| !u.trim().is_empty());
    format!("cli:{}", user.as_deref().unwrap_or("local"))
}
