//! Comparing a recorded decision with the candidate's, and the report the
//! comparisons add up to: counts by outcome, changes by kind and by policy,
//! and the first few examples of each change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use countersign_core::{Requirement, Timestamp};
use serde::Serialize;

use super::log::{Malformed, Recorded, ReplayStats};
use super::Outcome;
use crate::PolicyEngine;

/// Examples kept for each kind of change.
pub const MAX_EXAMPLES_PER_CHANGE: usize = 5;
/// Bytes of an example's payload shown (as compact JSON).
pub const PAYLOAD_PREVIEW: usize = 200;
/// Distinct recorded policy-set hashes counted one by one; the rest are
/// counted together.
const MAX_RECORDED_SETS: usize = 100;

/// What the candidate set decides about one recorded action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub outcome: Outcome,
    pub policies: Vec<String>,
    pub requirements: Vec<Requirement>,
    pub reason: String,
    pub errors: Vec<String>,
}

/// How a decision would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Allowed, pending or denied becomes another of them.
    Outcome { from: Outcome, to: Outcome },
    /// Pending either way, but other approver groups or quorums.
    Approvers,
}

impl Change {
    /// `allowed → pending`, or `approvers or quorum`.
    pub fn label(self) -> String {
        match self {
            Self::Outcome { from, to } => format!("{} → {}", from.as_str(), to.as_str()),
            Self::Approvers => "approvers or quorum".to_owned(),
        }
    }

    /// What `recorded` and `candidate` differ in, if they differ in what
    /// counts (see the [module documentation](super)).
    pub fn between(recorded: &Recorded, candidate: &Candidate) -> Option<Self> {
        if recorded.outcome != candidate.outcome {
            return Some(Self::Outcome { from: recorded.outcome, to: candidate.outcome });
        }
        match recorded.outcome {
            Outcome::Pending if approval_shape(&recorded.requirements) != approval_shape(&candidate.requirements) => {
                Some(Self::Approvers)
            }
            Outcome::Pending | Outcome::Allowed | Outcome::Denied => None,
        }
    }
}

/// The requirements as people meet them: who may approve and how many,
/// whatever the policies imposing them are called.
fn approval_shape(requirements: &[Requirement]) -> Vec<(Vec<&str>, u32)> {
    let mut shape: Vec<(Vec<&str>, u32)> = requirements
        .iter()
        .map(|r| {
            let mut groups: Vec<&str> = r.groups.iter().map(String::as_str).collect();
            groups.sort_unstable();
            groups.dedup();
            (groups, r.quorum)
        })
        .collect();
    shape.sort();
    shape
}

/// What one policy had to do with the changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyImpact {
    /// Changed decisions it is part of.
    pub changes: u64,
    /// It determines the candidate's decision, not the recorded one.
    pub now_determines: u64,
    /// It determined the recorded decision, not the candidate's.
    pub no_longer_determines: u64,
    /// It determines both, with other approvers or quorum.
    pub requirement_changed: u64,
    /// Changes by [`Change::label`].
    pub by_change: BTreeMap<String, u64>,
}

/// One side of an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub outcome: Outcome,
    pub policies: Vec<String>,
    pub requirements: Vec<Approvers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who may approve, and how many, for one requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approvers {
    pub policy: String,
    pub groups: Vec<String>,
    pub quorum: u32,
}

fn approvers(requirements: &[Requirement]) -> Vec<Approvers> {
    requirements
        .iter()
        .map(|r| Approvers { policy: r.policy.clone(), groups: r.groups.clone(), quorum: r.quorum })
        .collect()
}

/// A changed decision, to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    #[serde(flatten)]
    pub change: Change,
    pub seq: u64,
    pub time: Timestamp,
    pub id: String,
    pub kind: String,
    pub resource: String,
    pub principal: String,
    /// The payload as compact JSON, cut at [`PAYLOAD_PREVIEW`] bytes.
    pub payload: String,
    pub truncated: bool,
    pub recorded: Side,
    pub candidate: Side,
}

/// The simulation's findings; add every comparison with [`Report::add`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub candidate_hash: String,
    pub candidate_policies: usize,
    /// Actions decided again.
    pub replayed: u64,
    /// Actions whose decision would change ([`Change`]).
    pub changed: u64,
    /// Recorded outcome → candidate outcome → count, changed or not.
    pub outcomes: BTreeMap<Outcome, BTreeMap<Outcome, u64>>,
    /// Changes by [`Change::label`].
    pub changes: BTreeMap<String, u64>,
    /// Same outcome and approvers, other determining policies (not a change).
    pub other_policies_only: u64,
    /// Candidate decisions during which a policy raised an error.
    pub candidate_errors: u64,
    /// Policies involved in changes, by id.
    pub by_policy: BTreeMap<String, PolicyImpact>,
    pub examples: Vec<Example>,
    /// The policy sets that made the recorded decisions, by hash.
    pub recorded_policy_sets: BTreeMap<String, u64>,
    pub log: ReplayStats,
    /// The first events that could not be used.
    pub malformed: Vec<Malformed>,
    #[serde(skip)]
    examples_per_change: HashMap<Change, usize>,
}

/// Stands for the recorded policy sets beyond [`MAX_RECORDED_SETS`].
const OTHER_SETS: &str = "(others)";
/// Stands for a change no policy id explains (say, a decision that
/// failed to evaluate either way).
const UNATTRIBUTED: &str = "(unattributed)";

impl Report {
    pub fn new(engine: &PolicyEngine) -> Self {
        Self {
            candidate_hash: engine.hash().to_owned(),
            candidate_policies: engine.policy_count(),
            replayed: 0,
            changed: 0,
            outcomes: BTreeMap::new(),
            changes: BTreeMap::new(),
            other_policies_only: 0,
            candidate_errors: 0,
            by_policy: BTreeMap::new(),
            examples: Vec::new(),
            recorded_policy_sets: BTreeMap::new(),
            log: ReplayStats::default(),
            malformed: Vec::new(),
            examples_per_change: HashMap::new(),
        }
    }

    /// Adds the comparison of one recorded decision with the candidate's.
    pub fn add(&mut self, recorded: &Recorded, candidate: &Candidate) {
        self.replayed += 1;
        *self.outcomes.entry(recorded.outcome).or_default().entry(candidate.outcome).or_default() += 1;
        if !candidate.errors.is_empty() {
            self.candidate_errors += 1;
        }
        self.count_recorded_set(&recorded.policy_hash);
        let Some(change) = Change::between(recorded, candidate) else {
            if !same_ids(&recorded.policies, &candidate.policies) {
                self.other_policies_only += 1;
            }
            return;
        };
        self.changed += 1;
        let label = change.label();
        *self.changes.entry(label.clone()).or_default() += 1;
        for (policy, role) in attribute(recorded, candidate) {
            let impact = self.by_policy.entry(policy).or_default();
            impact.changes += 1;
            match role {
                Role::NowDetermines => impact.now_determines += 1,
                Role::NoLongerDetermines => impact.no_longer_determines += 1,
                Role::RequirementChanged => impact.requirement_changed += 1,
                Role::Unattributed => {}
            }
            *impact.by_change.entry(label.clone()).or_default() += 1;
        }
        let shown = self.examples_per_change.entry(change).or_default();
        if *shown < MAX_EXAMPLES_PER_CHANGE {
            *shown += 1;
            self.examples.push(example(change, recorded, candidate));
        }
    }

    fn count_recorded_set(&mut self, hash: &str) {
        if let Some(count) = self.recorded_policy_sets.get_mut(hash) {
            *count += 1;
        } else if self.recorded_policy_sets.len() < MAX_RECORDED_SETS {
            self.recorded_policy_sets.insert(hash.to_owned(), 1);
        } else {
            *self.recorded_policy_sets.entry(OTHER_SETS.to_owned()).or_default() += 1;
        }
    }

    /// Adds what reading the log found ([`super::Replayer::finish`]).
    pub fn with_log(mut self, (stats, malformed): (ReplayStats, Vec<Malformed>)) -> Self {
        self.log = stats;
        self.malformed = malformed;
        self
    }

    /// Examples in log order (they are collected in log order per kind).
    pub fn sorted_examples(&self) -> Vec<&Example> {
        let mut examples: Vec<&Example> = self.examples.iter().collect();
        examples.sort_by_key(|e| (e.change, e.seq));
        examples
    }
}

fn same_ids(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    NowDetermines,
    NoLongerDetermines,
    RequirementChanged,
    Unattributed,
}

/// The policies a change is due to: those that determine one decision and
/// not the other, and those that determine both with other approvers.
fn attribute(recorded: &Recorded, candidate: &Candidate) -> Vec<(String, Role)> {
    let before: BTreeSet<&str> = recorded.policies.iter().map(String::as_str).collect();
    let after: BTreeSet<&str> = candidate.policies.iter().map(String::as_str).collect();
    let mut found: Vec<(String, Role)> = Vec::new();
    found.extend(after.difference(&before).map(|p| ((*p).to_owned(), Role::NowDetermines)));
    found.extend(before.difference(&after).map(|p| ((*p).to_owned(), Role::NoLongerDetermines)));
    let shape_of = |requirements: &[Requirement], policy: &str| {
        approval_shape(&requirements.iter().filter(|r| r.policy == policy).cloned().collect::<Vec<_>>())
            .into_iter()
            .map(|(groups, quorum)| (groups.into_iter().map(str::to_owned).collect::<Vec<_>>(), quorum))
            .collect::<Vec<_>>()
    };
    for policy in before.intersection(&after) {
        if shape_of(&recorded.requirements, policy) != shape_of(&candidate.requirements, policy) {
            found.push(((*policy).to_owned(), Role::RequirementChanged));
        }
    }
    if found.is_empty() {
        found.push((UNATTRIBUTED.to_owned(), Role::Unattributed));
    }
    found
}

fn example(change: Change, recorded: &Recorded, candidate: &Candidate) -> Example {
    let (payload, truncated) = preview(&recorded.action.payload);
    Example {
        change,
        seq: recorded.seq,
        time: recorded.time,
        id: recorded.id.clone(),
        kind: recorded.action.kind.clone(),
        resource: recorded.action.resource.clone(),
        principal: recorded.principal.reference().to_string(),
        payload,
        truncated,
        recorded: Side {
            outcome: recorded.outcome,
            policies: recorded.policies.clone(),
            requirements: approvers(&recorded.requirements),
            reason: None,
        },
        candidate: Side {
            outcome: candidate.outcome,
            policies: candidate.policies.clone(),
            requirements: approvers(&candidate.requirements),
            reason: Some(candidate.reason.clone()),
        },
    }
}

/// Compact JSON of `value`, stopping once [`PAYLOAD_PREVIEW`] bytes are
/// written, so a huge payload costs no more than a small one.
fn preview(value: &serde_json::Value) -> (String, bool) {
    struct Capped(Vec<u8>);
    impl Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = PAYLOAD_PREVIEW + 4 - self.0.len().min(PAYLOAD_PREVIEW + 4);
            if room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let take = buf.len().min(room);
            self.0.extend_from_slice(&buf[..take]);
            Ok(take)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(Vec::with_capacity(PAYLOAD_PREVIEW + 4));
    let complete = serde_json::to_writer(&mut out, value).is_ok() && out.0.len() <= PAYLOAD_PREVIEW;
    let mut bytes = out.0;
    if !complete {
        bytes.truncate(PAYLOAD_PREVIEW);
        // Cut back to a character boundary.
        while !bytes.is_empty() && std::str::from_utf8(&bytes).is_err() {
            bytes.pop();
        }
    }
    (String::from_utf8_lossy(&bytes).into_owned(), !complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::{Action, Principal, PrincipalKind};
    use serde_json::json;
    use std::time::Duration;

    fn requirement(policy: &str, groups: &[&str], quorum: u32) -> Requirement {
        Requirement {
            policy: policy.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            quorum,
            timeout: Duration::from_secs(60),
            valid_for: Duration::from_secs(60),
            routing: countersign_core::Routing::default(),
        }
    }

    fn recorded(seq: u64, outcome: Outcome, policies: &[&str], requirements: Vec<Requirement>) -> Recorded {
        Recorded {
            seq,
            time: Timestamp(0),
            id: format!("r{seq}"),
            principal: Principal {
                kind: PrincipalKind::Agent,
                name: "bot".into(),
                email: None,
                owner: None,
                groups: vec![],
            },
            principal_known: true,
            action: Action {
                kind: "shell.exec".into(),
                resource: "prod-web".into(),
                payload: json!({"command": "ls"}),
                on_behalf_of: None,
                justification: None,
                labels: vec![],
                context: serde_json::Map::new(),
            },
            outcome,
            policies: policies.iter().map(|p| (*p).to_owned()).collect(),
            requirements,
            policy_hash: "sha256:old".into(),
        }
    }

    fn candidate(outcome: Outcome, policies: &[&str], requirements: Vec<Requirement>) -> Candidate {
        Candidate {
            outcome,
            policies: policies.iter().map(|p| (*p).to_owned()).collect(),
            requirements,
            reason: "because".into(),
            errors: vec![],
        }
    }

    fn engine() -> PolicyEngine {
        PolicyEngine::from_sources(
            vec![crate::PolicySource { file: "a.cedar".into(), text: "permit(principal, action, resource);".into() }],
            None,
            crate::Defaults { timeout: Duration::from_secs(60), valid_for: Duration::from_secs(60) },
        )
        .unwrap()
    }

    #[test]
    fn outcome_changes_are_changes() {
        let r = recorded(1, Outcome::Allowed, &["routine"], vec![]);
        let c = candidate(Outcome::Denied, &["no-prod"], vec![]);
        assert_eq!(Change::between(&r, &c), Some(Change::Outcome { from: Outcome::Allowed, to: Outcome::Denied }));
        assert_eq!(Change::between(&r, &candidate(Outcome::Allowed, &["routine"], vec![])), None);
    }

    #[test]
    fn approver_groups_and_quorum_count_not_policy_names() {
        let r = recorded(1, Outcome::Pending, &["p"], vec![requirement("p", &["sre", "ops"], 1)]);
        // Same approvers under another name and order: no change.
        let renamed = candidate(Outcome::Pending, &["q"], vec![requirement("q", &["ops", "sre"], 1)]);
        assert_eq!(Change::between(&r, &renamed), None);
        let quorum = candidate(Outcome::Pending, &["p"], vec![requirement("p", &["sre", "ops"], 2)]);
        assert_eq!(Change::between(&r, &quorum), Some(Change::Approvers));
        let groups = candidate(Outcome::Pending, &["p"], vec![requirement("p", &["sre"], 1)]);
        assert_eq!(Change::between(&r, &groups), Some(Change::Approvers));
        let more = candidate(
            Outcome::Pending,
            &["p", "x"],
            vec![requirement("p", &["sre", "ops"], 1), requirement("x", &["dba"], 1)],
        );
        assert_eq!(Change::between(&r, &more), Some(Change::Approvers));
    }

    #[test]
    fn the_report_counts_attributes_and_keeps_few_examples() {
        let mut report = Report::new(&engine());
        for seq in 0..10 {
            report.add(
                &recorded(seq, Outcome::Allowed, &["routine"], vec![]),
                &candidate(Outcome::Pending, &["routine", "prod-2"], vec![requirement("prod-2", &["sre"], 2)]),
            );
        }
        report.add(
            &recorded(20, Outcome::Pending, &["p"], vec![requirement("p", &["sre"], 1)]),
            &candidate(Outcome::Pending, &["p"], vec![requirement("p", &["sre"], 2)]),
        );
        report.add(&recorded(21, Outcome::Denied, &[], vec![]), &candidate(Outcome::Denied, &[], vec![]));
        report.add(
            &recorded(22, Outcome::Allowed, &["old-name"], vec![]),
            &candidate(Outcome::Allowed, &["new"], vec![]),
        );
        report.add(&recorded(23, Outcome::Allowed, &["routine"], vec![]), &candidate(Outcome::Denied, &[], vec![]));

        assert_eq!(report.replayed, 14);
        assert_eq!(report.changed, 12);
        assert_eq!(report.other_policies_only, 1);
        assert_eq!(report.changes["allowed → pending"], 10);
        assert_eq!(report.changes["approvers or quorum"], 1);
        assert_eq!(report.changes["allowed → denied"], 1);
        assert_eq!(report.outcomes[&Outcome::Allowed][&Outcome::Pending], 10);
        assert_eq!(report.outcomes[&Outcome::Allowed][&Outcome::Allowed], 1);
        assert_eq!(report.outcomes[&Outcome::Denied][&Outcome::Denied], 1);

        let prod = &report.by_policy["prod-2"];
        assert_eq!((prod.changes, prod.now_determines), (10, 10));
        let p = &report.by_policy["p"];
        assert_eq!((p.changes, p.requirement_changed), (1, 1));
        let routine = &report.by_policy["routine"];
        assert_eq!((routine.changes, routine.no_longer_determines), (1, 1));
        assert_eq!(routine.by_change["allowed → denied"], 1);
        assert!(!report.by_policy.contains_key("old-name"), "not a change");

        assert_eq!(report.examples.len(), MAX_EXAMPLES_PER_CHANGE + 2);
        let seqs: Vec<u64> = report.sorted_examples().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 23, 20]);
        assert_eq!(report.recorded_policy_sets["sha256:old"], 14);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["outcomes"]["allowed"]["pending"], 10);
        assert_eq!(json["examples"][0]["change"], "outcome");
        assert_eq!(json["examples"][0]["from"], "allowed");
        assert_eq!(json["examples"][0]["candidate"]["requirements"][0]["quorum"], 2);
        assert!(json.get("examples_per_change").is_none());
    }

    #[test]
    fn an_unexplained_change_is_still_attributed() {
        let mut report = Report::new(&engine());
        report.add(&recorded(1, Outcome::Denied, &[], vec![]), &candidate(Outcome::Allowed, &[], vec![]));
        assert_eq!(report.by_policy[UNATTRIBUTED].changes, 1);
    }

    #[test]
    fn previews_are_bounded_and_cut_on_characters() {
        assert_eq!(preview(&json!({"a": 1})), ("{\"a\":1}".to_owned(), false));
        let huge = json!({"s": "é".repeat(1_000_000)});
        let (text, truncated) = preview(&huge);
        assert!(truncated);
        assert!(text.len() <= PAYLOAD_PREVIEW && text.len() > PAYLOAD_PREVIEW - 4, "{}", text.len());
        assert!(text.starts_with("{\"s\":\"éé"));
        let exact = json!("x".repeat(PAYLOAD_PREVIEW - 2));
        assert!(!preview(&exact).1);
        assert!(preview(&json!("x".repeat(PAYLOAD_PREVIEW - 1))).1);
    }
}
