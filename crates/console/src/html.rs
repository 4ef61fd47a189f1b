//! Safe HTML output. Everything shown in the console that came from
//! outside — payloads, names, comments, justifications — is attacker
//! controlled, so it goes through [`esc`] (text and attribute values alike).
//! Markup is only ever built from literals and escaped values; there is no
//! inline script or style, which the Content-Security-Policy enforces.

use std::fmt::Write as _;

use countersign_core::Timestamp;

/// Escapes text for use in element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a value for a URL query or path segment.
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A timestamp as a `<time>` element (UTC, readable, machine-readable).
pub fn time(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    let short = text.get(..19).unwrap_or(&text).replace('T', " ");
    format!("<time datetime=\"{}\">{} UTC</time>", esc(&text), esc(&short))
}

/// A status as a badge.
pub fn status_badge(status: &str) -> String {
    format!("<span class=\"badge status-{s}\">{s}</span>", s = esc(status))
}

/// Pretty JSON in a `<pre>`, escaped.
pub fn json_block(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    format!("<pre class=\"json\">{}</pre>", esc(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(esc("<script>alert('x')</script>&\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
        assert_eq!(url_part("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }
}
