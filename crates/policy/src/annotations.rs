//! Policy annotations: `@id` and the approval annotations that turn a
//! permit into "allowed once approved".
//!
//! # Approval annotations
//!
//! | annotation            | meaning                                              | default               |
//! |-----------------------|------------------------------------------------------|-----------------------|
//! | `@approvers("a,b")`   | members of any of these groups may approve (required) | —                     |
//! | `@quorum("2")`        | distinct people who must approve (at least 1)         | `1`                   |
//! | `@timeout("30m")`     | how long the request may wait for approval            | `Defaults::timeout`   |
//! | `@valid_for("10m")`   | how long an approval stays usable before release      | `Defaults::valid_for` |
//! | `@slack_channel("#x")`| the Slack channel (name or id) for its review card     | `[slack] channel`     |
//! | `@teams_channel("…")` | the Teams conversation id for its review card          | `[teams] conversation`|
//! | `@escalate_after("10m")` | still pending this long: notify `@escalate_to`     | no escalation         |
//! | `@escalate_to("#x")`  | a Slack channel (`#name`), a Teams conversation (`teams:<id>`) or an approver group to DM | — |
//! | `@step_up("true")`    | a chat click alone cannot approve; needs a fresh login | `false`               |
//!
//! Durations use `ms`, `s`, `m`, `h`, `d` and may be combined (`1h30m`).
//! Only `permit` policies may carry them, and every one of them needs
//! `@approvers` (`@escalate_after` and `@escalate_to` come together); anything else is a load error, as is an
//! annotation that looks like a misspelling of one of these (`@approver`,
//! `@validFor`, …), because a typo would otherwise silently turn an approval
//! permit into a routine one.
//!
//! # How annotated permits combine
//!
//! The action is allowed only if some permit is satisfied and no forbid is.
//! An allowed action then needs approval **whenever at least one satisfied
//! permit carries `@approvers`**, and every such permit contributes one
//! [`Requirement`] that must be met. Satisfied permits without annotations
//! do not waive those requirements: the action is routine (allowed at once)
//! only when no satisfied permit asks for approval. This is the stricter of
//! the two readings of "satisfied permits without annotations make the action
//! routine", chosen because a broad routine permit must not silently cancel a
//! narrower rule that asks for a human.
//!
//! # Policy ids
//!
//! `@id("name")` names a policy; ids must be unique across all files.
//! Without it, a policy is named `<file stem>.<n>`, `n` counting the
//! policies in its file from 0.

use std::time::Duration;

use cedar_policy::{Effect, Policy};
use countersign_core::{parse_duration, principal::valid_name, Requirement, Routing};

use crate::engine::Defaults;

/// The annotation that names a policy.
pub const ID: &str = "id";
/// Comma-separated groups whose members may approve.
pub const APPROVERS: &str = "approvers";
/// Distinct people needed.
pub const QUORUM: &str = "quorum";
/// How long the request may wait.
pub const TIMEOUT: &str = "timeout";
/// How long an approval stays usable before release.
pub const VALID_FOR: &str = "valid_for";

/// The Slack channel for the review card.
pub const SLACK_CHANNEL: &str = "slack_channel";
/// The Teams conversation for the review card.
pub const TEAMS_CHANNEL: &str = "teams_channel";
/// How long a request may stay pending before `@escalate_to` is notified.
pub const ESCALATE_AFTER: &str = "escalate_after";
/// Who is notified on escalation.
pub const ESCALATE_TO: &str = "escalate_to";
/// Whether approving needs a fresh login rather than a chat click.
pub const STEP_UP: &str = "step_up";

/// Annotations that only make sense next to `@approvers`.
const NEEDS_APPROVERS: [&str; 8] =
    [QUORUM, TIMEOUT, VALID_FOR, SLACK_CHANNEL, TEAMS_CHANNEL, ESCALATE_AFTER, ESCALATE_TO, STEP_UP];

const KNOWN: [&str; 10] =
    [ID, APPROVERS, QUORUM, TIMEOUT, VALID_FOR, SLACK_CHANNEL, TEAMS_CHANNEL, ESCALATE_AFTER, ESCALATE_TO, STEP_UP];

/// What an annotated permit asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Approval {
    pub(crate) groups: Vec<String>,
    pub(crate) quorum: u32,
    pub(crate) timeout: Duration,
    pub(crate) valid_for: Duration,
    pub(crate) routing: Routing,
}

impl Approval {
    pub(crate) fn requirement(&self, policy: &str) -> Requirement {
        Requirement {
            policy: policy.to_owned(),
            groups: self.groups.clone(),
            quorum: self.quorum,
            timeout: self.timeout,
            valid_for: self.valid_for,
            routing: self.routing.clone(),
        }
    }
}

/// The `@id` of a policy, if it has a well-formed one.
pub(crate) fn explicit_id(policy: &Policy) -> Result<Option<String>, String> {
    let Some(id) = policy.annotation(ID) else {
        return Ok(None);
    };
    if id.is_empty() || id.trim() != id || id.chars().any(char::is_control) {
        return Err(format!(
            "`@id(\"{}\")` must be non-empty, without leading or trailing spaces or control characters",
            id.escape_debug()
        ));
    }
    Ok(Some(id.to_owned()))
}

/// Reads the approval annotations of `policy`; every problem is reported.
pub(crate) fn approval(policy: &Policy, defaults: &Defaults) -> Result<Option<Approval>, Vec<String>> {
    let mut problems: Vec<String> = policy.annotations().filter_map(|(key, _)| misspelling(key)).collect();
    let approvers = policy.annotation(APPROVERS);
    let quorum = policy.annotation(QUORUM);
    let timeout = policy.annotation(TIMEOUT);
    let valid_for = policy.annotation(VALID_FOR);
    let any = approvers.is_some() || NEEDS_APPROVERS.iter().any(|key| policy.annotation(key).is_some());
    match policy.effect() {
        Effect::Permit => {}
        Effect::Forbid => {
            if any {
                problems
                    .push("approval annotations only apply to `permit` policies; a `forbid` always denies".to_owned());
            }
            return if problems.is_empty() { Ok(None) } else { Err(problems) };
        }
    }
    let Some(approvers) = approvers else {
        for key in NEEDS_APPROVERS {
            if policy.annotation(key).is_some() {
                problems.push(format!("`@{key}` needs `@approvers(\"group,…\")` on the same policy"));
            }
        }
        return if problems.is_empty() { Ok(None) } else { Err(problems) };
    };
    let groups = parse_groups(approvers).map_err(|e| problems.push(e)).ok();
    let quorum = match quorum {
        None => Some(1),
        Some(text) => parse_quorum(text).map_err(|e| problems.push(e)).ok(),
    };
    let timeout = parse_optional_duration(TIMEOUT, timeout, defaults.timeout).map_err(|e| problems.push(e)).ok();
    let valid_for =
        parse_optional_duration(VALID_FOR, valid_for, defaults.valid_for).map_err(|e| problems.push(e)).ok();
    let routing = routing(policy, &mut problems);
    match (groups, quorum, timeout, valid_for) {
        (Some(groups), Some(quorum), Some(timeout), Some(valid_for)) if problems.is_empty() => {
            Ok(Some(Approval { groups, quorum, timeout, valid_for, routing }))
        }
        _ => Err(problems),
    }
}

/// Reads the channel, escalation and step-up annotations.
fn routing(policy: &Policy, problems: &mut Vec<String>) -> Routing {
    let mut target = |key: &str| {
        let text = policy.annotation(key)?;
        let ok = !text.is_empty() && text.len() <= 80 && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            problems.push(format!(
                "`@{key}(\"{}\")` must name a channel or group: 1 to 80 characters, no spaces",
                text.escape_debug()
            ));
        }
        ok.then(|| text.to_owned())
    };
    let slack_channel = target(SLACK_CHANNEL);
    let teams_channel = target(TEAMS_CHANNEL);
    let escalate_to = target(ESCALATE_TO);
    let escalate_after = match policy.annotation(ESCALATE_AFTER) {
        None => None,
        Some(text) => {
            parse_optional_duration(ESCALATE_AFTER, Some(text), Duration::ZERO).map_err(|e| problems.push(e)).ok()
        }
    };
    if policy.annotation(ESCALATE_AFTER).is_some() != policy.annotation(ESCALATE_TO).is_some() {
        problems.push(format!("`@{ESCALATE_AFTER}` and `@{ESCALATE_TO}` go together: when, and whom to notify"));
    }
    let step_up = match policy.annotation(STEP_UP) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            problems.push(format!("`@{STEP_UP}(\"{}\")` must be `true` or `false`", other.escape_debug()));
            false
        }
    };
    Routing { slack_channel, teams_channel, escalate_after, escalate_to, step_up }
}

fn parse_groups(text: &str) -> Result<Vec<String>, String> {
    let mut groups: Vec<String> = Vec::new();
    for group in text.split(',').map(str::trim) {
        if !valid_name(group) {
            return Err(format!(
                "`@approvers(\"{}\")` must list group names separated by commas; `{}` is not a group name",
                text.escape_debug(),
                group.escape_debug()
            ));
        }
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_owned());
        }
    }
    Ok(groups)
}

fn parse_quorum(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) | Err(_) => Err(format!("`@quorum(\"{}\")` must be a whole number of at least 1", text.escape_debug())),
    }
}

fn parse_optional_duration(key: &str, text: Option<&str>, default: Duration) -> Result<Duration, String> {
    let Some(text) = text else {
        return Ok(default);
    };
    match parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("`@{key}(\"{}\")` must be longer than zero", text.escape_debug())),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("`@{key}`: {e}")),
    }
}

/// Flags annotations that look like a misspelt reserved one.
fn misspelling(key: &str) -> Option<String> {
    if KNOWN.contains(&key) {
        return None;
    }
    let normalized: String = key.chars().filter(|c| !matches!(c, '_' | '-')).collect::<String>().to_lowercase();
    let suggestion = KNOWN
        .iter()
        .find(|known| known.replace('_', "") == normalized)
        .copied()
        .or_else(|| normalized.starts_with("approv").then_some(APPROVERS))
        .or_else(|| normalized.starts_with("validfor").then_some(VALID_FOR))
        .or_else(|| normalized.starts_with("escalat").then_some(ESCALATE_AFTER))
        .or_else(|| normalized.starts_with("stepup").then_some(STEP_UP))?;
    Some(format!("unknown annotation `@{key}`; did you mean `@{suggestion}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults { timeout: Duration::from_secs(3600), valid_for: Duration::from_secs(600) }
    }

    fn read(src: &str) -> Result<Option<Approval>, Vec<String>> {
        approval(&Policy::parse(None, src).unwrap(), &defaults())
    }

    #[test]
    fn plain_permit_has_no_approval() {
        assert_eq!(read("permit(principal, action, resource);"), Ok(None));
        assert_eq!(read("@description(\"x\") forbid(principal, action, resource);"), Ok(None));
    }

    #[test]
    fn reads_all_annotations_and_defaults() {
        let a = read(r#"@approvers("dba, sre,dba") permit(principal, action, resource);"#).unwrap().unwrap();
        assert_eq!(a.groups, vec!["dba", "sre"]);
        assert_eq!((a.quorum, a.timeout, a.valid_for), (1, defaults().timeout, defaults().valid_for));
        let a = read(
            r#"@approvers("dba") @quorum("2") @timeout("30m") @valid_for("1h30m") permit(principal, action, resource);"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!((a.quorum, a.timeout, a.valid_for), (2, Duration::from_secs(1800), Duration::from_secs(5400)));
    }

    #[test]
    fn rejects_bad_values_and_orphans() {
        let errs = read(
            r#"@approvers("") @quorum("0") @timeout("soon") @valid_for("0s") permit(principal, action, resource);"#,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        let errs = read(r#"@quorum("2") @timeout("1m") permit(principal, action, resource);"#).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("needs `@approvers"), "{errs:?}");
        let errs = read(r#"@approvers("sre") forbid(principal, action, resource);"#).unwrap_err();
        assert!(errs[0].contains("only apply to `permit`"), "{errs:?}");
    }

    #[test]
    fn rejects_misspellings() {
        for key in ["approver", "Approvers", "validFor", "valid_for_", "Quorum", "ID", "approval", "Time_out"] {
            let errs = read(&format!("@{key}(\"sre\") permit(principal, action, resource);")).unwrap_err();
            assert!(errs.iter().any(|e| e.contains("did you mean")), "{key}: {errs:?}");
        }
        assert_eq!(read("@reviewed(\"yes\") permit(principal, action, resource);"), Ok(None));
    }

    #[test]
    fn reads_routing() {
        let a = read(
            r##"@approvers("sre") @slack_channel("#prod-approvals") @teams_channel("19:abc@thread.tacv2")
               @escalate_after("10m") @escalate_to("sre-leads") @step_up("true")
               permit(principal, action, resource);"##,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.routing.slack_channel.as_deref(), Some("#prod-approvals"));
        assert_eq!(a.routing.teams_channel.as_deref(), Some("19:abc@thread.tacv2"));
        assert_eq!(a.routing.escalate_after, Some(Duration::from_secs(600)));
        assert_eq!(a.routing.escalate_to.as_deref(), Some("sre-leads"));
        assert!(a.routing.step_up);
        assert_eq!(a.requirement("p").routing, a.routing);
        let plain = read(r#"@approvers("sre") permit(principal, action, resource);"#).unwrap().unwrap();
        assert!(plain.routing.is_empty());
    }

    #[test]
    fn rejects_bad_routing() {
        let errs = read(
            r#"@approvers("sre") @slack_channel("two words") @step_up("yes") @escalate_after("10m")
               permit(principal, action, resource);"#,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        let errs = read(r##"@slack_channel("#x") permit(principal, action, resource);"##).unwrap_err();
        assert!(errs[0].contains("needs `@approvers"), "{errs:?}");
        for key in ["slackChannel", "stepUp", "escalate", "Step_Up"] {
            let errs =
                read(&format!("@approvers(\"sre\") @{key}(\"x\") permit(principal, action, resource);")).unwrap_err();
            assert!(errs.iter().any(|e| e.contains("did you mean")), "{key}: {errs:?}");
        }
    }

    #[test]
    fn checks_ids() {
        let ok = Policy::parse(None, r#"@id("a b") permit(principal, action, resource);"#).unwrap();
        assert_eq!(explicit_id(&ok), Ok(Some("a b".into())));
        let bad = Policy::parse(None, r#"@id(" a") permit(principal, action, resource);"#).unwrap();
        assert!(explicit_id(&bad).is_err());
    }
}
