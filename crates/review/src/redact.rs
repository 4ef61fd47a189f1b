//! Keeps secrets off chat screens, console pages and webhook receivers: payload
//! text is shown with anything that looks like a credential replaced.
//!
//! Two layers: object keys that name a secret (`password`, `token`, …) have
//! their whole value hidden, and text anywhere is matched against built-in
//! patterns (bearer tokens, `key=value` secrets, private keys, URL
//! credentials, well-known token formats) plus the configured
//! `[channels] redact` expressions. The approval still binds to the full
//! action through its fingerprint, which the card shows.

use regex::Regex;
use serde_json::Value;

/// What hidden text is replaced with.
pub const MASK: &str = "[redacted]";

/// Patterns whose whole match is a secret.
const BUILT_IN: [&str; 6] = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{8,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
];

/// `name=value` / `name: value` where the name says secret: only the value goes.
const ASSIGNMENT: &str = r#"(?i)\b([A-Za-z0-9_-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credential)[A-Za-z0-9_-]*)(\s*[=:]\s*|\s+)("[^"]*"|'[^']*'|[^\s"',;&]+)"#;

/// Credentials inside URLs: `scheme://user:password@host`.
const URL_CREDENTIALS: &str = r"(://[^/\s:@]+):[^/\s@]+@";

/// Object keys whose values are secrets.
const SECRET_KEY: &str = r"(?i)pass|secret|token|api[_-]?key|authorization|credential|private[_-]?key|cookie";

/// A configured redaction pattern that is not a regular expression.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the redaction pattern `{pattern}` is invalid: {reason}")]
pub struct InvalidPattern {
    pub pattern: String,
    pub reason: String,
}

/// Hides secrets in text and JSON.
#[derive(Debug, Clone)]
pub struct Redactor {
    whole: Vec<Regex>,
    assignment: Regex,
    url_credentials: Regex,
    secret_key: Regex,
}

impl Redactor {
    /// The built-in patterns plus `extra` (each a regular expression).
    pub fn new(extra: &[String]) -> Result<Self, InvalidPattern> {
        let mut whole = Vec::new();
        for pattern in BUILT_IN.iter().map(|p| (*p).to_owned()).chain(extra.iter().cloned()) {
            let regex =
                Regex::new(&pattern).map_err(|e| InvalidPattern { pattern: pattern.clone(), reason: e.to_string() })?;
            whole.push(regex);
        }
        let built =
            |p: &str| Regex::new(p).map_err(|e| InvalidPattern { pattern: p.to_owned(), reason: e.to_string() });
        Ok(Self {
            whole,
            assignment: built(ASSIGNMENT)?,
            url_credentials: built(URL_CREDENTIALS)?,
            secret_key: built(SECRET_KEY)?,
        })
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn text(&self, text: &str) -> String {
        let mut out = self.url_credentials.replace_all(text, format!("$1:{MASK}@")).into_owned();
        out = self.assignment.replace_all(&out, format!("$1$2{MASK}")).into_owned();
        for regex in &self.whole {
            out = regex.replace_all(&out, MASK).into_owned();
        }
        out
    }

    /// A copy of `value` with secret-named keys hidden and every string redacted.
    pub fn json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let hidden = self.secret_key.is_match(k) && !matches!(v, Value::Null | Value::Bool(_));
                        (k.clone(), if hidden { Value::String(MASK.to_owned()) } else { self.json(v) })
                    })
                    .collect(),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hides_common_secrets() {
        let r = Redactor::new(&[]).unwrap();
        let cases = [
            ("mysql -u root --password=hunter2 -e 'select 1'", "hunter2"),
            ("curl -H 'Authorization: Bearer abcdef123456789' x", "abcdef123456789"),
            ("psql postgres://app:s3cr3t@db/prod", "s3cr3t"),
            ("export API_KEY=\"k-123456\"", "k-123456"),
            ("token xoxb-1234-5678-abcdefgh", "xoxb-1234"),
            ("AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ];
        for (text, secret) in cases {
            let out = r.text(text);
            assert!(!out.contains(secret), "{text} -> {out}");
            assert!(out.contains(MASK), "{text} -> {out}");
        }
        assert_eq!(r.text("systemctl restart web"), "systemctl restart web");
    }

    #[test]
    fn hides_secret_keys_in_json_and_applies_extra_patterns() {
        let r = Redactor::new(&["ACME-[0-9]{4}".to_owned()]).unwrap();
        let out = r.json(&json!({"db_password": "x", "args": ["ACME-1234", "ok"], "n": 1, "token": null}));
        assert_eq!(out, json!({"db_password": MASK, "args": [MASK, "ok"], "n": 1, "token": null}));
        assert!(Redactor::new(&["(".to_owned()]).is_err());
    }
}
