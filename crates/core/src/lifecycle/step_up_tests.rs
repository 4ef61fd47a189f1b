//! Tests of the step-up rule: an approval that counts toward a `@step_up`
//! requirement needs a fresh identity-provider login; denials never do.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{testing, Requirement, Routing};

const T0: Timestamp = Timestamp(10_000_000);
const FIVE_MIN: Duration = Duration::from_secs(300);

fn requirement(groups: &[&str], step_up: bool) -> Requirement {
    let policy = if step_up { "stepped" } else { "plain" };
    Requirement { routing: Routing { step_up, ..Routing::default() }, ..testing::requirement(policy, groups, 1) }
}

fn pending(requirements: Vec<Requirement>) -> Request {
    let action = testing::action("shell.exec", "prod-web", json!({"argv": ["systemctl", "restart", "web"]}));
    testing::pending("r1", PrincipalRef::agent("bot"), action, requirements, T0)
}

fn approver(groups: &[&str]) -> Approver {
    Approver {
        principal: PrincipalRef::user("sam"),
        person: PersonKey::from_email("sam@corp"),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn fresh(age: Duration) -> Assurance {
    Assurance::IdpLogin {
        auth_time: Timestamp(T0.as_millis() - i64::try_from(age.as_millis()).unwrap()),
        max_age: FIVE_MIN,
    }
}

#[test]
fn a_credential_cannot_approve_a_step_up_requirement() {
    let r = pending(vec![requirement(&["sre"], true)]);
    let refused = vote(&r, &approver(&["sre"]), &Exclusions::default(), VoteKind::Approve, None, T0);
    assert_eq!(refused, Err(Refusal::StepUpRequired));
    assert_eq!(Refusal::StepUpRequired.code(), "step_up_required");
}

#[test]
fn a_fresh_login_approves_and_a_stale_one_does_not() {
    let r = pending(vec![requirement(&["sre"], true)]);
    let ok = vote_with(&r, &approver(&["sre"]), &Exclusions::default(), VoteKind::Approve, None, T0, fresh(FIVE_MIN));
    assert_eq!(ok.unwrap().request.status, Status::Approved);
    let stale = fresh(FIVE_MIN + Duration::from_millis(1));
    let refused = vote_with(&r, &approver(&["sre"]), &Exclusions::default(), VoteKind::Approve, None, T0, stale);
    assert_eq!(refused, Err(Refusal::StepUpRequired));
}

#[test]
fn a_login_from_the_future_is_not_fresh() {
    let future = Assurance::IdpLogin { auth_time: T0.plus(Duration::from_secs(3600)), max_age: FIVE_MIN };
    assert!(!future.is_fresh(T0));
    let skewed = Assurance::IdpLogin { auth_time: T0.plus(Duration::from_secs(30)), max_age: FIVE_MIN };
    assert!(skewed.is_fresh(T0), "a little clock skew is tolerated");
}

#[test]
fn denials_never_need_a_fresh_login() {
    let r = pending(vec![requirement(&["sre"], true)]);
    let denied = vote(&r, &approver(&["sre"]), &Exclusions::default(), VoteKind::Deny, None, T0).unwrap().request;
    assert_eq!(denied.status, Status::Denied);
}

#[test]
fn only_approvals_counting_toward_a_step_up_requirement_need_it() {
    let r = pending(vec![requirement(&["dba"], false), requirement(&["sre"], true)]);
    // A dba's approval counts only toward the plain requirement.
    let next = vote(&r, &approver(&["dba"]), &Exclusions::default(), VoteKind::Approve, None, T0).unwrap().request;
    assert_eq!(next.status, Status::Pending);
    // Someone in both groups would count toward the step-up one too.
    let both = vote(&r, &approver(&["dba", "sre"]), &Exclusions::default(), VoteKind::Approve, None, T0);
    assert_eq!(both, Err(Refusal::StepUpRequired));
}

#[test]
fn self_approval_is_reported_before_step_up() {
    let r = pending(vec![requirement(&["sre"], true)]);
    let mut exclusions = Exclusions::default();
    exclusions.person(PersonKey::from_email("sam@corp"));
    let refused = vote(&r, &approver(&["sre"]), &exclusions, VoteKind::Approve, None, T0);
    assert_eq!(refused, Err(Refusal::SelfApproval));
}
