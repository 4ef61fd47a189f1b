//! Gateway configuration: a TOML file, overridden by `COUNTERSIGN_*`
//! environment variables, overridden by command-line flags.
//!
//! Reading happens in two steps. [`RawConfig`] mirrors the file exactly
//! (`deny_unknown_fields`, so a typo is an error, not a silent default);
//! [`RawConfig::validate`] then turns it into the typed [`Config`] the
//! gateway runs on. The environment is read through [`Environment`] so that
//! tests never touch process-wide variables.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_core::parse_duration;
use serde::Deserialize;

mod mcp;
pub use mcp::{valid_upstream_name, McpConfig, McpUpstream, RawMcp, RawMcpUpstream, UrlUpstream};

mod database;
pub use database::{DatabaseConfig, RawDatabase, DEFAULT_POOL_SIZE};

mod channels;
mod identity;
mod limits;
pub use channels::{
    ChannelsConfig, RawChannels, RawSlack, RawTeams, RawWebhook, SlackConfig, TeamsConfig, TeamsCredential,
    WebhookConfig, WEBHOOK_EVENTS,
};
pub use identity::{
    ConsoleConfig, IdentityConfig, OidcConfig, RawConsole, RawOidc, RawWorkloadIdentity, RawWorkloadRule,
    WorkloadIdentityConfig, WorkloadRule,
};
pub use limits::{IpNet, LimitsConfig};

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

/// The config file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub approval: RawApproval,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub mcp: RawMcp,
    #[serde(default)]
    pub database: RawDatabase,
    pub slack: Option<RawSlack>,
    pub teams: Option<RawTeams>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    #[serde(default)]
    pub channels: RawChannels,
    pub oidc: Option<RawOidc>,
    #[serde(default)]
    pub workload_identity: Vec<RawWorkloadIdentity>,
    #[serde(default)]
    pub console: RawConsole,
}

/// `[server]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address to listen on. Default `127.0.0.1:8470`.
    pub listen: Option<String>,
    /// Where the SQLite store lives. Default `./countersign-data`.
    pub data_dir: Option<PathBuf>,
    /// Directory of `.cedar` files. Default `<data_dir>/policies`.
    pub policies: Option<PathBuf>,
    /// Largest request body accepted, in bytes. Default 1 MiB.
    pub body_limit_bytes: Option<u64>,
    /// Longest `?wait=` a client may ask for. Default and maximum `60s`.
    pub max_wait: Option<String>,
    /// The URL people use to reach this gateway, for links. Default from `listen`.
    pub public_url: Option<String>,
    /// Failed authentications one source may make at once. Default 30.
    pub unauthenticated_burst: Option<u64>,
    /// Failed authentications one source may make per minute. Default 60.
    pub unauthenticated_per_minute: Option<u64>,
    /// Refusals from one source within this window after the first are
    /// counted and recorded as one event. Default `60s`.
    pub refusal_window: Option<String>,
    /// Refusals of one source recorded one by one per window; the rest are
    /// counted. Default 10.
    pub refusals_recorded_per_window: Option<u64>,
    /// How many sources are remembered for limits and counts. Default 10000.
    pub tracked_sources: Option<u64>,
    /// How long a rate-limited call is held before its 429 is sent, so a
    /// flooding connection sends a few calls a second, not thousands.
    /// Default `250ms`; `0s` answers at once.
    pub rate_limited_delay: Option<String>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is
    /// believed. Default none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
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

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` (default) or `json`.
    pub format: Option<String>,
    /// A tracing filter such as `info` or `countersign=debug`. Default `info`.
    pub level: Option<String>,
}

/// Flags that override file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub policies: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    /// `--database URL`: PostgreSQL instead of SQLite.
    pub database: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub policies_dir: PathBuf,
    /// True when the policy directory was not chosen explicitly, so the
    /// starter policy may be written there.
    pub policies_defaulted: bool,
    pub body_limit_bytes: usize,
    pub max_wait: Duration,
    pub public_url: String,
    pub default_timeout: Duration,
    pub default_valid_for: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
    /// The MCP servers served at `/mcp/{name}` (see `countersign-mcp`).
    pub mcp: McpConfig,
    /// Which store: SQLite in `data_dir`, or PostgreSQL.
    pub database: DatabaseConfig,
    /// Slack, Teams and webhooks (see `countersign-channels`).
    pub channels: ChannelsConfig,
    /// The identity provider, workload identity and the web console (see `countersign-identity`).
    pub identity: IdentityConfig,
    /// Rate limits and refusal accounting (see [`crate::refusals`]).
    pub limits: LimitsConfig,
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./countersign-data";
/// The most a client may wait in one call.
pub const MAX_WAIT_CEILING: Duration = Duration::from_secs(60);

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

/// Variables read by client commands, not the gateway's config.
const CLIENT_VARS: [&str; 2] = ["COUNTERSIGN_SERVER", "COUNTERSIGN_TOKEN"];
/// Sections an environment variable can address, longest first so that a
/// section whose name is a prefix of another cannot steal its variables.
const SECTIONS: [&str; 10] =
    ["APPROVAL", "DATABASE", "CHANNELS", "CONSOLE", "SERVER", "MCP", "SLACK", "TEAMS", "OIDC", "LOG"];

impl RawConfig {
    /// Reads the file (if any), applies the environment, then the flags.
    pub fn load(overrides: &Overrides, env: &dyn Environment) -> Result<Self, ConfigError> {
        let mut table = match &overrides.config_file {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let raw: RawConfig = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Parse {
            source_name: source_name(overrides),
            message: e.message().to_owned(),
        })?;
        Ok(raw.with_overrides(overrides))
    }

    /// Parses config text, for `config check` and tests.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| parse_error(source_name, text, &e))
    }

    fn with_overrides(mut self, overrides: &Overrides) -> Self {
        if let Some(listen) = &overrides.listen {
            self.server.listen = Some(listen.clone());
        }
        if let Some(dir) = &overrides.data_dir {
            self.server.data_dir = Some(dir.clone());
        }
        if let Some(dir) = &overrides.policies {
            self.server.policies = Some(dir.clone());
        }
        if let Some(url) = &overrides.database {
            self.database.url = Some(url.clone());
            self.database.url_file = None;
        }
        self
    }

    /// Checks every value and fills in defaults.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let limits = limits::validate(&self.server)?;
        let listen_text = self.server.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            key: "server.listen",
            message: format!("`{listen_text}` is not an address such as `127.0.0.1:8470`"),
        })?;
        let data_dir = self.server.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let policies_defaulted = self.server.policies.is_none();
        let policies_dir = self.server.policies.unwrap_or_else(|| data_dir.join("policies"));
        let body_limit = self.server.body_limit_bytes.unwrap_or(1024 * 1024);
        if !(1024..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(ConfigError::Invalid {
                key: "server.body_limit_bytes",
                message: format!("`{body_limit}` must be between 1024 and 67108864"),
            });
        }
        let max_wait = duration("server.max_wait", self.server.max_wait.as_deref(), MAX_WAIT_CEILING)?;
        if max_wait > MAX_WAIT_CEILING || max_wait.is_zero() {
            return Err(ConfigError::Invalid {
                key: "server.max_wait",
                message: "must be between 1s and 60s".to_owned(),
            });
        }
        let default_timeout =
            duration("approval.default_timeout", self.approval.default_timeout.as_deref(), Duration::from_secs(1800))?;
        let default_valid_for = duration(
            "approval.default_valid_for",
            self.approval.default_valid_for.as_deref(),
            Duration::from_secs(600),
        )?;
        for (key, value) in
            [("approval.default_timeout", default_timeout), ("approval.default_valid_for", default_valid_for)]
        {
            if value < Duration::from_secs(1) {
                return Err(ConfigError::Invalid { key, message: "must be at least 1s".to_owned() });
            }
        }
        let log_format = match self.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "log.format",
                    message: format!("`{other}` is not `text` or `json`"),
                })
            }
        };
        let public_url = self.server.public_url.unwrap_or_else(|| format!("http://{listen}"));
        let channels = channels::validate(self.slack, self.teams, self.webhooks, self.channels)?;
        let public_url = public_url.trim_end_matches('/').to_owned();
        let identity = identity::validate(self.oidc, self.workload_identity, self.console, &public_url)?;
        let database = database::validate(self.database)?;
        Ok(Config {
            listen,
            data_dir,
            policies_dir,
            policies_defaulted,
            body_limit_bytes: usize::try_from(body_limit).unwrap_or(usize::MAX),
            max_wait,
            public_url: public_url.trim_end_matches('/').to_owned(),
            default_timeout,
            default_valid_for,
            log_format,
            log_level: self.log.level.unwrap_or_else(|| "info".to_owned()),
            mcp: mcp::validate(self.mcp)?,
            database,
            channels,
            identity,
            limits,
        })
    }
}

impl Config {
    /// Loads and validates in one step.
    pub fn load(overrides: &Overrides, env: &dyn Environment) -> Result<Self, ConfigError> {
        RawConfig::load(overrides, env)?.validate()
    }

    /// The SQLite database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("countersign.db")
    }
}

fn duration(key: &'static str, text: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match text {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| ConfigError::Invalid { key, message: e.to_string() }),
    }
}

fn source_name(overrides: &Overrides) -> String {
    overrides.config_file.as_deref().map_or_else(|| "environment".to_owned(), |p| p.display().to_string())
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.kind().to_string() })?;
    let name = path.display().to_string();
    // Parse into the typed form first so unknown keys are reported with
    // their line, then keep the table for the environment overlay.
    RawConfig::parse(&name, &text)?;
    toml::from_str(&text).map_err(|e| parse_error(&name, &text, &e))
}

fn parse_error(source_name: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let location = error.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(":{line}:{column}")
    });
    ConfigError::Parse {
        source_name: format!("{source_name}{}", location.unwrap_or_default()),
        message: error.message().to_owned(),
    }
}

/// Folds `COUNTERSIGN_<SECTION>_<KEY>=value` into the table. Values are read
/// as TOML scalars where they parse (numbers, booleans), else as strings.
fn apply_env(table: &mut toml::Table, env: &dyn Environment) -> Result<(), ConfigError> {
    for (var, value) in env.vars_with_prefix("COUNTERSIGN_") {
        if CLIENT_VARS.contains(&var.as_str()) {
            continue;
        }
        let rest = var.trim_start_matches("COUNTERSIGN_");
        let Some(section) = SECTIONS.iter().find(|s| rest.starts_with(&format!("{s}_"))) else {
            let section = rest.split('_').next().unwrap_or(rest).to_lowercase();
            return Err(ConfigError::UnknownEnvSection { var, section });
        };
        let key = rest[section.len() + 1..].to_lowercase();
        let entry = table.entry(section.to_lowercase()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(section_table) = entry else {
            return Err(ConfigError::Invalid {
                key: "config",
                message: format!("`{}` is not a table", section.to_lowercase()),
            });
        };
        section_table.insert(key, scalar(&value));
    }
    Ok(())
}

fn scalar(value: &str) -> toml::Value {
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match value {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(value.to_owned()),
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

/// A secret given inline or in a file (not both); `key` names it in errors.
/// A trailing newline from `echo … > file` is not part of the secret.
pub(crate) fn secret(
    key: &'static str,
    inline: Option<String>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key, message };
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid("give the value or a `_file`, not both".to_owned())),
        (Some(value), None) if value.trim().is_empty() => Err(invalid("is empty".to_owned())),
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read `{}`: {}", path.display(), e.kind())))?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(invalid(format!("`{}` is empty", path.display())));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, None) => Ok(None),
    }
}

/// Loading a whole config from TOML text and environment pairs, for the
/// sections' own tests.
#[cfg(test)]
mod testing {
    use super::{Config, ConfigError, MapEnv, Overrides};

    pub(super) fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, text).unwrap();
        let env = MapEnv(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        Config::load(&Overrides { config_file: Some(file), ..Overrides::default() }, &env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::load(&Overrides::default(), &MapEnv::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8470");
        assert_eq!(c.data_dir, PathBuf::from("./countersign-data"));
        assert_eq!(c.policies_dir, PathBuf::from("./countersign-data/policies"));
        assert_eq!(c.body_limit_bytes, 1024 * 1024);
        assert_eq!(c.default_timeout, Duration::from_secs(1800));
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = RawConfig::parse("c.toml", "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.toml:3:"), "{text}");
        assert!(text.contains("lisen"), "{text}");
        assert!(RawConfig::parse("c.toml", "[sever]\n").is_err());
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1000\"\nbody_limit_bytes = 2048\n").unwrap();
        let env = MapEnv::new([
            ("COUNTERSIGN_SERVER_LISTEN", "127.0.0.1:2000"),
            ("COUNTERSIGN_APPROVAL_DEFAULT_TIMEOUT", "5m"),
            ("COUNTERSIGN_SERVER", "http://ignored"),
            ("COUNTERSIGN_TOKEN", "ignored"),
        ]);
        let mut o = Overrides { config_file: Some(file), ..Overrides::default() };
        let c = Config::load(&o, &env).unwrap();
        assert_eq!(c.listen.port(), 2000);
        assert_eq!(c.body_limit_bytes, 2048);
        assert_eq!(c.default_timeout, Duration::from_secs(300));
        o.listen = Some("127.0.0.1:3000".into());
        assert_eq!(Config::load(&o, &env).unwrap().listen.port(), 3000);
    }

    #[test]
    fn unknown_env_keys_are_errors() {
        let env = MapEnv::new([("COUNTERSIGN_SERVER_LISEN", "x")]);
        let err = Config::load(&Overrides::default(), &env).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let env = MapEnv::new([("COUNTERSIGN_SERVR_LISTEN", "x")]);
        assert!(matches!(Config::load(&Overrides::default(), &env), Err(ConfigError::UnknownEnvSection { .. })));
    }

    #[test]
    fn bad_values_name_their_key() {
        let env = MapEnv::new([("COUNTERSIGN_APPROVAL_DEFAULT_VALID_FOR", "soon")]);
        let err = Config::load(&Overrides::default(), &env).unwrap_err();
        assert!(err.to_string().starts_with("`approval.default_valid_for`"), "{err}");
        let env = MapEnv::new([("COUNTERSIGN_SERVER_MAX_WAIT", "5m")]);
        assert!(Config::load(&Overrides::default(), &env).is_err());
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(format!("{:?}", Secret::new("hunter2".into())), "Secret(***)");
    }
}
