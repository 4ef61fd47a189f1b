//! The gateway as the API server's client: the request sent exactly as
//! decided, with the gateway's own credential (a bearer token, or a TLS
//! client certificate) and never the agent's, redirects not followed.
//! The answer is streamed back by [`countersign_http::forward`].

use axum::http::{header, HeaderMap, HeaderValue};
use countersign_http::forward::Unreachable;
use countersign_http::redact::Secrets;
use countersign_http::request::Incoming;

use crate::config::{Credential, KubernetesConfig};

/// One configured cluster, and how the gateway reaches its API server.
#[derive(Debug)]
pub struct Upstream {
    pub config: KubernetesConfig,
    client: reqwest::Client,
    /// `Authorization: Bearer …`, marked sensitive; none with a client certificate.
    authorization: Option<HeaderValue>,
    /// The token, never passed back, even when the API server answers
    /// with it (a Secret holding it): [`countersign_http::redact`].
    pub secrets: Secrets,
}

impl Upstream {
    /// The client for `config`; an error when its CA or credential cannot
    /// be used.
    pub fn new(config: KubernetesConfig) -> Result<Self, String> {
        let mut builder = countersign_http::upstream::client_builder(config.ca_pem.as_deref())?;
        let (authorization, secrets) = match &config.credential {
            Credential::Token(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| "the token is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                (Some(value), Secrets::of(&[token.expose().as_bytes()]))
            }
            Credential::Certificate(pem) => {
                let identity = reqwest::Identity::from_pem(pem.expose().as_bytes())
                    .map_err(|_| "the client certificate or key cannot be used".to_owned())?;
                builder = builder.identity(identity);
                // The key never crosses the wire, but a Secret may hold it.
                (None, Secrets::of(&[private_key(pem.expose()).as_bytes()]))
            }
        };
        let client = builder.build().map_err(|e| format!("cannot set up the Kubernetes client: {e}"))?;
        Ok(Self { config, client, authorization, secrets })
    }

    /// The URL `incoming` goes to; it stays on the API server.
    fn url(&self, path: &str, query: Option<&str>) -> Result<reqwest::Url, Unreachable> {
        let server = &self.config.server;
        let mut text = format!("{}{}", server.as_str().trim_end_matches('/'), path);
        if let Some(query) = query {
            text.push('?');
            text.push_str(query);
        }
        let url = reqwest::Url::parse(&text).map_err(|_| Unreachable::Request(self.config.name.clone()))?;
        if url.scheme() != server.scheme() || url.host_str() != server.host_str() || url.port() != server.port() {
            return Err(Unreachable::Request(self.config.name.clone()));
        }
        Ok(url)
    }

    /// Sends `incoming` to the API server.
    pub async fn send(&self, incoming: &Incoming) -> Result<reqwest::Response, Unreachable> {
        self.send_as(incoming, incoming.query.as_deref()).await
    }

    /// Sends `incoming` asking to switch to the `upgrade` protocol
    /// (WebSocket or SPDY, for exec, attach and port-forward).
    pub async fn send_upgrade(
        &self,
        incoming: &Incoming,
        upgrade: &HeaderValue,
    ) -> Result<reqwest::Response, Unreachable> {
        self.send_with(incoming, incoming.query.as_deref(), Some(upgrade)).await
    }

    /// Sends `incoming` with `query` in place of its own (a dry run of it).
    pub async fn send_as(&self, incoming: &Incoming, query: Option<&str>) -> Result<reqwest::Response, Unreachable> {
        self.send_with(incoming, query, None).await
    }

    async fn send_with(
        &self,
        incoming: &Incoming,
        query: Option<&str>,
        upgrade: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, Unreachable> {
        let name = &self.config.name;
        let url = self.url(&incoming.path, query)?;
        let mut headers = HeaderMap::with_capacity(incoming.headers.len() + 3);
        for (header_name, value) in &incoming.headers {
            headers.append(header_name.clone(), value.clone());
        }
        if let Some(protocol) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        if let Some(value) = &self.authorization {
            headers.insert(header::AUTHORIZATION, value.clone());
        }
        let request = self.client.request(incoming.method.clone(), url).headers(headers).body(incoming.body.clone());
        request.send().await.map_err(|e| {
            if e.is_timeout() {
                Unreachable::Timeout(name.clone())
            } else {
                tracing::debug!(cluster = %name, error = %e.without_url(), "the request to the API server failed");
                Unreachable::Connect(name.clone())
            }
        })
    }
}

/// The private key block of a PEM bundle (empty when there is none).
fn private_key(pem: &str) -> &str {
    let starts_key =
        |i: &usize| pem.get(*i..).and_then(|r| r.lines().next()).is_some_and(|l| l.contains("PRIVATE KEY"));
    let Some(begin) = pem.match_indices("-----BEGIN").map(|(i, _)| i).find(starts_key) else { return "" };
    let rest = pem.get(begin..).unwrap_or_default();
    let end = rest.find("-----END").and_then(|e| Some(e + rest.get(e..)?.find("KEY-----")? + "KEY-----".len()));
    end.and_then(|end| rest.get(..end)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_of_a_bundle_is_what_is_never_passed_back() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIc\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIk\n-----END PRIVATE KEY-----\n";
        assert_eq!(private_key(pem), "-----BEGIN PRIVATE KEY-----\nMIIk\n-----END PRIVATE KEY-----");
        assert_eq!(private_key("-----BEGIN CERTIFICATE-----\nMIIc\n-----END CERTIFICATE-----\n"), "");
    }
}
