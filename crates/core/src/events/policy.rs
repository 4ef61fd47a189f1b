//! The events of the policy set: loads, failed loads, and sets adopted
//! from another replica.

use serde::{Deserialize, Serialize};

/// `policy.loaded`: a set was loaded (at start or on reload) and is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLoaded {
    pub hash: String,
    /// The set it replaced (`null` at start).
    pub previous_hash: Option<String>,
    pub files: Vec<String>,
    /// How many policies it holds.
    pub policies: usize,
}

/// `policy.load_failed`: a set did not load; the set in force stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLoadFailed {
    /// The hash another replica advertised (absent for a local reload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// One problem a line.
    pub problems: Vec<String>,
    pub kept_hash: String,
    /// `shared` when the set came from another replica (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `policy.adopted`: the set another replica loaded is now in force here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAdopted {
    pub hash: String,
    pub previous_hash: String,
    pub files: Vec<String>,
    pub policies: usize,
    /// `shared`.
    pub source: String,
}
