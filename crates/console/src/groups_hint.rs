//! Telling people why nothing is theirs to decide: someone whose groups
//! name no approver group of the policies in force (often because the
//! identity provider released no groups claim: the login did not ask for
//! the scope, or the claim is named differently) would otherwise see an
//! empty queue and nothing else. The queue says so to the person, and the
//! admin page marks such users, each saying where groups come from.

use std::collections::BTreeSet;

use countersign_core::Principal;
use countersign_policy::annotations::APPROVERS;
use maud::{html, Markup};

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

/// Where groups come from, in words.
fn source(state: &Shared, via_provider: bool) -> Markup {
    match (&state.identity.oidc, via_provider) {
        (Some(oidc), true) => {
            let config = oidc.config();
            let asks_for_groups = config.scopes.iter().any(|s| s == "groups");
            html! {
                "Groups come from the identity provider at each login: its " code { (config.groups_claim) } " claim "
                "(" code { "[oidc] groups_claim" } "), released for the scopes the login asks for "
                "(" code { "[oidc] scopes" } ": " code { (config.scopes.join(" ")) } ")."
                @if !asks_for_groups {
                    " It does not ask for a " code { "groups" } " scope, which many providers need before they "
                    "release groups."
                }
                " If the provider sends no such claim, you belong to no group here. See " (DOC) "."
            }
        }
        (Some(_), false) | (None, _) => html! {
            "Groups of a user signing in with a personal token are set by an administrator (the admin page, or "
            code { "countersign users add --groups" } ")."
        },
    }
}

fn describe(principal: &Principal, approvers: &BTreeSet<String>) -> Markup {
    html! {
        @if principal.groups.is_empty() {
            "You belong to no group"
        } @else {
            "Your groups (" code { (principal.groups.join(", ")) } ") are none of the approver groups"
        }
        ", so no request is yours to decide ("
        @if approvers.is_empty() {
            "no policy in force names approvers"
        } @else {
            "approvers come from " code { (approvers.iter().cloned().collect::<Vec<_>>().join(", ")) }
        }
        ")."
    }
}

/// The queue's hint for a viewer in no approver group, or nothing.
pub fn for_queue(state: &Shared, viewer: &Viewer) -> Markup {
    let approvers = approver_groups(state);
    if is_approver(&viewer.principal.groups, &approvers) {
        return html! {};
    }
    html! {
        div class="notice notice-info" role="status" id="no-approver-group" {
            p { (describe(&viewer.principal, &approvers)) }
            p { (source(state, viewer.method == Method::Oidc)) }
        }
    }
}

/// The admin page's note on users in no approver group.
pub fn for_admin(state: &Shared, users: &[countersign_store::User]) -> Markup {
    let approvers = approver_groups(state);
    let outside: Vec<&str> = users
        .iter()
        .filter(|u| u.revoked_at.is_none() && !is_approver(&u.groups, &approvers))
        .map(|u| u.name.as_str())
        .collect();
    if outside.is_empty() {
        return html! {};
    }
    html! {
        div class="notice notice-info" role="status" id="no-approver-group" {
            p {
                (outside.len()) " of the users belong to no approver group (marked below), so they can decide "
                "nothing: " code { (outside.join(", ")) } "."
            }
            p {
                @if state.identity.oidc.is_some() { (source(state, true)) }
                " " (source(state, false))
            }
        }
    }
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
        assert!(describe(&p, &approvers).into_string().starts_with("You belong to no group"));
        p.groups = vec!["<dev>".into()];
        let text = describe(&p, &approvers).into_string();
        assert!(text.contains("&lt;dev&gt;") && text.contains("none of the approver groups"), "{text}");
        assert!(text.contains("<code>sre</code>"), "{text}");
    }
}
