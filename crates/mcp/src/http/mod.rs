//! Streamable HTTP at `/mcp/{upstream}` on the gateway.

use axum::Router;
use countersign_server::AppState;

/// The MCP routes.
pub fn router(_state: AppState) -> Router {
    Router::new()
}
