//! Errors a store reports.

/// What went wrong in a store call. Messages never include SQL or paths
/// that an API client should not see; `Unavailable` and `Internal` keep
/// their detail for the logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{what} `{name}` was not found")]
    NotFound { what: &'static str, name: String },
    #[error("{what} `{name}` already exists")]
    AlreadyExists { what: &'static str, name: String },
    /// The database cannot be reached or is locked past the busy timeout.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store error: {0}")]
    Internal(String),
}
