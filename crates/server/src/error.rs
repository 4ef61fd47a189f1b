//! The one mapping from everything that can go wrong in a request to an
//! HTTP status and a JSON body `{"error": {"code", "message"}}`.
//!
//! Client mistakes get 4xx with a stable code; internal failures get a
//! generic 5xx whose detail goes to the log only, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_core::{ActionError, Refusal};
use countersign_store::StoreError;
use serde_json::json;

pub use countersign_gateway::error::RATE_LIMITED;
use countersign_gateway::identify::AuthError;
use countersign_gateway::{GatewayError, RateLimited};

/// An error answered to an API client: what a gateway operation said, or
/// what the HTTP layer itself found wrong with the call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A gateway operation's error.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A route's own permission check (reading the audit log, …).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A body, query or parameter that does not read.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the JSON body is nested deeper than {limit} levels")]
    TooDeep { limit: usize },
}

/// Marks a response as a refusal, so the audit middleware records it
/// (unless the store already did, in the same transaction as the check).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    pub audited: bool,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Gateway(e) => e.code(),
            Self::Forbidden { code, .. } | Self::BadRequest { code, .. } => code,
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::TooDeep { .. } => "payload_too_deep",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Gateway(e) => gateway_status(e),
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } | Self::TooDeep { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }

    pub fn not_found(id: &str) -> Self {
        Self::Gateway(GatewayError::not_found(id))
    }
}

/// The HTTP status of a gateway error: the one place it is decided.
pub fn gateway_status(error: &GatewayError) -> StatusCode {
    match error {
        GatewayError::Unauthenticated(AuthError::Store(_))
        | GatewayError::Unavailable(_)
        | GatewayError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        GatewayError::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected) => {
            StatusCode::UNAUTHORIZED
        }
        GatewayError::NotFound { .. } => StatusCode::NOT_FOUND,
        GatewayError::HumansOnly | GatewayError::NoEmail => StatusCode::FORBIDDEN,
        GatewayError::AlreadyExists { .. }
        | GatewayError::Unfingerprintable(_)
        | GatewayError::InvalidComment
        | GatewayError::InvalidAction(ActionError::TooDeep { .. } | ActionError::TooManyValues) => {
            StatusCode::BAD_REQUEST
        }
        GatewayError::InvalidAction(_) | GatewayError::PolicyInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        GatewayError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        GatewayError::Refused(refusal) => refusal_status(refusal),
        GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::SelfApproval | Refusal::NotAnApprover | Refusal::NotRequester | Refusal::StepUpRequired => {
            StatusCode::FORBIDDEN
        }
        Refusal::NotPending(_)
        | Refusal::NotOpen(_)
        | Refusal::Expired
        | Refusal::DuplicateVote
        | Refusal::NotApproved(_)
        | Refusal::AlreadyReleased
        | Refusal::OutcomeNotAccepted(_)
        | Refusal::OutcomeAlreadyReported => StatusCode::CONFLICT,
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Gateway(GatewayError::from(error))
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::Gateway(GatewayError::Unauthenticated(error))
    }
}

impl From<RateLimited> for ApiError {
    fn from(limited: RateLimited) -> Self {
        Self::Gateway(GatewayError::RateLimited(limited))
    }
}

impl From<crate::bearer::Unidentified> for ApiError {
    fn from(refused: crate::bearer::Unidentified) -> Self {
        Self::Gateway(GatewayError::from(refused))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = self.to_string();
        match &self {
            Self::Gateway(e) => match e.detail() {
                Some(detail) => tracing::error!(code, detail = %detail, "request failed"),
                None => tracing::debug!(code, %message, "request refused"),
            },
            Self::Forbidden { .. } | Self::BadRequest { .. } | Self::PayloadTooLarge { .. } | Self::TooDeep { .. } => {
                tracing::debug!(code, %message, "request refused")
            }
        }
        let audited = matches!(self, Self::Gateway(GatewayError::Refused(_)));
        let mut response = (status, Json(json!({"error": {"code": code, "message": message}}))).into_response();
        if let Self::Gateway(GatewayError::RateLimited(RateLimited { retry_after_secs })) = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response.extensions_mut().insert(Rejection { code, message, audited });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let e = ApiError::from(GatewayError::Internal("SELECT * FROM secret_table failed at /var/lib/x".into()));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let e = ApiError::from(StoreError::Unavailable("disk I/O error at /data".into()));
        assert!(!e.to_string().contains("/data"));
    }

    #[test]
    fn refusals_are_client_errors() {
        assert_eq!(ApiError::from(GatewayError::Refused(Refusal::SelfApproval)).status(), StatusCode::FORBIDDEN);
        assert_eq!(ApiError::from(GatewayError::Refused(Refusal::SelfApproval)).code(), "self_approval");
        assert_eq!(ApiError::from(GatewayError::Refused(Refusal::AlreadyReleased)).status(), StatusCode::CONFLICT);
    }
}
