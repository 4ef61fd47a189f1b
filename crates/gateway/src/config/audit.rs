//! `[audit]`: the signed checkpoints of the audit log: the log's origin
//! (the name in every checkpoint and the key's name), the Ed25519 signing
//! key (inline or `COUNTERSIGN_AUDIT_KEY`, or `key_file`; generated into
//! the data directory when neither is given, SQLite only), and how often
//! the signer looks for new events.

use std::path::PathBuf;
use std::time::Duration;

use countersign_audit::note::{valid_key_name, NoteSigner};
use serde::Deserialize;

use super::{duration, ConfigError, Secret};

/// The default `audit.checkpoint_interval`: at least one checkpoint a
/// second while events arrive.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// `[audit]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// The log's name in checkpoints, e.g. `gateway.example.com/audit`.
    /// Default: the key's name, else `<public_url host>/audit`.
    pub origin: Option<String>,
    /// The private key, `PRIVATE+KEY+<origin>+<id>+<base64>` (better given as
    /// `COUNTERSIGN_AUDIT_KEY`).
    pub key: Option<String>,
    /// A file holding the private key.
    pub key_file: Option<PathBuf>,
    /// Sign checkpoints (default true).
    pub checkpoints: Option<bool>,
    /// How often to look for new events and sign (default `1s`, 100ms to 1s).
    pub checkpoint_interval: Option<String>,
}

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `key` (or `COUNTERSIGN_AUDIT_KEY`), already checked to read.
    Inline(Secret),
    /// `key_file`, read at start.
    File(PathBuf),
    /// Neither: the key in the data directory, generated at first start.
    DataDir,
}

/// The validated `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The configured origin; `None` takes the key's name.
    pub origin: Option<String>,
    /// The origin for a key generated now.
    pub default_origin: String,
    pub key: KeySource,
    pub checkpoints: bool,
    pub checkpoint_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            origin: None,
            default_origin: "countersign/audit".to_owned(),
            key: KeySource::DataDir,
            checkpoints: true,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

impl RawAudit {
    /// Checks the section; `public_url` gives the default origin.
    pub fn validate(self, public_url: &str) -> Result<AuditConfig, ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { key, message };
        if let Some(origin) = &self.origin {
            if !valid_key_name(origin) {
                return Err(invalid("audit.origin", format!("`{origin}` must be non-empty, with no spaces or `+`")));
            }
        }
        let key = match (self.key, self.key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid("audit.key", "give the key or a `key_file`, not both".to_owned()))
            }
            (Some(text), None) => {
                // The message names what is wrong, never the key.
                let signer = NoteSigner::from_private_key(&text).map_err(|e| invalid("audit.key", e.to_string()))?;
                if let Some(origin) = &self.origin {
                    if signer.name() != origin {
                        return Err(invalid(
                            "audit.key",
                            format!("the key is named `{}`, not the origin `{origin}`", signer.name()),
                        ));
                    }
                }
                KeySource::Inline(Secret::new(text.trim().to_owned()))
            }
            (None, Some(path)) => KeySource::File(path),
            (None, None) => KeySource::DataDir,
        };
        let checkpoint_interval =
            duration("audit.checkpoint_interval", self.checkpoint_interval.as_deref(), DEFAULT_CHECKPOINT_INTERVAL)?;
        if !(Duration::from_millis(100)..=Duration::from_secs(1)).contains(&checkpoint_interval) {
            return Err(invalid("audit.checkpoint_interval", "must be between 100ms and 1s".to_owned()));
        }
        Ok(AuditConfig {
            origin: self.origin,
            default_origin: default_origin(public_url),
            key,
            checkpoints: self.checkpoints.unwrap_or(true),
            checkpoint_interval,
        })
    }
}

/// `<host[:port]>/audit` of the public URL, else `countersign/audit`.
fn default_origin(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let origin = format!("{host}/audit");
    if host.is_empty() || !valid_key_name(&origin) {
        return "countersign/audit".to_owned();
    }
    origin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_origin() {
        let c = RawAudit::default().validate("https://gw.example.com:8443/").unwrap();
        assert_eq!(c.default_origin, "gw.example.com:8443/audit");
        assert_eq!((c.key, c.checkpoints, c.checkpoint_interval), (KeySource::DataDir, true, Duration::from_secs(1)));
        assert_eq!(default_origin("not a url"), "countersign/audit");
    }

    #[test]
    fn a_bad_key_or_origin_is_refused_without_showing_the_key() {
        let raw = RawAudit { key: Some("PRIVATE+KEY+x+00000000+c2VjcmV0".into()), ..RawAudit::default() };
        let err = raw.validate("http://a").unwrap_err().to_string();
        assert!(err.starts_with("`audit.key`"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let raw = RawAudit { origin: Some("a b".into()), ..RawAudit::default() };
        assert!(raw.validate("http://a").is_err());
        let raw = RawAudit { checkpoint_interval: Some("5s".into()), ..RawAudit::default() };
        assert!(raw.validate("http://a").is_err());
        let raw = RawAudit { key: Some("k".into()), key_file: Some("f".into()), ..RawAudit::default() };
        assert!(raw.validate("http://a").is_err());
    }

    #[test]
    fn the_key_must_carry_the_origin_and_debug_masks_it() {
        let key = NoteSigner::new("a.example/audit", [1; 32]).unwrap().private_key();
        let raw = RawAudit { key: Some(key.clone()), origin: Some("b.example/audit".into()), ..RawAudit::default() };
        assert!(raw.validate("http://a").unwrap_err().to_string().contains("not the origin"));
        let c = RawAudit { key: Some(key.clone()), ..RawAudit::default() }.validate("http://a").unwrap();
        assert!(!format!("{c:?}").contains(&key[20..]));
    }
}
