//! The SIEM sinks against real receivers: rsyslog (TCP, TLS, UDP), the
//! OCSF schema, the OpenTelemetry protobuf definitions and a Splunk HEC
//! stand-in (see `support` for how they are started).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod http;
mod ocsf;
mod rsyslog;
mod support;
