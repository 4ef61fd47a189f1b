//! How the console answers a gateway operation that did not go through:
//! a refusal is explained on the page it came from; a request the viewer
//! cannot see is "not found"; a failure of the gateway itself is answered
//! by the API's one mapping to HTTP.

use axum::response::{IntoResponse, Response};
use countersign_gateway::{Blame, GatewayError};
use countersign_server::ApiError;

/// What the console makes of a gateway error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No such request, or not one the viewer may see.
    NotFound,
    /// The viewer's move was refused: say why, by its code, on the page.
    Refused,
    /// The gateway could not do it (store, shutdown): not the viewer's doing.
    Broken,
}

/// Sorts a gateway error for the console.
pub fn failure(error: &GatewayError) -> Failure {
    match error.blame() {
        Blame::NotFound => Failure::NotFound,
        Blame::Unauthenticated | Blame::Caller => Failure::Refused,
        Blame::Gateway => Failure::Broken,
    }
}

/// The API's answer to `error` (status, JSON body, logged detail).
pub fn respond(error: impl Into<ApiError>) -> Response {
    error.into().into_response()
}
