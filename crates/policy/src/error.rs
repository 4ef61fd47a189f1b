//! Why a policy set could not be loaded.
//!
//! Every problem that points into a file displays as
//! `<file>:<line>:<column>: <message>` (1-based, columns in characters), the
//! form editors and CI annotations understand. Loading reports every problem
//! it finds, not just the first, as [`PolicyLoadError::Multiple`].

use std::fmt;

/// A 1-based position in a policy or schema file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a policy set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("cannot read `{file}`: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A `*.cedar` (or schema) entry that is not a file to read.
    #[error("cannot read `{file}`: it is {what}")]
    NotAFile { file: String, what: &'static str },
    #[error("policy directory `{dir}` does not exist")]
    MissingDir { dir: String },
    #[error("policy directory `{dir}` contains no `*.cedar` files")]
    EmptyDir { dir: String },
    #[error("no policy files were given")]
    NoSources,
    /// Cedar could not parse the text.
    #[error("{at}: {message}")]
    Syntax { at: Location, message: String },
    #[error("{at}: templates are not supported; write a static policy without `?principal` or `?resource`")]
    Template { at: Location },
    #[error("{at}: duplicate policy id `{id}` (first used at {first})")]
    DuplicateId { id: String, at: Location, first: Location },
    /// An `@id` or approval annotation is missing, malformed or misplaced.
    #[error("{at}: policy `{policy}`: {message}")]
    Annotation { at: Location, policy: String, message: String },
    /// The schema file itself is malformed.
    #[error("{at}: {message}")]
    Schema { at: Location, message: String },
    /// A policy does not type-check against the schema (strict mode).
    #[error("{at}: policy `{policy}` fails schema validation: {message}")]
    Validation { at: Location, policy: String, message: String },
    /// Several of the above; never nested, never empty.
    #[error("{}", join_lines(.0))]
    Multiple(Vec<PolicyLoadError>),
}

fn join_lines(errors: &[PolicyLoadError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl PolicyLoadError {
    /// One line per problem, each `file:line:col: message` when the problem
    /// has a position (I/O and directory problems have none).
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::Multiple(errors) => errors.iter().flat_map(Self::problems).collect(),
            Self::Io { .. }
            | Self::NotAFile { .. }
            | Self::MissingDir { .. }
            | Self::EmptyDir { .. }
            | Self::NoSources
            | Self::Syntax { .. }
            | Self::Template { .. }
            | Self::DuplicateId { .. }
            | Self::Annotation { .. }
            | Self::Schema { .. }
            | Self::Validation { .. } => vec![self.to_string()],
        }
    }

    /// Wraps collected problems: one stays itself, several become `Multiple`.
    pub(crate) fn from_problems(mut problems: Vec<PolicyLoadError>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Self::Multiple(problems)),
        }
    }
}
