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

use crate::auth::AuthError;

/// The code of a call refused because its source is rate-limited; the
/// refusal path holds such calls (see `AppState::refuse`).
pub const RATE_LIMITED: &str = "rate_limited";

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{what} `{id}` was not found")]
    NotFound { what: &'static str, id: String },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error(transparent)]
    InvalidAction(#[from] ActionError),
    /// The state machine refused the move; already audited in the store.
    #[error(transparent)]
    Refused(Refusal),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("policy reload failed; the previous policy set stays in force: {0}")]
    PolicyInvalid(String),
    #[error("the gateway is shutting down; retry shortly")]
    ShuttingDown,
    #[error("too many failed attempts from this address; retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the JSON body is nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the store is unavailable; nothing was changed")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
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
            Self::Unauthenticated(AuthError::Store(_)) => "store_unavailable",
            Self::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected) => "unauthenticated",
            Self::Forbidden { code, .. } | Self::BadRequest { code, .. } => code,
            Self::NotFound { .. } => "not_found",
            Self::InvalidAction(ActionError::TooDeep { .. }) => "payload_too_deep",
            Self::InvalidAction(ActionError::TooManyValues) => "payload_too_complex",
            Self::InvalidAction(_) => "invalid_action",
            Self::Refused(refusal) => refusal.code(),
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::PolicyInvalid(_) => "policy_invalid",
            Self::ShuttingDown => "shutting_down",
            Self::RateLimited { .. } => RATE_LIMITED,
            Self::TooDeep { .. } => "payload_too_deep",
            Self::Unavailable(_) => "store_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(AuthError::Store(_)) | Self::Unavailable(_) | Self::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Unauthenticated(AuthError::Missing | AuthError::Malformed | AuthError::Rejected) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest { .. }
            | Self::TooDeep { .. }
            | Self::InvalidAction(ActionError::TooDeep { .. } | ActionError::TooManyValues) => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidAction(_) | Self::PolicyInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Refused(refusal) => refusal_status(refusal),
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }

    pub fn not_found(id: &str) -> Self {
        Self::NotFound { what: "action", id: id.to_owned() }
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
        match error {
            StoreError::NotFound { what, name } => Self::NotFound { what, id: name },
            StoreError::AlreadyExists { what, name } => {
                Self::BadRequest { code: "already_exists", message: format!("{what} `{name}` already exists") }
            }
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Corrupt(detail) | StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = self.to_string();
        match &self {
            Self::Internal(detail) | Self::Unavailable(detail) => {
                tracing::error!(code, detail = %detail, "request failed")
            }
            Self::Unauthenticated(AuthError::Store(e)) => tracing::error!(code, detail = %e, "request failed"),
            _ => tracing::debug!(code, %message, "request refused"),
        }
        let audited = matches!(self, Self::Refused(_));
        let mut response = (status, Json(json!({"error": {"code": code, "message": message}}))).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
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
        let e = ApiError::Internal("SELECT * FROM secret_table failed at /var/lib/x".into());
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let e = ApiError::from(StoreError::Unavailable("disk I/O error at /data".into()));
        assert!(!e.to_string().contains("/data"));
    }

    #[test]
    fn refusals_are_client_errors() {
        assert_eq!(ApiError::Refused(Refusal::SelfApproval).status(), StatusCode::FORBIDDEN);
        assert_eq!(ApiError::Refused(Refusal::SelfApproval).code(), "self_approval");
        assert_eq!(ApiError::Refused(Refusal::AlreadyReleased).status(), StatusCode::CONFLICT);
    }
}
