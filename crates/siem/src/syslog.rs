//! Syslog messages: the RFC 5424 header, structured data with the event's
//! place in the chain, and a CEF or JSON message; octet-counting framing
//! (RFC 6587 section 3.4.1, which RFC 5425 uses for TLS) for TCP.

use crate::config::SyslogFormat;
use crate::ocsf::Severity;
use crate::record::Exported;

/// Facility 13, "log audit".
const FACILITY: u8 = 13;
/// The private enterprise number RFC 5612 reserves for documentation and
/// examples; countersign has none of its own.
const SD_ID: &str = "countersign@32473";

/// One RFC 5424 message.
pub fn message(record: &Exported, format: SyslogFormat) -> String {
    let pri = FACILITY * 8 + level(record.mapping.severity);
    let time = record.event.time.to_rfc3339();
    let msgid = msgid(&record.event.kind);
    let sd = format!(
        "[{SD_ID} seq=\"{}\" hash=\"{}\" prev_hash=\"{}\"]",
        record.event.seq,
        sd_escape(&record.event.hash),
        sd_escape(&record.event.prev_hash)
    );
    let text = match format {
        SyslogFormat::Json => record.envelope().to_string(),
        SyslogFormat::Cef => cef(record),
    };
    format!("<{pri}>1 {time} {} countersign - {msgid} {sd} {text}", header_field(&record.host, 255))
}

/// `LEN SP MSG`.
pub fn octet_counted(message: &str) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message.as_bytes());
    frame
}

/// The syslog severity of an OCSF severity.
fn level(severity: Severity) -> u8 {
    match severity {
        Severity::Informational => 6,
        Severity::Low => 5,
        Severity::Medium => 4,
        Severity::High => 3,
        Severity::Critical => 2,
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` long.
fn header_field(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

fn msgid(kind: &str) -> String {
    header_field(kind, 32)
}

fn sd_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]")
}

/// An ArcSight CEF (version 0) line.
pub fn cef(record: &Exported) -> String {
    let event = &record.event;
    let mapping = &record.mapping;
    let severity = match mapping.severity {
        Severity::Informational => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    };
    let mut ext = vec![
        ("rt", event.time.as_millis().to_string()),
        ("suser", event.actor.clone()),
        ("outcome", if mapping.success { "success" } else { "failure" }.to_owned()),
        ("cat", mapping.class.name().to_owned()),
        ("cn1Label", "seq".to_owned()),
        ("cn1", event.seq.to_string()),
        ("cs1Label", "hash".to_owned()),
        ("cs1", event.hash.clone()),
        ("cs2Label", "prev_hash".to_owned()),
        ("cs2", event.prev_hash.clone()),
    ];
    if let Some(id) = &mapping.request {
        ext.push(("cs3Label", "request".to_owned()));
        ext.push(("cs3", id.clone()));
    }
    if let Some(checkpoint) = &record.checkpoint {
        ext.push(("cs4Label", "checkpoint".to_owned()));
        ext.push(("cs4", checkpoint.clone()));
    }
    ext.push(("msg", record.body().to_string()));
    let ext: Vec<String> = ext.into_iter().map(|(k, v)| format!("{k}={}", cef_value(&v))).collect();
    format!(
        "CEF:0|countersign|countersign|{}|{}|{}|{severity}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header(&event.kind),
        cef_header(&record.summary()),
        ext.join(" ")
    )
}

fn cef_header(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn cef_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('=', "\\=").replace("\r\n", "\\n").replace('\n', "\\n").replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::exported;

    #[test]
    fn messages_follow_rfc_5424_and_frames_count_octets() {
        let e = exported(
            3,
            "attempt.refused",
            "agent:bot",
            r#"{"attempt":"approve","code":"self_approval","id":"r","message":"a=b|c"}"#,
        );
        let m = message(&e, SyslogFormat::Cef);
        // log audit (13) × 8 + err (3): a self-approval attempt is high.
        assert!(m.starts_with("<107>1 2025-12-06T05:46:40.003Z gw1 countersign - attempt.refused [countersign@32473 seq=\"3\" hash=\""), "{m}");
        assert!(m.contains("CEF:0|countersign|countersign|"), "{m}");
        assert!(m.contains("|attempt.refused|attempt.refused by agent:bot (request r)|8|"), "{m}");
        assert!(m.contains(r#""message":"a\=b|c""#), "{m}");
        assert!(m.contains("cs4=example.org/log\\n1\\nAAAA"), "{m}");
        let frame = octet_counted("héllo");
        assert_eq!(frame, b"6 h\xc3\xa9llo");
        let j = message(&e, SyslogFormat::Json);
        let json: serde_json::Value = serde_json::from_str(j.split_once("] ").unwrap().1).unwrap();
        assert_eq!(json["seq"], 3);
    }
}
