//! The Bot Connector calls the bot makes: send an activity to a
//! conversation, replace one (card updates), read a conversation member
//! (to learn the clicker's email or UPN), and open a 1:1 conversation with
//! a user (proactive DMs). Each call carries a token
//! the bot gets from Entra ID with its app password or certificate
//! (client credentials, scope `https://api.botframework.com/.default`),
//! cached until shortly before it expires.

use std::time::{Duration, Instant};

use base64::Engine as _;
use countersign_core::Timestamp;
use countersign_gateway::config::Secret;

use crate::config::{TeamsConfig, TeamsCredential};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};

use crate::outbox::DeliveryError;
use crate::SetupError;

/// The scope of tokens for the Bot Connector.
const SCOPE: &str = "https://api.botframework.com/.default";

/// A failed connector call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot reach the Bot Connector: {0}")]
    Transport(String),
    #[error("the Bot Connector answered HTTP {0}")]
    Status(u16),
    #[error("cannot get a bot token: {0}")]
    Token(String),
    #[error("the Bot Connector answered without {0}")]
    Malformed(&'static str),
}

impl From<ConnectorError> for DeliveryError {
    fn from(e: ConnectorError) -> Self {
        match &e {
            ConnectorError::Status(400 | 403 | 404) => Self::Permanent(e.to_string()),
            ConnectorError::Status(_)
            | ConnectorError::Transport(_)
            | ConnectorError::Token(_)
            | ConnectorError::Malformed(_) => Self::Transient(e.to_string()),
        }
    }
}

/// A conversation member as the connector describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
    /// The Entra ID object id, when the connector tells.
    pub aad_object_id: Option<String>,
    pub display: String,
}

enum Credential {
    Password(Secret),
    Certificate { thumbprint: String, key: Box<EncodingKey> },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(***)"),
            Self::Certificate { thumbprint, .. } => write!(f, "Certificate({thumbprint})"),
        }
    }
}

/// A Bot Connector client for one bot.
#[derive(Debug)]
pub struct Connector {
    http: reqwest::Client,
    app_id: String,
    token_url: String,
    credential: Credential,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl Connector {
    pub(crate) fn new(http: reqwest::Client, config: &TeamsConfig) -> Result<Self, SetupError> {
        let credential = match &config.credential {
            TeamsCredential::Password(secret) => Credential::Password(secret.clone()),
            TeamsCredential::Certificate { certificate_pem, private_key_pem } => {
                let der = pem_der(certificate_pem, "CERTIFICATE")
                    .ok_or_else(|| SetupError::Teams("`certificate_file` holds no PEM certificate".to_owned()))?;
                let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha1::digest(&der));
                let key = EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes())
                    .map_err(|_| SetupError::Teams("`private_key_file` holds no PEM RSA private key".to_owned()))?;
                Credential::Certificate { thumbprint, key: Box::new(key) }
            }
        };
        Ok(Self {
            http,
            app_id: config.app_id.clone(),
            token_url: config.token_url.clone(),
            credential,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// Sends `activity` to a conversation; returns the new activity's id.
    pub async fn send(
        &self,
        service_url: &str,
        conversation: &str,
        activity: &Value,
    ) -> Result<String, ConnectorError> {
        let url = format!("{}/v3/conversations/{}/activities", base(service_url), encode(conversation));
        let answer = self.call(reqwest::Method::POST, &url, Some(activity)).await?;
        Ok(answer.get("id").and_then(Value::as_str).unwrap_or_default().to_owned())
    }

    /// Opens a 1:1 conversation between the bot and `account`
    /// (`POST /v3/conversations`; Teams returns the existing one if there
    /// is one); returns its id.
    pub async fn create_conversation(
        &self,
        service_url: &str,
        account: &super::accounts::Account,
    ) -> Result<String, ConnectorError> {
        let url = format!("{}/v3/conversations", base(service_url));
        let mut parameters = json!({
            "isGroup": false,
            "bot": {"id": format!("28:{}", self.app_id)},
            "members": [{"id": account.member}],
        });
        if let Some(tenant) = &account.tenant {
            parameters["tenantId"] = json!(tenant);
            parameters["channelData"] = json!({"tenant": {"id": tenant}});
        }
        let answer = self.call(reqwest::Method::POST, &url, Some(&parameters)).await?;
        answer
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or(ConnectorError::Malformed("a conversation id"))
    }

    /// Replaces activity `id` (a card update).
    pub async fn update(
        &self,
        service_url: &str,
        conversation: &str,
        id: &str,
        activity: &Value,
    ) -> Result<(), ConnectorError> {
        let url = format!("{}/v3/conversations/{}/activities/{}", base(service_url), encode(conversation), encode(id));
        self.call(reqwest::Method::PUT, &url, Some(activity)).await?;
        Ok(())
    }

    /// A member of a conversation, with their email and UPN when Teams tells.
    pub async fn member(&self, service_url: &str, conversation: &str, member: &str) -> Result<Member, ConnectorError> {
        let url = format!("{}/v3/conversations/{}/members/{}", base(service_url), encode(conversation), encode(member));
        let answer = self.call(reqwest::Method::GET, &url, None).await?;
        let text = |key: &str| answer.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Member {
            email: text("email"),
            user_principal_name: text("userPrincipalName"),
            aad_object_id: text("aadObjectId"),
            display: text("name").or_else(|| text("userPrincipalName")).unwrap_or_else(|| member.to_owned()),
        })
    }

    async fn call(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Result<Value, ConnectorError> {
        let token = self.token().await?;
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ConnectorError::Transport(kind(&e)))?;
        let status = response.status();
        if status.as_u16() == 401 {
            // A revoked or rotated token: get a new one next time.
            *self.token.lock().await = None;
        }
        if !status.is_success() {
            return Err(ConnectorError::Status(status.as_u16()));
        }
        let text = response.text().await.map_err(|e| ConnectorError::Transport(kind(&e)))?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A bot token, from the cache while it has a few minutes left.
    async fn token(&self) -> Result<String, ConnectorError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let mut form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), self.app_id.clone()),
            ("scope".to_owned(), SCOPE.to_owned()),
        ];
        match &self.credential {
            Credential::Password(secret) => form.push(("client_secret".to_owned(), secret.expose().to_owned())),
            Credential::Certificate { thumbprint, key } => {
                form.push((
                    "client_assertion_type".to_owned(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion".to_owned(), self.assertion(thumbprint, key)?));
            }
        }
        let response =
            self.http.post(&self.token_url).form(&form).send().await.map_err(|e| ConnectorError::Token(kind(&e)))?;
        if !response.status().is_success() {
            return Err(ConnectorError::Token(format!("HTTP {}", response.status())));
        }
        let answer: Value = response.json().await.map_err(|e| ConnectorError::Token(kind(&e)))?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Token("no access_token".to_owned()))?
            .to_owned();
        let lifetime = answer.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(300).max(30));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    /// A client assertion signed with the certificate's key (RFC 7523), as
    /// Entra ID expects: `x5t` names the certificate.
    fn assertion(&self, thumbprint: &str, key: &EncodingKey) -> Result<String, ConnectorError> {
        let now = Timestamp::now().as_millis() / 1000;
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some(thumbprint.to_owned());
        let claims = json!({
            "aud": self.token_url, "iss": self.app_id, "sub": self.app_id,
            "jti": uuid::Uuid::now_v7().to_string(), "nbf": now, "iat": now, "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, key)
            .map_err(|_| ConnectorError::Token("cannot sign the assertion".to_owned()))
    }
}

fn base(service_url: &str) -> &str {
    service_url.trim_end_matches('/')
}

/// Conversation ids hold `:`, `@` and `;`: escape them for a path segment.
fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
    .to_owned()
}

/// The DER bytes of the first PEM block labelled `label`.
fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_are_escaped() {
        assert_eq!(encode("19:abc@thread.tacv2;messageid=1"), "19%3Aabc%40thread.tacv2%3Bmessageid%3D1");
    }

    #[tokio::test]
    async fn a_certificate_credential_sends_a_signed_client_assertion() {
        use axum::routing::post;
        use std::sync::{Arc, Mutex};

        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().route(
            "/token",
            post(move |body: String| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(body);
                    axum::Json(json!({"access_token": "t", "expires_in": 3600}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token_url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let certificate_pem = include_str!("../../tests/fixtures/bot-cert.pem").to_owned();
        let config = TeamsConfig {
            app_id: "app-1".into(),
            credential: TeamsCredential::Certificate {
                certificate_pem: certificate_pem.clone(),
                private_key_pem: Secret::new(include_str!("../../tests/fixtures/bot-signing-key.pem").into()),
            },
            token_url: token_url.clone(),
            openid_metadata_url: "http://127.0.0.1:9/openid".into(),
            service_url: "http://127.0.0.1:9/".into(),
            conversation: None,
            users: Default::default(),
        };
        let connector = Connector::new(crate::http::client().unwrap(), &config).unwrap();
        assert_eq!(connector.token().await.unwrap(), "t");
        assert_eq!(connector.token().await.unwrap(), "t", "cached");
        let bodies = seen.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1);
        let form: std::collections::HashMap<String, String> =
            form_urlencoded::parse(bodies[0].as_bytes()).into_owned().collect();
        assert_eq!(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        assert!(!form.contains_key("client_secret"));
        let assertion = &form["client_assertion"];
        // x5t names the certificate: base64url(SHA-1(DER)).
        let header = jsonwebtoken::decode_header(assertion).unwrap();
        let der = pem_der(&certificate_pem, "CERTIFICATE").unwrap();
        assert_eq!(header.x5t, Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha1::digest(&der))));
        // Signed by the certificate's key, for the token endpoint, by and about the app.
        let jwks: Value = serde_json::from_str(include_str!("../../tests/fixtures/bot-jwks.json")).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&[token_url.as_str()]);
        validation.set_issuer(&["app-1"]);
        let claims =
            jsonwebtoken::decode::<Value>(assertion, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation)
                .unwrap()
                .claims;
        assert_eq!(claims["sub"], "app-1");
    }

    #[test]
    fn pem_blocks_decode() {
        let pem = "x\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_der(pem, "CERTIFICATE"), Some(vec![0, 1, 2, 3]));
        assert_eq!(pem_der(pem, "PRIVATE KEY"), None);
    }
}
