//! Telling people why nothing is theirs to decide: someone whose groups
//! name no approver group of the policies in force (often because the
//! identity provider released no groups claim: the login did not ask for
//! the scope, or the claim is named differently) would otherwise see an
//! empty queue and nothing else. The queue says so to the person, and the
//! admin page marks such users, each saying where groups come from.

use std::collections::BTreeSet;

use countersign_core::Principal;
use countersign_policy::annotations::APPROVERS;

use crate::html::esc;
use crate::session::{Method, Viewer};
use crate::Shared;

/// Where the configuration of groups is described.
const DOC: &str = "the README, “Point the gateway at your identity provider”";

/// Every group a policy in force names as approvers.
pub fn approver_groups(state: &Shared) -> BTreeSet<String> {
    let policy = state.app.policy();
    let mut groups = BTreeSet::new();
    for p in policy.engine.cedar_policies().policies() {
        if let Some(names) = p.annotation(APPROVERS) {
            groups.extend(names.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned));
        }
    }
    groups
}

/// Whether someone in `groups` may approve anything the policies ask for.
pub fn is_approver(groups: &[String], approvers: &BTreeSet<String>) -> bool {
    groups.iter().any(|g| approvers.contains(g))
}

/// Where groups come from, in words (HTML).
fn source(state: &Shared, via_provider: bool) -> String {
    match (&state.identity.oidc, via_provider) {
        (Some(oidc), true) => {
            let config = oidc.config();
            let scopes = config.scopes.join(" ");
            let scope_note = if config.scopes.iter().any(|s| s == "groups") {
                String::new()
            } else {
                " It does not ask for a <code>groups</code> scope, which many providers need before they \
                 release groups."
                    .to_owned()
            };
            format!(
                "Groups come from the identity provider at each login: its <code>{claim}</code> claim \
                 (<code>[oidc] groups_claim</code>), released for the scopes the login asks for \
                 (<code>[oidc] scopes</code>: <code>{scopes}</code>).{scope_note} If the provider sends no such \
                 claim, you belong to no group here. See {DOC}.",
                claim = esc(&config.groups_claim),
                scopes = esc(&scopes),
            )
        }
        (Some(_), false) | (None, _) => "Groups of a user signing in with a personal token are set by an \
             administrator (the admin page, or <code>countersign users add --groups</code>)."
            .to_owned(),
    }
}

fn describe(principal: &Principal, approvers: &BTreeSet<String>) -> String {
    let yours = if principal.groups.is_empty() {
        "You belong to no group".to_owned()
    } else {
        format!("Your groups (<code>{}</code>) are", esc(&principal.groups.join(", ")))
    };
    let needed = if approvers.is_empty() {
        "no policy in force names approvers".to_owned()
    } else {
        format!("approvers come from <code>{}</code>", esc(&approvers.iter().cloned().collect::<Vec<_>>().join(", ")))
    };
    let no = if principal.groups.is_empty() { "" } else { " none of the approver groups" };
    format!("{yours}{no}, so no request is yours to decide ({needed}).")
}

/// The queue's hint for a viewer in no approver group, or nothing.
pub fn for_queue(state: &Shared, viewer: &Viewer) -> String {
    let approvers = approver_groups(state);
    if is_approver(&viewer.principal.groups, &approvers) {
        return String::new();
    }
    format!(
        "<div class=\"notice notice-info\" role=\"status\" id=\"no-approver-group\"><p>{}</p><p>{}</p></div>",
        describe(&viewer.principal, &approvers),
        source(state, viewer.method == Method::Oidc),
    )
}

/// The admin page's note on users in no approver group.
pub fn for_admin(state: &Shared, users: &[countersign_store::User]) -> String {
    let approvers = approver_groups(state);
    let outside: Vec<&str> = users
        .iter()
        .filter(|u| u.revoked_at.is_none() && !is_approver(&u.groups, &approvers))
        .map(|u| u.name.as_str())
        .collect();
    if outside.is_empty() {
        return String::new();
    }
    format!(
        "<div class=\"notice notice-info\" role=\"status\" id=\"no-approver-group\"><p>{n} of the users belong to no \
         approver group (marked below), so they can decide nothing: <code>{names}</code>.</p><p>{provider} {local}</p></div>",
        n = outside.len(),
        names = esc(&outside.join(", ")),
        provider = if state.identity.oidc.is_some() { source(state, true) } else { String::new() },
        local = source(state, false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_are_people_in_an_approver_group() {
        let approvers: BTreeSet<String> = ["sre".to_owned(), "dba".to_owned()].into();
        assert!(is_approver(&["dev".into(), "sre".into()], &approvers));
        assert!(!is_approver(&["dev".into()], &approvers));
        assert!(!is_approver(&[], &approvers));
        assert!(!is_approver(&["sre".into()], &BTreeSet::new()));
    }

    #[test]
    fn the_text_says_what_is_missing_and_escapes_names() {
        let approvers: BTreeSet<String> = ["sre".to_owned()].into();
        let mut p = Principal {
            kind: countersign_core::PrincipalKind::User,
            name: "x".into(),
            email: None,
            owner: None,
            groups: vec![],
        };
        assert!(describe(&p, &approvers).starts_with("You belong to no group"));
        p.groups = vec!["<dev>".into()];
        let text = describe(&p, &approvers);
        assert!(text.contains("&lt;dev&gt;") && text.contains("none of the approver groups"), "{text}");
        assert!(text.contains("<code>sre</code>"), "{text}");
    }
}
