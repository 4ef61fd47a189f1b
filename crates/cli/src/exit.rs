//! Exit codes, and the error type that carries one up to `main`.
//!
//! Commands return `anyhow::Result<Exit>`. Most failures are plain errors
//! (exit 1); a failure that must end with another code wraps it in
//! [`Failure`], which `main` finds by downcasting.

use std::fmt;

/// A process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl Exit {
    pub const OK: Exit = Exit(0);
    pub const ERROR: Exit = Exit(1);
    pub const USAGE: Exit = Exit(2);
    pub const DENIED: Exit = Exit(3);
    /// Expired, revoked or cancelled.
    pub const CLOSED: Exit = Exit(4);
    /// `policy simulate`: some recorded decisions would change.
    pub const CHANGED: Exit = Exit(5);
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.0)
    }
}

/// An error that ends the process with a specific code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    /// A bad argument value that clap could not check by itself.
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self { exit: Exit::USAGE, message: message.into() })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error asks for: its [`Failure`] code, else 1.
pub fn code_of(error: &anyhow::Error) -> Exit {
    error.chain().find_map(|e| e.downcast_ref::<Failure>()).map_or(Exit::ERROR, |f| f.exit)
}

/// The help text that documents the exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error (bad input, API error, server unreachable, broken audit chain, failing policy test)
  2  usage error (unknown flag, malformed value)
  3  denied (by policy or by an approver)
  4  expired, revoked or cancelled
  5  `policy simulate`: some recorded decisions would change
`countersign exec` otherwise exits with the command's own exit code (128+N if it was killed by signal N, 127 if it could not be started).";
