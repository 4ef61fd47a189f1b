//! `config check`: load the configuration exactly as `serve` would and
//! print the effective values, or the first error with its position.

use std::path::PathBuf;

use countersign::config::{Config, LogFormat, Overrides, ProcessEnv};
use countersign_core::clock::format_duration;
use countersign_store_postgres::redact_url;

use crate::cli::ConfigCommand;
use crate::exit::Exit;
use crate::output::Output;

pub fn run(command: ConfigCommand, output: Output) -> anyhow::Result<Exit> {
    let ConfigCommand::Check { config } = command;
    let source = config.as_ref().map_or_else(|| "defaults and environment".to_owned(), |p| p.display().to_string());
    let overrides = Overrides { config_file: config, ..Overrides::default() };
    let config = Config::load(&overrides, &ProcessEnv)?;
    if output.is_json() {
        println!("{}", effective_json(&config));
    } else {
        println!("ok: {source}");
        print!("{}", effective_toml(&config));
    }
    Ok(Exit::OK)
}

fn path(p: &std::path::Path) -> String {
    PathBuf::from(p).display().to_string()
}

fn log_format(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    }
}

/// The effective configuration in the file's own syntax. Secrets are
/// masked (the database URL's credentials).
fn effective_toml(c: &Config) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "[server]\nlisten = {}\ndata_dir = {}\npolicies = {}\nbody_limit_bytes = {}\nmax_wait = {}\npublic_url = {}\n\n\
         [approval]\ndefault_timeout = {}\ndefault_valid_for = {}\n\n[log]\nformat = {}\nlevel = {}\n\n\
         [database]\n{}pool_size = {}\n",
        q(&c.listen.to_string()),
        q(&path(&c.data_dir)),
        q(&path(&c.policies_dir)),
        c.body_limit_bytes,
        q(&format_duration(c.max_wait)),
        q(&c.public_url),
        q(&format_duration(c.default_timeout)),
        q(&format_duration(c.default_valid_for)),
        q(log_format(c.log_format)),
        q(&c.log_level),
        // The URL's credentials stay hidden; unset means SQLite in data_dir.
        c.database.postgres_url().map_or_else(String::new, |u| format!("url = {}\n", q(&redact_url(u)))),
        c.database.pool_size,
    )
}

fn effective_json(c: &Config) -> serde_json::Value {
    serde_json::json!({
        "ok": true,
        "server": {
            "listen": c.listen.to_string(),
            "data_dir": path(&c.data_dir),
            "policies": path(&c.policies_dir),
            "body_limit_bytes": c.body_limit_bytes,
            "max_wait": format_duration(c.max_wait),
            "public_url": c.public_url,
        },
        "approval": {
            "default_timeout": format_duration(c.default_timeout),
            "default_valid_for": format_duration(c.default_valid_for),
        },
        "log": {"format": log_format(c.log_format), "level": c.log_level},
        "database": {
            "url": c.database.postgres_url().map(redact_url),
            "pool_size": c.database.pool_size,
        },
    })
}
