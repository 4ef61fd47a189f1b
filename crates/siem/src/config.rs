//! The `[[siem]]` sections: where the audit log is exported, in which
//! format, and which events.
//!
//! ```toml
//! [[siem]]
//! name = "soc"                # the sink is `siem-soc` in metrics and on the admin page
//! type = "syslog"             # syslog | ocsf_http | ocsf_file | splunk_hec | otlp
//! transport = "tls"           # syslog: tcp | tls | udp
//! address = "logs.example:6514"
//! format = "cef"              # syslog: cef | json
//! ca_file = "/etc/countersign/siem-ca.pem"
//! events = ["action.*", "approval.accepted"]   # default: every kind
//! refusals_min_severity = "medium"             # refusals below it are not sent
//! ```
//!
//! Tokens may be given inline or in a file (`token_file`); they are held as
//! [`Secret`]s, never shown in `Debug` output or logs.

use std::path::PathBuf;

use countersign_core::events::Event;
use countersign_gateway::config::{read_text_file, secret, ConfigError, Secret};
use serde::Deserialize;

use crate::ocsf::Severity;

/// One `[[siem]]` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiem {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub transport: Option<String>,
    pub address: Option<String>,
    pub format: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub path: Option<PathBuf>,
    pub index: Option<String>,
    pub host: Option<String>,
    pub events: Option<Vec<String>>,
    pub refusals_min_severity: Option<String>,
    pub max_attempts: Option<u32>,
}

/// One validated sink.
#[derive(Debug, Clone)]
pub struct SiemConfig {
    /// `siem-NAME`: the outbox cursor key, the metrics label, the admin page name.
    pub name: String,
    pub destination: Destination,
    pub filter: Filter,
    /// The host name the events name as their origin.
    pub host: String,
    /// Give up on an event after this many attempts; `None` (the default): never.
    pub max_attempts: Option<u32>,
}

/// Where a sink sends, and how.
#[derive(Debug, Clone)]
pub enum Destination {
    /// RFC 5424 messages; over TCP and TLS framed by octet counting (RFC 6587).
    Syslog { transport: SyslogTransport, address: String, format: SyslogFormat },
    /// One OCSF event per POST.
    OcsfHttp { url: String, token: Option<Secret>, ca_pem: Option<String> },
    /// One OCSF event a line, appended and synced.
    OcsfFile { path: PathBuf },
    /// Splunk's HTTP Event Collector, `POST <url>/services/collector/event`.
    SplunkHec { url: String, token: Secret, ca_pem: Option<String>, index: Option<String> },
    /// OTLP logs over HTTP, `POST <url>/v1/logs`, protobuf.
    Otlp { url: String, token: Option<Secret>, ca_pem: Option<String> },
}

#[derive(Debug, Clone)]
pub enum SyslogTransport {
    Tcp,
    /// RFC 5425; the server must present a certificate `ca_pem` vouches for,
    /// for `server_name`.
    Tls {
        ca_pem: String,
        server_name: String,
    },
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    Cef,
    Json,
}

/// Which events a sink sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Kinds (`action.approved`) or kind prefixes (`action.*`); empty: all.
    pub kinds: Vec<String>,
    /// Refusals below this severity are not sent; other events always are.
    pub refusals_min_severity: Severity,
}

impl Filter {
    /// Whether an event of `kind`, of `severity`, refusal or not, is sent.
    pub fn admits(&self, kind: &str, severity: Severity, refusal: bool) -> bool {
        let kind_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => p == kind,
            });
        kind_ok && (!refusal || severity >= self.refusals_min_severity)
    }
}

/// Validates every `[[siem]]` section.
pub fn validate(raw: Vec<RawSiem>) -> Result<Vec<SiemConfig>, ConfigError> {
    let mut sinks: Vec<SiemConfig> = Vec::with_capacity(raw.len());
    for (index, section) in raw.into_iter().enumerate() {
        let sink = validate_one(index, section)?;
        if sinks.iter().any(|s| s.name == sink.name) {
            return Err(invalid("siem.name", format!("`{}` names two sinks", sink.name)));
        }
        sinks.push(sink);
    }
    Ok(sinks)
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

fn validate_one(index: usize, raw: RawSiem) -> Result<SiemConfig, ConfigError> {
    let name = match raw.name.as_deref() {
        None => format!("siem-{index}"),
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') =>
        {
            format!("siem-{name}")
        }
        Some(name) => {
            return Err(invalid("siem.name", format!("`{name}` is not 1 to 64 of `a-z`, `0-9`, `-`, `_`")));
        }
    };
    let filter = Filter {
        kinds: kinds(raw.events.clone())?,
        refusals_min_severity: severity(raw.refusals_min_severity.clone())?,
    };
    let host = match raw.host.clone() {
        Some(host) if !host.trim().is_empty() && host.is_ascii() && !host.contains(char::is_whitespace) => host,
        Some(host) => return Err(invalid("siem.host", format!("`{host}` is not a host name"))),
        None => local_host_name(),
    };
    let max_attempts = raw.max_attempts;
    if raw.max_attempts == Some(0) {
        return Err(invalid("siem.max_attempts", "must be at least 1"));
    }
    let kind = raw.kind.clone().ok_or_else(|| {
        invalid("siem.type", "missing: one of `syslog`, `ocsf_http`, `ocsf_file`, `splunk_hec`, `otlp`")
    })?;
    let destination = match kind.as_str() {
        "syslog" => syslog(raw)?,
        "ocsf_http" => {
            only(&raw, &["url", "token", "ca_file"])?;
            Destination::OcsfHttp {
                url: url("siem.url", raw.url)?,
                token: secret("siem.token", raw.token, raw.token_file.as_deref())?,
                ca_pem: ca(raw.ca_file)?,
            }
        }
        "ocsf_file" => {
            only(&raw, &["path"])?;
            let path = raw.path.ok_or_else(|| invalid("siem.path", "missing: the file to append to"))?;
            Destination::OcsfFile { path }
        }
        "splunk_hec" => {
            only(&raw, &["url", "token", "ca_file", "index"])?;
            let token = secret("siem.token", raw.token, raw.token_file.as_deref())?
                .ok_or_else(|| invalid("siem.token", "missing: the HEC token (`token` or `token_file`)"))?;
            Destination::SplunkHec { url: url("siem.url", raw.url)?, token, ca_pem: ca(raw.ca_file)?, index: raw.index }
        }
        "otlp" => {
            only(&raw, &["url", "token", "ca_file"])?;
            Destination::Otlp {
                url: url("siem.url", raw.url)?,
                token: secret("siem.token", raw.token, raw.token_file.as_deref())?,
                ca_pem: ca(raw.ca_file)?,
            }
        }
        other => {
            return Err(invalid(
                "siem.type",
                format!("`{other}` is not one of `syslog`, `ocsf_http`, `ocsf_file`, `splunk_hec`, `otlp`"),
            ))
        }
    };
    Ok(SiemConfig { name, destination, filter, host, max_attempts })
}

/// Refuses the options that do not belong to this sink type: a `path` on
/// an HTTP sink is a mistake, not something to ignore.
fn only(raw: &RawSiem, allowed: &[&str]) -> Result<(), ConfigError> {
    let given = [
        ("transport", raw.transport.is_some()),
        ("address", raw.address.is_some()),
        ("format", raw.format.is_some()),
        ("ca_file", raw.ca_file.is_some()),
        ("server_name", raw.server_name.is_some()),
        ("url", raw.url.is_some()),
        ("token", raw.token.is_some() || raw.token_file.is_some()),
        ("path", raw.path.is_some()),
        ("index", raw.index.is_some()),
    ];
    for (option, set) in given {
        if set && !allowed.contains(&option) {
            let kind = raw.kind.as_deref().unwrap_or_default();
            return Err(invalid("siem.type", format!("`{option}` does not apply to a `{kind}` sink")));
        }
    }
    Ok(())
}

fn syslog(raw: RawSiem) -> Result<Destination, ConfigError> {
    only(&raw, &["transport", "address", "format", "ca_file", "server_name"])?;
    let tls_only = |option: &'static str| invalid(option, "applies to `transport = \"tls\"` only");
    if raw.transport.as_deref() != Some("tls") {
        if raw.server_name.is_some() {
            return Err(tls_only("siem.server_name"));
        }
        if raw.ca_file.is_some() {
            return Err(tls_only("siem.ca_file"));
        }
    }
    let address = raw.address.ok_or_else(|| invalid("siem.address", "missing: `host:port` of the syslog server"))?;
    let (host, _) = address
        .rsplit_once(':')
        .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        .ok_or_else(|| invalid("siem.address", format!("`{address}` is not `host:port`")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let format = match raw.format.as_deref() {
        None | Some("json") => SyslogFormat::Json,
        Some("cef") => SyslogFormat::Cef,
        Some(other) => return Err(invalid("siem.format", format!("`{other}` is not `cef` or `json`"))),
    };
    let transport = match raw.transport.as_deref() {
        None | Some("tcp") => SyslogTransport::Tcp,
        Some("udp") => SyslogTransport::Udp,
        Some("tls") => {
            let ca_pem = ca(raw.ca_file)?.ok_or_else(|| {
                invalid("siem.ca_file", "missing: TLS needs the CA that issued the server's certificate")
            })?;
            SyslogTransport::Tls { ca_pem, server_name: raw.server_name.unwrap_or(host) }
        }
        Some(other) => return Err(invalid("siem.transport", format!("`{other}` is not `tcp`, `tls` or `udp`"))),
    };
    Ok(Destination::Syslog { transport, address, format })
}

fn url(key: &'static str, url: Option<String>) -> Result<String, ConfigError> {
    let url = url.ok_or_else(|| invalid(key, "missing"))?;
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(url.trim_end_matches('/').to_owned()),
        Ok(_) | Err(_) => Err(invalid(key, format!("`{url}` is not an http(s) URL"))),
    }
}

fn ca(path: Option<PathBuf>) -> Result<Option<String>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let pem = read_text_file(&path).map_err(|e| invalid("siem.ca_file", e.to_string()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(invalid("siem.ca_file", format!("`{}` holds no PEM certificate", path.display())));
    }
    Ok(Some(pem))
}

fn kinds(events: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let events = events.unwrap_or_default();
    for pattern in &events {
        let matches = |kind: &&str| match pattern.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => kind == pattern,
        };
        if !Event::KINDS.iter().any(matches) {
            return Err(invalid(
                "siem.events",
                format!(
                    "`{pattern}` matches no event kind (kinds look like `action.approved`; `action.*` takes a prefix)"
                ),
            ));
        }
    }
    Ok(events)
}

fn severity(text: Option<String>) -> Result<Severity, ConfigError> {
    match text.as_deref() {
        None => Ok(Severity::Informational),
        Some(text) => Severity::parse(text).ok_or_else(|| {
            invalid(
                "siem.refusals_min_severity",
                format!("`{text}` is not `informational`, `low`, `medium`, `high` or `critical`"),
            )
        }),
    }
}

/// This machine's name, as syslog and HEC report the origin.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .unwrap_or_else(|| "countersign".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(toml_text: &str) -> Vec<RawSiem> {
        #[derive(Deserialize)]
        struct File {
            siem: Vec<RawSiem>,
        }
        toml::from_str::<File>(toml_text).unwrap().siem
    }

    fn one(toml_text: &str) -> SiemConfig {
        validate(sections(toml_text)).unwrap().remove(0)
    }

    /// Asserts that the sections are refused with a message holding `why`.
    fn refused(toml_text: &str, why: &str) {
        let e = validate(sections(toml_text)).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }

    #[test]
    fn each_type_reads_and_misplaced_options_are_refused() {
        let s = one("[[siem]]\ntype = \"syslog\"\naddress = \"127.0.0.1:514\"\nformat = \"cef\"\n");
        assert_eq!(s.name, "siem-0");
        assert!(matches!(s.destination, Destination::Syslog { format: SyslogFormat::Cef, .. }));
        let s = one("[[siem]]\nname = \"hec\"\ntype = \"splunk_hec\"\nurl = \"http://h:8088/\"\ntoken = \"t\"\n");
        assert_eq!(s.name, "siem-hec");
        assert!(matches!(&s.destination, Destination::SplunkHec { url, .. } if url == "http://h:8088"));
        assert!(format!("{s:?}").contains("Secret(***)"));
        refused(
            "[[siem]]\ntype = \"ocsf_file\"\npath = \"/x\"\nurl = \"http://h\"\n",
            "`url` does not apply to a `ocsf_file` sink",
        );
        refused("[[siem]]\ntype = \"splunk_hec\"\nurl = \"http://h\"\n", "HEC token");
        refused("[[siem]]\ntype = \"syslog\"\ntransport = \"tls\"\naddress = \"h:6514\"\n", "siem.ca_file");
        refused("[[siem]]\ntype = \"syslog\"\naddress = \"h\"\n", "is not `host:port`");
        refused("[[siem]]\ntype = \"kafka\"\n", "`kafka`");
        refused("[[siem]]\ntype = \"otlp\"\nurl = \"ftp://h\"\n", "not an http(s) URL");
        refused("[[siem]]\nname = \"Bad Name\"\ntype = \"ocsf_file\"\npath = \"/x\"\n", "`Bad Name`");
    }

    #[test]
    fn filters_name_real_kinds_and_severities() {
        let s = one(
            "[[siem]]\ntype = \"ocsf_file\"\npath = \"/x\"\nevents = [\"action.*\", \"request.rejected\"]\nrefusals_min_severity = \"medium\"\n",
        );
        assert!(s.filter.admits("action.approved", Severity::Informational, false));
        assert!(!s.filter.admits("identity.user_created", Severity::Informational, false));
        assert!(s.filter.admits("request.rejected", Severity::High, true));
        assert!(!s.filter.admits("request.rejected", Severity::Low, true));
        refused("[[siem]]\ntype = \"ocsf_file\"\npath = \"/x\"\nevents = [\"actions.*\"]\n", "matches no event kind");
        refused("[[siem]]\ntype = \"ocsf_file\"\npath = \"/x\"\nrefusals_min_severity = \"loud\"\n", "`loud`");
    }

    #[test]
    fn names_must_be_distinct() {
        refused(
            "[[siem]]\nname=\"a\"\ntype=\"ocsf_file\"\npath=\"/x\"\n[[siem]]\nname=\"a\"\ntype=\"ocsf_file\"\npath=\"/y\"\n",
            "names two sinks",
        );
    }
}
