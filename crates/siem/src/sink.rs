//! One `[[siem]]` sink as an outbox [`Sink`]: it receives every audit event
//! in sequence order (at least once; the outbox keeps its cursor, retries
//! with backoff and records its health), keeps those its filter admits,
//! adds the latest signed checkpoint, formats and sends.

use async_trait::async_trait;
use countersign_audit::AuditEvent;
use countersign_channels::{DeliveryError, Sink};
use countersign_gateway::AppState;

use crate::config::{Destination, SiemConfig, SyslogFormat, SyslogTransport};
use crate::record::{Exported, CHECKPOINT_KEY, CHECKPOINT_NAMESPACE};
use crate::transport::{self, Datagrams, Stream};
use crate::{hec, ocsf, otlp, syslog, SetupError};

/// How a sink sends, built once.
#[derive(Debug)]
enum Wire {
    Stream(Stream, SyslogFormat),
    Udp(Datagrams, SyslogFormat),
    Http(reqwest::Client),
    File,
}

/// A SIEM sink.
#[derive(Debug)]
pub struct SiemSink {
    state: AppState,
    config: SiemConfig,
    wire: Wire,
}

impl SiemSink {
    pub fn new(state: AppState, config: SiemConfig) -> Result<Self, SetupError> {
        let wire = match &config.destination {
            Destination::Syslog { transport: SyslogTransport::Tcp, address, format } => {
                Wire::Stream(Stream::tcp(address), *format)
            }
            Destination::Syslog { transport: SyslogTransport::Tls { ca_pem, server_name }, address, format } => {
                Wire::Stream(Stream::tls(address, ca_pem, server_name)?, *format)
            }
            Destination::Syslog { transport: SyslogTransport::Udp, address, format } => {
                Wire::Udp(Datagrams::new(address), *format)
            }
            Destination::OcsfHttp { ca_pem, .. }
            | Destination::SplunkHec { ca_pem, .. }
            | Destination::Otlp { ca_pem, .. } => Wire::Http(transport::http_client(ca_pem.as_deref())?),
            Destination::OcsfFile { .. } => Wire::File,
        };
        Ok(Self { state, config, wire })
    }

    /// The latest signed checkpoint, if the gateway has made one.
    async fn checkpoint(&self) -> Result<Option<String>, DeliveryError> {
        Ok(self.state.key_values(CHECKPOINT_NAMESPACE).get(CHECKPOINT_KEY).await?)
    }

    async fn send(&self, record: &Exported) -> Result<(), DeliveryError> {
        match (&self.wire, &self.config.destination) {
            (Wire::Stream(stream, format), _) => {
                stream.send(&syslog::octet_counted(&syslog::message(record, *format))).await
            }
            (Wire::Udp(datagrams, format), _) => datagrams.send(syslog::message(record, *format).as_bytes()).await,
            (Wire::Http(client), Destination::OcsfHttp { url, token, .. }) => {
                let body = ocsf::event(record, &record.mapping).to_string().into_bytes();
                let auth = token.as_ref().map(|t| format!("Bearer {}", t.expose()));
                transport::post(client, url, "application/json", auth, body).await
            }
            (Wire::Http(client), Destination::SplunkHec { url, token, index, .. }) => {
                let body = hec::envelope(record, index.as_deref()).to_string().into_bytes();
                let auth = Some(format!("Splunk {}", token.expose()));
                transport::post(client, &format!("{url}{}", hec::PATH), "application/json", auth, body).await
            }
            (Wire::Http(client), Destination::Otlp { url, token, .. }) => {
                let auth = token.as_ref().map(|t| format!("Bearer {}", t.expose()));
                transport::post(
                    client,
                    &format!("{url}/v1/logs"),
                    "application/x-protobuf",
                    auth,
                    otlp::request(record),
                )
                .await
            }
            (Wire::File, Destination::OcsfFile { path }) => {
                let mut line = ocsf::event(record, &record.mapping).to_string().into_bytes();
                line.push(b'\n');
                transport::append(path, line).await
            }
            // `new` builds the wire from the destination: these pairs do not occur.
            (Wire::Http(_), Destination::Syslog { .. } | Destination::OcsfFile { .. }) | (Wire::File, _) => {
                Err(DeliveryError::Permanent("the sink's transport does not fit its type".to_owned()))
            }
        }
    }
}

#[async_trait]
impl Sink for SiemSink {
    fn name(&self) -> String {
        self.config.name.clone()
    }

    fn target(&self) -> String {
        match &self.config.destination {
            Destination::Syslog { transport, address, format } => {
                let scheme = match transport {
                    SyslogTransport::Tcp => "syslog+tcp",
                    SyslogTransport::Tls { .. } => "syslog+tls",
                    SyslogTransport::Udp => "syslog+udp",
                };
                let format = match format {
                    SyslogFormat::Cef => "cef",
                    SyslogFormat::Json => "json",
                };
                format!("{scheme}://{address} ({format})")
            }
            Destination::OcsfHttp { url, .. } => format!("OCSF {}", countersign_channels::health::origin(url)),
            Destination::OcsfFile { path } => format!("OCSF file {}", path.display()),
            Destination::SplunkHec { url, .. } => format!("Splunk HEC {}", countersign_channels::health::origin(url)),
            Destination::Otlp { url, .. } => format!("OTLP {}", countersign_channels::health::origin(url)),
        }
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        let mapping = ocsf::map(&event.parsed());
        self.config.filter.admits(&event.kind, mapping.severity, mapping.refusal)
    }

    fn max_attempts(&self) -> Option<u32> {
        self.config.max_attempts
    }

    async fn deliver(&self, event: &AuditEvent, _attempt: u32) -> Result<(), DeliveryError> {
        let record = Exported::new(event.clone(), self.checkpoint().await?, &self.config.host);
        let result = self.send(&record).await;
        if result.is_ok() {
            self.state.metrics().set_siem_exported(&self.config.name, event.seq);
        }
        result
    }
}
