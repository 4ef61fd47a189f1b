//! Which evidence in a pack answers which control auditors ask about, and
//! what the period's evidence says for each.
//!
//! The mapping is ours, stated plainly so an auditor can disagree with it:
//! a control is "met" when the evidence it names shows no exception, an
//! "exception" when the evidence shows one (a broken chain, a vote that
//! segregation of duties forbids), and "no activity" when the period holds
//! nothing the control covers.

use serde::Serialize;

use crate::report::Report;

/// The sections of a pack, by the names the HTML uses as anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Verification,
    Actions,
    Segregation,
    Refusals,
    TimeToDecision,
    Closures,
    Revocations,
    PolicyChanges,
}

impl Section {
    pub fn anchor(self) -> &'static str {
        match self {
            Self::Verification => "verification",
            Self::Actions => "actions",
            Self::Segregation => "segregation",
            Self::Refusals => "refusals",
            Self::TimeToDecision => "time-to-decision",
            Self::Closures => "closures",
            Self::Revocations => "revocations",
            Self::PolicyChanges => "policy-changes",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Verification => "Log verification",
            Self::Actions => "Privileged actions",
            Self::Segregation => "Segregation of duties",
            Self::Refusals => "Refused attempts",
            Self::TimeToDecision => "Time to decision",
            Self::Closures => "Expiries and revocations",
            Self::Revocations => "Identity revocations",
            Self::PolicyChanges => "Policy changes",
        }
    }
}

/// What the period's evidence says for a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Exception,
    NoActivity,
}

/// One control with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct ControlEvidence {
    pub framework: &'static str,
    pub control: &'static str,
    pub title: &'static str,
    pub evidence: Vec<Section>,
    pub status: Status,
    pub finding: String,
}

/// What a control is about, which decides how its status is judged.
#[derive(Debug, Clone, Copy)]
enum Concern {
    /// Privileged changes were authorised before they ran.
    ChangeApproval,
    /// No one approved their own request; quorums were distinct people.
    Segregation,
    /// The log is complete and unaltered.
    LogIntegrity,
    /// Who did what can be shown and not denied.
    Attribution,
    /// Access was granted and withdrawn through recorded steps.
    AccessLifecycle,
    /// Unauthorised attempts were refused and recorded.
    Monitoring,
}

const CONTROLS: [(&str, &str, &str, Concern, &[Section]); 12] = [
    (
        "SOC 2",
        "CC6.1",
        "Logical access: only authorised people and agents reach protected resources",
        Concern::ChangeApproval,
        &[Section::Actions, Section::Refusals],
    ),
    (
        "SOC 2",
        "CC6.2 / CC6.3",
        "Access is granted, changed and removed through an authorised process",
        Concern::AccessLifecycle,
        &[Section::Revocations, Section::Closures],
    ),
    ("SOC 2", "CC7.2", "Anomalies and unauthorised attempts are detected", Concern::Monitoring, &[Section::Refusals]),
    (
        "SOC 2",
        "CC8.1",
        "Changes are authorised, approved and recorded before they are made",
        Concern::ChangeApproval,
        &[Section::Actions, Section::TimeToDecision, Section::PolicyChanges],
    ),
    (
        "ISO 27001:2022",
        "A.5.3",
        "Segregation of duties",
        Concern::Segregation,
        &[Section::Segregation, Section::Actions],
    ),
    (
        "ISO 27001:2022",
        "A.8.2",
        "Privileged access rights",
        Concern::ChangeApproval,
        &[Section::Actions, Section::Refusals],
    ),
    (
        "ISO 27001:2022",
        "A.8.15",
        "Logging: logs are produced, kept and protected",
        Concern::LogIntegrity,
        &[Section::Verification],
    ),
    (
        "ISO 27001:2022",
        "A.8.32",
        "Change management",
        Concern::ChangeApproval,
        &[Section::Actions, Section::PolicyChanges],
    ),
    ("NIST 800-53", "AU-9", "Protection of audit information", Concern::LogIntegrity, &[Section::Verification]),
    ("NIST 800-53", "AU-10", "Non-repudiation", Concern::Attribution, &[Section::Verification, Section::Actions]),
    ("NIST 800-53", "AC-5", "Separation of duties", Concern::Segregation, &[Section::Segregation]),
    ("NIST 800-53", "AC-2", "Account management", Concern::AccessLifecycle, &[Section::Revocations]),
];

/// Every mapped control, judged on `report`.
pub fn assess(report: &Report) -> Vec<ControlEvidence> {
    CONTROLS
        .iter()
        .map(|(framework, control, title, concern, evidence)| {
            let (status, finding) = judge(*concern, report);
            ControlEvidence { framework, control, title, evidence: evidence.to_vec(), status, finding }
        })
        .collect()
}

fn judge(concern: Concern, report: &Report) -> (Status, String) {
    let log_ok = log_ok(report);
    match concern {
        Concern::LogIntegrity => match (log_ok, &report.verification.checkpoint) {
            (true, Some(_)) => (
                Status::Met,
                format!(
                    "the hash chain of {} events verified, and matches a signed checkpoint",
                    report.verification.events
                ),
            ),
            (true, None) => (
                Status::Met,
                format!(
                    "the hash chain of {} events verified; no signed checkpoint was checked, so a truncated tail would not show",
                    report.verification.events
                ),
            ),
            (false, _) => (Status::Exception, log_problem(report)),
        },
        Concern::Attribution => match log_ok {
            true => (
                Status::Met,
                format!("every one of {} names the identity that submitted it and each vote names its person", count(report.totals.submitted, "action")),
            ),
            false => (Status::Exception, log_problem(report)),
        },
        Concern::Segregation => {
            let violations = report.segregation.violations.len();
            match (violations, report.segregation.votes_checked) {
                (0, 0) => (Status::NoActivity, "no votes in the period".to_owned()),
                (0, votes) => (
                    Status::Met,
                    format!(
                        "{} checked: none by the requester, its owner or the person it acted for, no person counted twice; {} refused",
                        count(votes, "vote"),
                        count(report.refusals.self_approval, "self-approval attempt")
                    ),
                ),
                (n, votes) => (Status::Exception, format!("{n} of {} broke segregation of duties", count(votes, "vote"))),
            }
        }
        Concern::ChangeApproval => match (log_ok, report.totals.submitted) {
            (false, _) => (Status::Exception, log_problem(report)),
            (true, 0) => (Status::NoActivity, "no privileged actions in the period".to_owned()),
            (true, submitted) => (
                Status::Met,
                format!(
                    "{} decided by policy before running: {} routine, {} held for approval ({} approved, {} denied), {} denied by policy",
                    count(submitted, "action"),
                    report.totals.allowed,
                    report.totals.held,
                    report.totals.approved,
                    report.totals.denied_by_approver,
                    report.totals.denied_by_policy
                ),
            ),
        },
        Concern::AccessLifecycle => match report.identity_revocations.len() {
            0 => (Status::NoActivity, "no identities revoked in the period".to_owned()),
            n => (Status::Met, format!("{} revoked, each by a recorded actor", count(n as u64, "identity"))),
        },
        Concern::Monitoring => match report.refusals.total {
            0 => (Status::NoActivity, "no refused attempts in the period".to_owned()),
            n => (Status::Met, format!("{} recorded, by code", count(n, "refused attempt"))),
        },
    }
}

/// `1 action`, `2 actions`; `identity` becomes `identities`.
fn count(n: u64, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

fn log_ok(report: &Report) -> bool {
    report.verification.chain_ok && report.verification.checkpoint.as_ref().is_none_or(|c| c.ok)
}

fn log_problem(report: &Report) -> String {
    match (&report.verification.error, &report.verification.checkpoint) {
        (Some(error), _) => format!("the log does not verify: {error}"),
        (None, Some(checkpoint)) => format!("the log does not match its signed checkpoint: {}", checkpoint.detail),
        (None, None) => "the log does not verify".to_owned(),
    }
}
