//! Keeps secrets off chat screens, console pages and webhook receivers:
//! payload text is shown with secret *values* replaced, and nothing else.
//!
//! Redaction removes literal secret values, never code: a program name,
//! an operator (`|`, `;`, `&&`, redirections), a substitution (`$(…)`,
//! backticks, `<(…)`) or a line break is never hidden, whatever word
//! precedes it, so an approver always sees what would run (see
//! [`text`] for how that is guaranteed).
//!
//! What is hidden:
//! - in text: the value after a secret-named word (`--password=…`,
//!   `API_KEY="…"`, `password: …`, `--token …`, `Authorization: Bearer …`,
//!   a quoted string after a secret-named word), the password in URL
//!   credentials (`scheme://user:…@host`), well-known token formats and
//!   private key blocks, plus the configured `[channels] redact`
//!   expressions — each only when it is a literal value;
//! - in JSON: the literal strings and numbers under a key that names a
//!   secret ([`names`]: judged by its last word, so `db_password` and
//!   `apiKey` but not `bypass`, `tokenizer` or `token_refresh_command`);
//!   a structured value under such a key is redacted item by item, never
//!   wholesale; every other string is redacted as text.
//!
//! The approval still binds to the full action through its fingerprint,
//! which the card shows.

pub mod names;
pub mod text;

use std::cell::OnceCell;
use std::ops::Range;

use regex::Regex;
use serde_json::Value;

use self::names::is_secret_name;
use self::text::{assignments, is_code_char, single_word, Form, Programs};

/// What hidden text is replaced with.
pub const MASK: &str = "[redacted]";

/// Well-known token formats: the whole match is a secret.
const TOKENS: [&str; 5] = [
    r"(?i)\bbearer[ \t]+[A-Za-z0-9._~+/=-]{8,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{8,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
];

/// A private key block whose lines are base64 or PEM headers (so nothing
/// else can hide inside it), cut short or whole; line breaks may be real
/// or `\n` escapes.
const PRIVATE_KEY: &str = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:(?:\r?\n|\\n)(?:[A-Za-z0-9+/=]+|[A-Za-z-]+:[ \t]*[A-Za-z0-9,.:-]*)?)*(?:(?:\r?\n|\\n)-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)";

/// Credentials inside URLs: `scheme://user:password@host`; group 1 is the password.
const URL_CREDENTIALS: &str = r"://[^/\s:@]+:([^/\s@]+)@";

/// How deep JSON is walked; deeper values cannot come from a parsed
/// request (serde_json stops at 128), so this only bounds the recursion.
const MAX_DEPTH: usize = 200;

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
    tokens: Vec<Regex>,
    extra: Vec<Regex>,
    private_key: Regex,
    url_credentials: Regex,
}

impl Redactor {
    /// The built-in patterns plus `extra` (each a regular expression).
    pub fn new(extra: &[String]) -> Result<Self, InvalidPattern> {
        let built =
            |p: &str| Regex::new(p).map_err(|e| InvalidPattern { pattern: p.to_owned(), reason: e.to_string() });
        Ok(Self {
            tokens: TOKENS.iter().map(|p| built(p)).collect::<Result<_, _>>()?,
            extra: extra.iter().map(|p| built(p)).collect::<Result<_, _>>()?,
            private_key: built(PRIVATE_KEY)?,
            url_credentials: built(URL_CREDENTIALS)?,
        })
    }

    /// `text` with every literal secret value replaced by [`MASK`].
    pub fn text(&self, text: &str) -> String {
        let mut hidden: Vec<Range<usize>> = Vec::new();
        // Read only when a candidate needs it: which words are programs.
        let cell = OnceCell::new();
        let programs = || cell.get_or_init(|| Programs::of(text));
        let runs_no_program = |range: Range<usize>| !programs().touches(text, range);
        let parsed = || matches!(programs(), Programs::Known(_));

        for a in assignments(text, is_secret_name) {
            let shape = match a.form {
                // One shell word with its name: never a program itself.
                Form::Joined => a.literal,
                // The value is a word of its own: hidden only when the
                // parser read the line and does not run that word.
                Form::SpacedAssign => a.literal && parsed(),
                Form::Spaced => a.literal && (a.option || a.quoted) && parsed(),
            };
            if shape && runs_no_program(a.value.clone()) {
                hidden.push(a.value);
            }
        }
        for m in self.url_credentials.captures_iter(text).filter_map(|c| c.get(1)) {
            if literal(m.as_str()) && runs_no_program(m.range()) {
                hidden.push(m.range());
            }
        }
        // A token format alone (a JSON string holding just the token) is a
        // value, even though a shell would try to run it.
        let alone = single_word(text);
        for m in self.tokens.iter().chain(&self.extra).flat_map(|r| r.find_iter(text)) {
            if !m.as_str().chars().any(is_code_char) && (alone || runs_no_program(m.range())) {
                hidden.push(m.range());
            }
        }
        for m in self.private_key.find_iter(text) {
            hidden.extend(key_body(text, m.range(), &runs_no_program));
        }
        mask(text, hidden)
    }

    /// A copy of `value` with secret values hidden: literal strings and
    /// numbers under secret-named keys, and secrets in every string.
    pub fn json(&self, value: &Value) -> Value {
        self.walk(value, false, 0)
    }

    /// `s` is one private key block and nothing else.
    fn is_private_key(&self, s: &str) -> bool {
        let s = s.trim();
        self.private_key.find(s).is_some_and(|m| m.start() == 0 && m.end() == s.len())
    }

    fn walk(&self, value: &Value, secret: bool, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::String("[nested too deeply to show]".to_owned());
        }
        match value {
            Value::String(s) if secret && (literal(s) || self.is_private_key(s)) => Value::String(MASK.to_owned()),
            Value::String(s) => Value::String(self.text(s)),
            Value::Number(_) if secret => Value::String(MASK.to_owned()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.walk(v, secret, depth + 1)).collect()),
            Value::Object(map) => Value::Object(
                map.iter().map(|(k, v)| (k.clone(), self.walk(v, is_secret_name(k), depth + 1))).collect(),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        }
    }
}

/// The spans to hide in the private key block at `block`: its body (the
/// lines between the markers; base64 or headers, by the pattern) as one
/// span, or, when a short line of it is a program the shell runs (the
/// block is not a key but lines of commands), each line but those.
/// Lines of 40 characters or more are key material whatever they are.
fn key_body(text: &str, block: Range<usize>, runs_no_program: &dyn Fn(Range<usize>) -> bool) -> Vec<Range<usize>> {
    let Some(body) = text.get(block.clone()) else { return Vec::new() };
    let mut lines = Vec::new();
    let mut offset = block.start;
    for (i, piece) in body.split('\n').enumerate() {
        let range = offset..offset + piece.len();
        offset += piece.len() + 1;
        // Real line breaks, or `\n` escapes inside one line.
        for (j, part) in piece.split("\\n").enumerate() {
            let start = range.start + piece.split("\\n").take(j).map(|p| p.len() + 2).sum::<usize>();
            let part = part.trim_end_matches('\r');
            if part.is_empty() || part.starts_with("-----") || (i == 0 && j == 0) {
                continue;
            }
            lines.push(start..start + part.len());
        }
    }
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else { return Vec::new() };
    let keep = |r: &Range<usize>| r.len() < 40 && !runs_no_program(r.clone());
    if lines.iter().any(keep) {
        lines.iter().filter(|r| !keep(r)).cloned().collect()
    } else {
        std::iter::once(first.start..last.end).collect()
    }
}

/// Nothing in `s` that a shell would treat as code.
fn literal(s: &str) -> bool {
    !s.chars().any(is_code_char)
}

/// `text` with the `hidden` spans (merged where they overlap) replaced.
fn mask(text: &str, mut hidden: Vec<Range<usize>>) -> String {
    hidden.retain(|r| r.start < r.end && text.get(r.clone()).is_some());
    hidden.sort_by_key(|r| (r.start, r.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in hidden {
        if r.end <= at {
            continue;
        }
        if r.start >= at {
            out.push_str(text.get(at..r.start).unwrap_or_default());
            out.push_str(MASK);
        }
        at = r.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests;
