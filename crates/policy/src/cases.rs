//! Policy test cases, for `countersign policy test DIR CASES` in policy
//! authors' CI.
//!
//! A cases file is JSON (an array of cases, or `{"cases": [...]}`) or TOML
//! (`[[case]]` tables), chosen by extension. Each case names a principal
//! (`{"kind": "agent"|"user", "name", "groups", "owner", "email"}`), an
//! action (as submitted to the gateway), and optionally what to expect:
//!
//! ```json
//! [{
//!   "name": "pii query on prod needs two dbas",
//!   "principal": {"kind": "agent", "name": "report-bot", "groups": ["analytics"]},
//!   "action": {"kind": "sql.execute", "resource": "prod-db",
//!              "payload": {"statement": "SELECT email FROM users"}, "labels": ["pii"]},
//!   "expect": "pending",
//!   "expect_policies": ["prod-needs-sre", "prod-pii-sql-needs-two-dbas"]
//! }]
//! ```
//!
//! `expect` is `allowed`, `pending` (allowed once approved) or `denied`;
//! `expect_policies` lists the determining policies in any order. A case
//! without expectations always passes and just reports the decision.

use std::collections::HashSet;
use std::path::Path;

use countersign_core::{Action, Principal};
use serde::{Deserialize, Serialize};

use crate::{PolicyEngine, Verdict};

/// One test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub principal: Principal,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// The determining policies, in any order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_policies: Option<Vec<String>>,
}

/// A decision's outcome as cases name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Allowed at once.
    Allowed,
    /// Allowed once approved.
    Pending,
    Denied,
}

impl Expect {
    pub fn of(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Allow => Self::Allowed,
            Verdict::RequireApproval(_) => Self::Pending,
            Verdict::Deny => Self::Denied,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Pending => "pending",
            Self::Denied => "denied",
        }
    }
}

/// What happened to one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub outcome: Expect,
    /// The determining policies, sorted.
    pub policies: Vec<String>,
    pub reason: String,
    pub errors: Vec<String>,
    /// True when the case has no expectation or every expectation matched.
    pub passed: bool,
}

/// Why a cases file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("`{file}`: unknown cases format; name the file `*.json` or `*.toml`")]
    UnknownFormat { file: String },
    /// The file does not parse, or a case does not have the expected shape.
    #[error("{}: {message}", position(.file, *.line, *.column))]
    Syntax { file: String, line: Option<usize>, column: Option<usize>, message: String },
    #[error("{file}: no cases")]
    NoCases { file: String },
    #[error("{file}: case {index} has an empty `name`")]
    EmptyName { file: String, index: usize },
    #[error("{file}: duplicate case name `{name}`")]
    DuplicateName { file: String, name: String },
    /// The action would be refused by the gateway before any policy saw it.
    #[error("{file}: case `{name}`: invalid action: {message}")]
    InvalidAction { file: String, name: String, message: String },
}

fn position(file: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
        (Some(line), None) => format!("{file}:{line}"),
        (None, Some(_)) | (None, None) => file.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlCases {
    #[serde(default)]
    case: Vec<Case>,
}

/// Parses a cases file; the format follows the extension of `file_name`.
pub fn parse_cases(file_name: &str, text: &str) -> Result<Vec<Case>, CaseError> {
    let file = file_name.to_owned();
    let extension = Path::new(file_name).extension().map(|e| e.to_string_lossy().to_lowercase());
    let cases = match extension.as_deref() {
        Some("json") => parse_json(&file, text)?,
        Some("toml") => parse_toml(&file, text)?,
        Some(_) | None => return Err(CaseError::UnknownFormat { file }),
    };
    check(&file, &cases)?;
    Ok(cases)
}

fn parse_json(file: &str, text: &str) -> Result<Vec<Case>, CaseError> {
    let syntax = |e: serde_json::Error| CaseError::Syntax {
        file: file.to_owned(),
        line: Some(e.line()),
        column: Some(e.column()),
        message: e.to_string().split(" at line ").next().unwrap_or_default().to_owned(),
    };
    if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<Case>>(text).map_err(syntax)
    } else {
        serde_json::from_str::<JsonCases>(text).map(|c| c.cases).map_err(syntax)
    }
}

fn parse_toml(file: &str, text: &str) -> Result<Vec<Case>, CaseError> {
    toml::from_str::<TomlCases>(text).map(|c| c.case).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or(before).chars().count() + 1;
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        CaseError::Syntax { file: file.to_owned(), line, column, message: crate::source::one_line(e.message()) }
    })
}

fn check(file: &str, cases: &[Case]) -> Result<(), CaseError> {
    if cases.is_empty() {
        return Err(CaseError::NoCases { file: file.to_owned() });
    }
    let mut names = HashSet::new();
    for (index, case) in cases.iter().enumerate() {
        if case.name.trim().is_empty() {
            return Err(CaseError::EmptyName { file: file.to_owned(), index: index + 1 });
        }
        if !names.insert(case.name.as_str()) {
            return Err(CaseError::DuplicateName { file: file.to_owned(), name: case.name.clone() });
        }
        case.action.validate().map_err(|e| CaseError::InvalidAction {
            file: file.to_owned(),
            name: case.name.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Decides every case with [`PolicyEngine::decide`] and compares.
pub fn run(engine: &PolicyEngine, cases: &[Case]) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|case| {
            let decision = engine.decide(&case.principal, &case.action);
            let outcome = Expect::of(&decision.verdict);
            let outcome_ok = case.expect.is_none_or(|expected| expected == outcome);
            let policies_ok = case.expect_policies.as_ref().is_none_or(|expected| {
                let mut expected = expected.clone();
                expected.sort();
                expected.dedup();
                expected == decision.policies
            });
            CaseResult {
                name: case.name.clone(),
                outcome,
                policies: decision.policies,
                reason: decision.reason,
                errors: decision.errors,
                passed: outcome_ok && policies_ok,
            }
        })
        .collect()
}
