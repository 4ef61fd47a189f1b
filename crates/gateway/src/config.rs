//! The configuration machinery every section shares, and the gateway's
//! own part of the configuration.
//!
//! Each crate owns its sections of the config file: the raw form that
//! mirrors the file (`deny_unknown_fields`, so a typo is an error, not a
//! silent default) and a `validate` that turns it into the typed form the
//! crate runs on. The `countersign` binary composes them into the whole
//! file (its `config` module), reads `COUNTERSIGN_<SECTION>_<KEY>`
//! variables through [`Environment`] (so tests never touch process-wide
//! variables), and hands each crate its part.
//!
//! Here: [`ConfigError`], [`Secret`] (masked in `Debug`), [`secret`],
//! [`read_file`] (bounded, for `*_file` keys) and [`duration`] for every
//! section; the `[approval]` and [`audit`] sections; the refusal
//! [`limits`] (keys of `[server]`); and [`GatewayConfig`], what
//! [`crate::AppState`] runs on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_core::parse_duration;
use serde::Deserialize;

pub mod audit;
pub mod limits;
pub use audit::{AuditConfig, KeySource, RawAudit};
pub use limits::{IpNet, LimitsConfig, RawLimits};

/// Where `COUNTERSIGN_<SECTION>_<KEY>` variables come from.
pub trait Environment {
    /// Every variable whose name starts with `prefix`.
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        std::env::vars().filter(|(k, _)| k.starts_with(prefix)).collect()
    }
}

/// A fixed set of variables, for tests.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub BTreeMap<String, String>);

impl MapEnv {
    pub fn new<const N: usize>(pairs: [(&str, &str); N]) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }
}

impl Environment for MapEnv {
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.0.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// `[approval]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    /// How long a request may wait when its policy sets no `@timeout`. Default `30m`.
    pub default_timeout: Option<String>,
    /// How long an approval stays usable when its policy sets no `@valid_for`. Default `10m`.
    pub default_valid_for: Option<String>,
}

/// What the gateway's operations run on, taken from the validated
/// configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The directory of `.cedar` files.
    pub policies_dir: PathBuf,
    /// True when the policy directory was not chosen explicitly, so the
    /// starter policy may be written there.
    pub policies_defaulted: bool,
    /// How long a request may wait when its policy sets no `@timeout`.
    pub default_timeout: Duration,
    /// How long an approval stays usable when its policy sets no `@valid_for`.
    pub default_valid_for: Duration,
    /// The URL people use to reach this gateway, for links (no trailing `/`).
    pub public_url: String,
    /// Rate limits and refusal accounting (see [`crate::refusals`]).
    pub limits: LimitsConfig,
    /// How recent an identity-provider login must be to approve a
    /// `@step_up` requirement; `None` without a provider.
    pub step_up_max_age: Option<Duration>,
    /// Resources whose SQL dialect the gateway knows, because it fronts
    /// them (`[[postgres]]`): their SQL is judged in that dialect alone.
    pub sql_dialects: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    /// HTTP APIs the gateway fronts (`[[http]]`) with an OpenAPI
    /// document: their requests are matched against its operations.
    pub http_apis: countersign_policy::HttpApis,
}

/// The default `approval.default_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// The default `approval.default_valid_for`.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(600);

impl RawApproval {
    /// `(default_timeout, default_valid_for)`, checked.
    pub fn validate(&self) -> Result<(Duration, Duration), ConfigError> {
        let default_timeout = duration("approval.default_timeout", self.default_timeout.as_deref(), DEFAULT_TIMEOUT)?;
        let default_valid_for =
            duration("approval.default_valid_for", self.default_valid_for.as_deref(), DEFAULT_VALID_FOR)?;
        for (key, value) in
            [("approval.default_timeout", default_timeout), ("approval.default_valid_for", default_valid_for)]
        {
            if value < Duration::from_secs(1) {
                return Err(ConfigError::Invalid { key, message: "must be at least 1s".to_owned() });
            }
        }
        Ok((default_timeout, default_valid_for))
    }
}

/// A configuration that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {reason}")]
    Read { path: String, reason: String },
    #[error("{source_name}: {message}")]
    Parse { source_name: String, message: String },
    #[error("environment variable `{var}` does not name a config key: no section `{section}`")]
    UnknownEnvSection { var: String, section: String },
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// A duration under `key`, or `default` when it is not given.
pub fn duration(key: &'static str, text: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match text {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| ConfigError::Invalid { key, message: e.to_string() }),
    }
}

/// A secret value: shown as `***` in `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The most a file named by a `*_file` key (a secret, a certificate, a
/// private key) may hold: far more than any of them needs, so that a wrong
/// path (a log, a device) is an error rather than memory filled at startup.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why a file named by a `*_file` key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read `{path}`: {kind}")]
    Unreadable { path: String, kind: std::io::ErrorKind },
    #[error("`{path}` is larger than 1 MiB; it cannot be a secret, certificate or key")]
    TooLarge { path: String },
}

/// The bytes of the file at `path`, at most [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| FileError::Unreadable { path: path.display().to_string(), kind: e.kind() };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    // One byte over the limit tells a file at the limit from a larger one.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge { path: path.display().to_string() });
    }
    Ok(bytes)
}

/// The text of the file at `path`, at most [`MAX_FILE_BYTES`].
pub fn read_text_file(path: &Path) -> Result<String, FileError> {
    String::from_utf8(read_file(path)?)
        .map_err(|_| FileError::Unreadable { path: path.display().to_string(), kind: std::io::ErrorKind::InvalidData })
}

/// A secret given inline or in a file (not both); `key` names it in errors.
/// A trailing newline from `echo … > file` is not part of the secret.
pub fn secret(key: &'static str, inline: Option<String>, file: Option<&Path>) -> Result<Option<Secret>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key, message };
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid("give the value or a `_file`, not both".to_owned())),
        (Some(value), None) if value.trim().is_empty() => Err(invalid("is empty".to_owned())),
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(path)) => {
            let text = read_text_file(path).map_err(|e| invalid(e.to_string()))?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(invalid(format!("`{}` is empty", path.display())));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        assert_eq!(format!("{:?}", Secret::new("hunter2".into())), "Secret(***)");
    }

    #[test]
    fn secret_files_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let limit = usize::try_from(MAX_FILE_BYTES).unwrap();
        std::fs::write(&path, format!("{}\n", "s".repeat(limit - 1))).unwrap();
        let read = secret("slack.bot_token", None, Some(&path)).unwrap().unwrap();
        assert_eq!(read.expose().len(), limit - 1, "a file at the limit is read");

        std::fs::write(&path, "s".repeat(limit + 1)).unwrap();
        let error = secret("slack.bot_token", None, Some(&path)).unwrap_err().to_string();
        assert!(error.starts_with("`slack.bot_token`: "), "{error}");
        assert!(error.contains(&format!("`{}` is larger than 1 MiB", path.display())), "{error}");

        let missing = dir.path().join("missing");
        let error = secret("slack.bot_token", None, Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("cannot read") && error.contains("not found"), "{error}");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let error = secret("slack.bot_token", None, Some(&path)).unwrap_err().to_string();
        assert!(error.contains("invalid data"), "{error}");
    }
}
