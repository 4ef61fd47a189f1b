//! Sessions of the database endpoints (`countersign-databases`): who
//! connected to which database, from where, and how the session ended.
//! Each statement of a session is a request of its own.

use serde::{Deserialize, Serialize};

/// `database.session_opened`: a client logged in and the gateway logged in
/// to the database for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOpened {
    /// The session's id, repeated when it closes.
    pub session: String,
    /// The resource name of the database.
    pub resource: String,
    /// `postgres`.
    pub protocol: String,
    /// The client's address.
    pub peer: String,
    /// Whether the client connected over TLS.
    pub tls: bool,
}

/// `database.session_closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClosed {
    pub session: String,
    pub resource: String,
    /// `client` (it said goodbye or went away), `database` (the database
    /// ended it), `credential` (revoked or expired), `protocol` (it sent
    /// something malformed) or `shutdown`.
    pub ended_by: String,
    /// Statements forwarded to the database in the session.
    pub statements: u64,
}
