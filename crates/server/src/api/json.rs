//! A JSON body extractor whose failures are API errors (`invalid_json`,
//! `body_too_large`, `payload_too_deep`) rather than axum's plain-text
//! rejections. A body whose objects repeat a key, or use a key the JSON
//! parser reserves (`$serde_json::private::…`), at any depth, is refused
//! (`invalid_json`).
//!
//! Nesting is bounded before anything is parsed: a body nested deeper than
//! [`MAX_JSON_DEPTH`] is refused by a flat scan of its bytes, so no value
//! deeper than that is ever built, and nothing downstream that walks a
//! value recursively (fingerprints, facts, policy context, audit
//! canonicalisation, dropping it) can run out of stack.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use countersign_core::json;
use serde::de::DeserializeOwned;

use crate::config::ServerConfig;
use crate::error::ApiError;
use countersign_gateway::AppState;

/// A JSON request body. An empty body reads as `{}` where `T` allows it.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = request.extensions().get::<Arc<ServerConfig>>().map_or(0, |server| server.body_limit_bytes);
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                ApiError::PayloadTooLarge { limit }
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        if json_depth_exceeds(text, MAX_JSON_DEPTH) {
            return Err(ApiError::TooDeep { limit: MAX_JSON_DEPTH });
        }
        // serde keeps the last copy of a repeated key inside free-form
        // values (the payload): the body could mean one action to the
        // policy and another to whatever runs it; and it reads a key it
        // reserves as an instruction (a string parsed as more JSON). Both
        // are refused at any depth before a value is built, after the
        // depth bound above, which also bounds this walk.
        let value = json::from_slice(text)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?;
        Ok(ApiJson(value))
    }
}

/// The deepest nesting of arrays and objects a request body may have
/// (the body's own object is level 1).
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `text` nests arrays and objects deeper than `limit`, by one pass
/// over its bytes that keeps no stack. Text that is not JSON is left to the
/// parser to refuse.
pub fn json_depth_exceeds(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, _) => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Query parameters whose failures are `invalid_query` API errors.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert!(!json_depth_exceeds(br#"{"a":[1,{"b":[]}]}"#, 4));
        assert!(json_depth_exceeds(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[\"[[[["}"#, 1));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(json_depth_exceeds(deep.as_bytes(), MAX_JSON_DEPTH));
        let at_limit = format!("{}{}", "[".repeat(MAX_JSON_DEPTH), "]".repeat(MAX_JSON_DEPTH));
        assert!(!json_depth_exceeds(at_limit.as_bytes(), MAX_JSON_DEPTH));
        let wide = format!("[{}]", "[],".repeat(100_000) + "[]");
        assert!(!json_depth_exceeds(wide.as_bytes(), 2));
    }
}
