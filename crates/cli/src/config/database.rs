//! The `[database]` section: which store the gateway (and every command
//! that opens the store) uses. No URL means the embedded SQLite store in
//! `server.data_dir`; a `postgres://` URL means the shared PostgreSQL store
//! that several gateway replicas can run on.
//!
//! The URL usually carries a password, so it is held as a [`Secret`] (never
//! shown by `Debug`), may come from a file (`url_file`, for a mounted
//! secret) or from `COUNTERSIGN_DATABASE_URL`, and no error message repeats it.

use std::path::PathBuf;

use serde::Deserialize;

use countersign_gateway::config::{read_text_file, ConfigError, Secret};

/// `[database]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// `postgres://user:password@host:5432/dbname`. Default: none (SQLite).
    pub url: Option<String>,
    /// A file holding the URL instead (a mounted secret).
    pub url_file: Option<PathBuf>,
    /// Pooled read connections per process (PostgreSQL). Default 8.
    pub pool_size: Option<i64>,
    /// CA certificates (PEM) to trust for `sslmode=require`, besides the
    /// public web PKI roots.
    pub ca_file: Option<PathBuf>,
}

/// The validated `[database]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// The PostgreSQL URL; `None` selects SQLite in the data directory.
    pub url: Option<Secret>,
    pub pool_size: usize,
    pub ca_file: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: None, pool_size: DEFAULT_POOL_SIZE, ca_file: None }
    }
}

/// Pooled read connections when the config does not say.
pub const DEFAULT_POOL_SIZE: usize = 8;

impl DatabaseConfig {
    /// The PostgreSQL URL, if PostgreSQL is selected.
    pub fn postgres_url(&self) -> Option<&str> {
        self.url.as_ref().map(Secret::expose)
    }
}

pub fn validate(raw: RawDatabase) -> Result<DatabaseConfig, ConfigError> {
    let url = match (raw.url, raw.url_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                key: "database.url",
                message: "give `url` or `url_file`, not both".to_owned(),
            });
        }
        (Some(url), None) => Some(url),
        (None, Some(path)) => {
            let text = read_text_file(&path)
                .map_err(|e| ConfigError::Invalid { key: "database.url_file", message: e.to_string() })?;
            Some(text.trim().to_owned())
        }
        (None, None) => None,
    };
    let url = url.filter(|u| !u.trim().is_empty());
    if let Some(url) = &url {
        // Never echo the value: it may carry a password.
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !postgres || url.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                key: "database.url",
                message: "must be a `postgres://` URL (leave it unset for the embedded SQLite store)".to_owned(),
            });
        }
    }
    let pool_size = match raw.pool_size {
        None => DEFAULT_POOL_SIZE,
        Some(n) if (1..=1000).contains(&n) => usize::try_from(n).unwrap_or(DEFAULT_POOL_SIZE),
        Some(n) => {
            return Err(ConfigError::Invalid {
                key: "database.pool_size",
                message: format!("`{n}` is not between 1 and 1000"),
            });
        }
    };
    if let Some(path) = &raw.ca_file {
        std::fs::metadata(path).map_err(|e| ConfigError::Invalid {
            key: "database.ca_file",
            message: format!("cannot read `{}`: {}", path.display(), e.kind()),
        })?;
    }
    Ok(DatabaseConfig { url: url.map(Secret::new), pool_size, ca_file: raw.ca_file })
}
