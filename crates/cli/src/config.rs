//! The whole configuration of `countersign serve`: a TOML file,
//! overridden by `COUNTERSIGN_*` environment variables, overridden by
//! command-line flags, composed of the sections each crate owns.
//!
//! | section | owner |
//! |---|---|
//! | `[server]` | `countersign-server` ([`countersign_server::config`]) |
//! | `[approval]` | `countersign-gateway` ([`countersign_gateway::config`]) |
//! | `[slack]`, `[teams]`, `[[webhooks]]`, `[channels]` | `countersign-channels` ([`countersign_channels::config`]) |
//! | `[oidc]`, `[[workload_identity]]`, `[console]` | `countersign-identity` ([`countersign_identity::config`]) |
//! | `[mcp]` | `countersign-mcp` ([`countersign_mcp::config`]) |
//! | `[[siem]]` | `countersign-siem` ([`countersign_siem::config`]) |
//! | `[[postgres]]` | `countersign-databases` ([`countersign_databases::postgres::config`]) |
//! | `[audit]` | `countersign-gateway` ([`countersign_gateway::config::audit`]) |
//! | `[[http]]` | `countersign-http` ([`countersign_http::config`]) |
//! | `[[kubernetes]]` | `countersign-k8s` ([`countersign_k8s::config`]) |
//! | `[database]`, `[log]` | this binary ([`database`], [`RawLog`]) |
//!
//! Reading happens in two steps. [`RawConfig`] mirrors the file exactly
//! (`deny_unknown_fields`, so a typo is an error, not a silent default);
//! [`RawConfig::validate`] then has each section validated by its owner
//! and gathers the typed [`Config`]; each crate is then handed its part
//! ([`Config::gateway`], [`Config::server`], `channels`, `identity`, `mcp`).
//! The environment is read through [`Environment`] so that tests never
//! touch process-wide variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use countersign_channels::config::{
    ChannelsConfig, RawChannels, RawSlack, RawTeams, RawWebhook, SlackConfig, TeamsConfig, TeamsCredential,
    WebhookConfig, WEBHOOK_EVENTS,
};
pub use countersign_databases::postgres::config::{PostgresConfig, RawPostgres};
pub use countersign_gateway::config::{
    AuditConfig, ConfigError, Environment, GatewayConfig, IpNet, KeySource, LimitsConfig, MapEnv, ProcessEnv,
    RawApproval, RawAudit, Secret,
};
pub use countersign_http::config::{HttpConfig, RawHttp};
pub use countersign_identity::config::{
    ConsoleConfig, IdentityConfig, OidcConfig, RawConsole, RawOidc, RawWorkloadIdentity, RawWorkloadRule,
    WorkloadIdentityConfig, WorkloadRule,
};
pub use countersign_k8s::config::{KubernetesConfig, RawKubernetes};
pub use countersign_mcp::config::{valid_upstream_name, McpConfig, McpUpstream, RawMcp, RawMcpUpstream, UrlUpstream};
pub use countersign_server::config::{RawServer, ServerConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN, MAX_WAIT_CEILING};
pub use countersign_siem::config::{RawSiem, SiemConfig};
use serde::Deserialize;

pub mod database;
pub use database::{DatabaseConfig, RawDatabase, DEFAULT_POOL_SIZE};

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
    pub audit: RawAudit,
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
    /// `[[siem]]`: where the audit log is streamed (see `countersign-siem`).
    #[serde(default)]
    pub siem: Vec<RawSiem>,
    pub oidc: Option<RawOidc>,
    #[serde(default)]
    pub workload_identity: Vec<RawWorkloadIdentity>,
    #[serde(default)]
    pub console: RawConsole,
    /// `[[postgres]]`: databases reached through the gateway.
    #[serde(default)]
    pub postgres: Vec<RawPostgres>,
    /// `[[http]]`: HTTP APIs reached through the gateway.
    #[serde(default)]
    pub http: Vec<RawHttp>,
    /// `[[kubernetes]]`: clusters reached through the gateway.
    #[serde(default)]
    pub kubernetes: Vec<RawKubernetes>,
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

/// The validated configuration, every section's part.
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
    /// The SIEM sinks (see `countersign-siem`).
    pub siem: Vec<SiemConfig>,
    /// The identity provider, workload identity and the web console (see `countersign-identity`).
    pub identity: IdentityConfig,
    /// Rate limits and refusal accounting (see `countersign_gateway::refusals`).
    pub limits: LimitsConfig,
    /// The PostgreSQL endpoints (see `countersign-databases`).
    pub postgres: Vec<PostgresConfig>,
    /// Signed checkpoints of the audit log (see `countersign_gateway::checkpoints`).
    pub audit: AuditConfig,
    /// The HTTP APIs served at `/http/{name}` (see `countersign-http`).
    pub http: Vec<HttpConfig>,
    /// The clusters served at `/k8s/{name}` (see `countersign-k8s`).
    pub kubernetes: Vec<KubernetesConfig>,
}

/// Variables read by client commands, not the gateway's config.
const CLIENT_VARS: [&str; 2] = ["COUNTERSIGN_SERVER", "COUNTERSIGN_TOKEN"];
/// Sections an environment variable can address, longest first so that a
/// section whose name is a prefix of another cannot steal its variables.
const SECTIONS: [&str; 11] =
    ["APPROVAL", "DATABASE", "CHANNELS", "CONSOLE", "SERVER", "AUDIT", "MCP", "SLACK", "TEAMS", "OIDC", "LOG"];

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

    /// Has each section checked by the crate that owns it, and gathers
    /// the results.
    /// `env` is read only for values a section names by variable
    /// (`password_env`).
    pub fn validate(self, env: &dyn Environment) -> Result<Config, ConfigError> {
        let server = self.server.validate()?;
        let (default_timeout, default_valid_for) = self.approval.validate()?;
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
        let channels = countersign_channels::config::validate(self.slack, self.teams, self.webhooks, self.channels)?;
        let siem = countersign_siem::config::validate(self.siem)?;
        let identity = countersign_identity::config::validate(
            self.oidc,
            self.workload_identity,
            self.console,
            &server.public_url,
        )?;
        let database = database::validate(self.database)?;
        let audit = self.audit.validate(&server.public_url)?;
        Ok(Config {
            listen: server.http.listen,
            data_dir: server.data_dir,
            policies_dir: server.policies_dir,
            policies_defaulted: server.policies_defaulted,
            body_limit_bytes: server.http.body_limit_bytes,
            max_wait: server.http.max_wait,
            public_url: server.public_url,
            default_timeout,
            default_valid_for,
            log_format,
            log_level: self.log.level.unwrap_or_else(|| "info".to_owned()),
            mcp: countersign_mcp::config::validate(self.mcp)?,
            database,
            channels,
            siem,
            identity,
            limits: server.limits,
            postgres: countersign_databases::postgres::config::validate(self.postgres, env)?,
            audit,
            http: countersign_http::config::validate(self.http, env)?,
            kubernetes: countersign_k8s::config::validate(self.kubernetes, env)?,
        })
    }
}

impl Config {
    /// Loads and validates in one step.
    pub fn load(overrides: &Overrides, env: &dyn Environment) -> Result<Self, ConfigError> {
        RawConfig::load(overrides, env)?.validate(env)
    }

    /// The SQLite database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("countersign.db")
    }

    /// What the gateway's operations run on.
    pub fn gateway(&self) -> GatewayConfig {
        GatewayConfig {
            policies_dir: self.policies_dir.clone(),
            policies_defaulted: self.policies_defaulted,
            default_timeout: self.default_timeout,
            default_valid_for: self.default_valid_for,
            public_url: self.public_url.clone(),
            limits: self.limits.clone(),
            step_up_max_age: self.identity.step_up_max_age(),
            sql_dialects: std::sync::Arc::new(
                self.postgres.iter().map(|p| (p.resource.clone(), "postgres".to_owned())).collect(),
            ),
            http_apis: std::sync::Arc::new(
                self.http.iter().filter_map(|h| Some((h.resource.clone(), h.api.clone()?))).collect(),
            ),
        }
    }

    /// What the HTTP API runs on.
    pub fn server(&self) -> ServerConfig {
        ServerConfig { listen: self.listen, body_limit_bytes: self.body_limit_bytes, max_wait: self.max_wait }
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

/// Each section's tests, through the whole file as `serve` reads it.
#[cfg(test)]
mod section_tests {
    mod audit;
    mod channels;
    mod database;
    mod identity;
    mod limits;
    mod mcp;
    mod siem;
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
}
