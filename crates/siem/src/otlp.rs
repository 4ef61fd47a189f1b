//! OTLP logs: one audit event as an `ExportLogsServiceRequest` (protobuf),
//! for `POST <url>/v1/logs` (OTLP/HTTP).
//!
//! The log record's body is the exported event as JSON text; its
//! attributes repeat what a collector filters on (kind, sequence number,
//! hash, actor, the OCSF class) and the latest checkpoint.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::ocsf::Severity;
use crate::record::Exported;

/// The instrumentation scope the records come from.
pub const SCOPE: &str = "countersign.audit";

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..KeyValue::default()
    }
}

fn severity_number(severity: Severity) -> SeverityNumber {
    match severity {
        Severity::Informational => SeverityNumber::Info,
        Severity::Low => SeverityNumber::Info2,
        Severity::Medium => SeverityNumber::Warn,
        Severity::High => SeverityNumber::Error,
        Severity::Critical => SeverityNumber::Fatal,
    }
}

/// The request for one event, encoded.
pub fn request(record: &Exported) -> Vec<u8> {
    let event = &record.event;
    let nanos = u64::try_from(event.time.as_millis()).unwrap_or(0).saturating_mul(1_000_000);
    let mut attributes = vec![
        text("event.name", event.kind.clone()),
        int("countersign.seq", i64::try_from(event.seq).unwrap_or(i64::MAX)),
        text("countersign.hash", event.hash.clone()),
        text("countersign.prev_hash", event.prev_hash.clone()),
        text("countersign.actor", event.actor.clone()),
        int("ocsf.class_uid", i64::from(record.mapping.class.uid())),
    ];
    if let Some(id) = &record.mapping.request {
        attributes.push(text("countersign.request", id.clone()));
    }
    if let Some(checkpoint) = &record.checkpoint {
        attributes.push(text("countersign.checkpoint", checkpoint.clone()));
    }
    let log = LogRecord {
        time_unix_nano: nanos,
        observed_time_unix_nano: nanos,
        severity_number: severity_number(record.mapping.severity) as i32,
        severity_text: record.mapping.severity.name().to_owned(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(record.envelope().to_string())) }),
        attributes,
        event_name: event.kind.clone(),
        ..LogRecord::default()
    };
    let resource = Resource {
        attributes: vec![text("service.name", "countersign"), text("host.name", record.host.clone())],
        ..Resource::default()
    };
    let scope = InstrumentationScope {
        name: SCOPE.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs { scope: Some(scope), log_records: vec![log], ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::exported;

    #[test]
    fn requests_decode_with_the_event_and_its_place() {
        let e = exported(9, "action.approved", "system", r#"{"id":"r","reason":"ok","release_by":null}"#);
        let decoded = ExportLogsServiceRequest::decode(request(&e).as_slice()).unwrap();
        let log = &decoded.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(log.event_name, "action.approved");
        assert!(log.attributes.iter().any(|kv| kv.key == "countersign.seq"
            && kv.value == Some(AnyValue { value: Some(any_value::Value::IntValue(9)) })));
    }
}
