//! Audit event kinds, as constants in one place, so that producers and
//! readers cannot drift apart by a typo. (Older producers still spell some
//! kinds inline; new ones name them here.)

/// A call the HTTP API, the MCP endpoint or the console refused before or
/// after its handler (authentication, bad input, unknown route, …).
pub const REQUEST_REJECTED: &str = "request.rejected";
/// A chat integration refused an inbound call (bad signature, bad token).
pub const INTEGRATION_REJECTED: &str = "integration.rejected";
/// The state machine, or a login form, refused an attempt.
pub const ATTEMPT_REFUSED: &str = "attempt.refused";
/// Refusals from one source in one window that were counted rather than
/// recorded one by one; the body says how many, why and when.
pub const REFUSALS_AGGREGATED: &str = "refusals.aggregated";
