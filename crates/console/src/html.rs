//! Safe HTML output. Everything shown in the console that came from
//! outside — payloads, names, comments, justifications — is attacker
//! controlled, so every page is a [`maud`] template: a value spliced into
//! text or an attribute is escaped unless it is wrapped in `PreEscaped`,
//! which the console keeps for constant markup it writes itself. There is
//! no inline script or style, which the Content-Security-Policy enforces.
//!
//! This module holds the small pieces many pages use.

use std::fmt::Write as _;

use countersign_core::Timestamp;
use maud::{html, Markup};

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
pub fn time(t: Timestamp) -> Markup {
    let text = t.to_rfc3339();
    let short = text.get(..19).unwrap_or(&text).replace('T', " ");
    html! { time datetime=(text) { (short) " UTC" } }
}

/// A status as a badge.
pub fn status_badge(status: &str) -> Markup {
    html! { span class={ "badge status-" (status) } { (status) } }
}

/// Pretty JSON in a `<pre>`, escaped.
pub fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre class="json" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_values_are_escaped() {
        let hostile = "<script>alert('x')</script>&\"";
        assert_eq!(
            status_badge(hostile).into_string(),
            "<span class=\"badge status-&lt;script&gt;alert('x')&lt;/script&gt;&amp;&quot;\">\
             &lt;script&gt;alert('x')&lt;/script&gt;&amp;&quot;</span>"
        );
        assert_eq!(
            json_block(&serde_json::json!("<b>")).into_string(),
            "<pre class=\"json\">&quot;&lt;b&gt;&quot;</pre>"
        );
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(url_part("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }

    #[test]
    fn times_are_readable_and_machine_readable() {
        let t = Timestamp::parse_rfc3339("2026-01-31T12:34:56Z").unwrap();
        let text = time(t).into_string();
        assert!(text.starts_with("<time datetime=\"2026-01-31T12:34:56"), "{text}");
        assert!(text.ends_with(">2026-01-31 12:34:56 UTC</time>"), "{text}");
    }
}
