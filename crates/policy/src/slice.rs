//! Policy slicing: the policies a request can possibly reach, precomputed
//! per (action, resource).
//!
//! Cedar evaluates a policy's `when`/`unless` body only after its scope
//! matched, so a policy whose action or resource scope cannot match a
//! request can neither be satisfied nor raise an error for it. Evaluating
//! only the policies whose scopes can match therefore gives the same answer
//! as evaluating the whole set, at a fraction of the cost. The property test
//! in `tests/slicing.rs` checks this against Cedar.
//!
//! Requests always use `Action::"<kind>"` and `Resource::"<name>"` entities
//! without parents, so:
//! - `action == Action::"k"` and `action in [Action::"k", …]` match exactly
//!   those kinds; other entity types never match;
//! - `resource == Resource::"r"`, `resource in Resource::"r"` and
//!   `resource is Resource in Resource::"r"` match exactly that resource;
//!   `resource is Resource` matches all; other types never match.
//!
//! Slices are keyed by action kind, then resource name, with fallbacks for
//! kinds and names that no policy mentions. Identical slices share one
//! `PolicySet`. If the product grows past [`MAX_SLICED_ENTRIES`] (thousands
//! of policies each naming its own action and resource), slices are kept
//! per action only: still correct, just less sharp.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, ResourceConstraint};

use crate::request::{ACTION_TYPE, RESOURCE_TYPE};

/// The most policy entries all fine-grained slices together may hold.
pub(crate) const MAX_SLICED_ENTRIES: usize = 250_000;

/// Which actions a policy's scope can match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ActionScope {
    Any,
    Kinds(BTreeSet<String>),
}

/// Which resources a policy's scope can match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResourceScope {
    Any,
    Name(String),
    Never,
}

fn is_type(uid: &EntityUid, type_name: &str) -> bool {
    uid.type_name().namespace_components().next().is_none() && uid.type_name().basename() == type_name
}

fn action_scope(policy: &Policy) -> ActionScope {
    let kinds = |uids: &[EntityUid]| {
        ActionScope::Kinds(
            uids.iter().filter(|uid| is_type(uid, ACTION_TYPE)).map(|uid| uid.id().unescaped().to_owned()).collect(),
        )
    };
    match policy.action_constraint() {
        ActionConstraint::Any => ActionScope::Any,
        ActionConstraint::Eq(uid) => kinds(std::slice::from_ref(&uid)),
        ActionConstraint::In(uids) => kinds(&uids),
    }
}

fn resource_scope(policy: &Policy) -> ResourceScope {
    let named = |uid: &EntityUid| {
        if is_type(uid, RESOURCE_TYPE) {
            ResourceScope::Name(uid.id().unescaped().to_owned())
        } else {
            ResourceScope::Never
        }
    };
    match policy.resource_constraint() {
        ResourceConstraint::Any => ResourceScope::Any,
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) => named(&uid),
        ResourceConstraint::Is(type_name) => {
            if type_name.namespace_components().next().is_none() && type_name.basename() == RESOURCE_TYPE {
                ResourceScope::Any
            } else {
                ResourceScope::Never
            }
        }
        ResourceConstraint::IsIn(type_name, uid) => {
            if type_name.namespace_components().next().is_none() && type_name.basename() == RESOURCE_TYPE {
                named(&uid)
            } else {
                ResourceScope::Never
            }
        }
    }
}

/// The slices for one action kind (or for kinds no policy names).
#[derive(Debug)]
struct ActionSlices {
    by_resource: HashMap<String, Arc<PolicySet>>,
    other_resources: Arc<PolicySet>,
}

impl ActionSlices {
    fn get(&self, resource: &str) -> &PolicySet {
        self.by_resource.get(resource).unwrap_or(&self.other_resources)
    }
}

/// Every slice, by action kind then resource name.
#[derive(Debug)]
pub(crate) struct SliceIndex {
    by_action: HashMap<String, ActionSlices>,
    other_actions: ActionSlices,
    slice_count: usize,
}

impl SliceIndex {
    /// Indexes `policies` (which must have unique ids; a duplicate is the
    /// only way this fails).
    pub(crate) fn build(policies: &[Policy]) -> Result<Self, String> {
        let scopes: Vec<(ActionScope, ResourceScope)> =
            policies.iter().map(|p| (action_scope(p), resource_scope(p))).collect();
        let kinds: BTreeSet<&str> = scopes
            .iter()
            .flat_map(|(a, _)| match a {
                ActionScope::Any => Vec::new(),
                ActionScope::Kinds(kinds) => kinds.iter().map(String::as_str).collect(),
            })
            .collect();

        // The policies reachable for each named kind, and for other kinds.
        let reachable = |kind: Option<&str>| -> Vec<usize> {
            (0..policies.len())
                .filter(|&i| match &scopes[i] {
                    (_, ResourceScope::Never) => false,
                    (ActionScope::Any, _) => true,
                    (ActionScope::Kinds(kinds), _) => kind.is_some_and(|k| kinds.contains(k)),
                })
                .collect()
        };
        let per_action: Vec<(Option<&str>, Vec<usize>)> =
            kinds.iter().map(|&k| (Some(k), reachable(Some(k)))).chain([(None, reachable(None))]).collect();

        let fine_entries: usize = per_action
            .iter()
            .map(|(_, members)| {
                let resources = members.iter().filter(|&&i| matches!(scopes[i].1, ResourceScope::Name(_))).count();
                members.len().saturating_mul(resources + 1)
            })
            .fold(0_usize, usize::saturating_add);
        let fine = fine_entries <= MAX_SLICED_ENTRIES;

        let mut builder = Builder { policies, shared: BTreeMap::new() };
        let mut by_action = HashMap::new();
        let mut other_actions = None;
        for (kind, members) in per_action {
            let slices = if fine { builder.fine(&members, &scopes)? } else { builder.coarse(&members)? };
            match kind {
                Some(kind) => {
                    by_action.insert(kind.to_owned(), slices);
                }
                None => other_actions = Some(slices),
            }
        }
        let other_actions = match other_actions {
            Some(slices) => slices,
            None => builder.coarse(&[])?,
        };
        Ok(Self { by_action, other_actions, slice_count: builder.shared.len() })
    }

    /// The policies that can match a request for `kind` on `resource`.
    pub(crate) fn get(&self, kind: &str, resource: &str) -> &PolicySet {
        self.by_action.get(kind).unwrap_or(&self.other_actions).get(resource)
    }

    /// How many distinct slices exist.
    pub(crate) fn slice_count(&self) -> usize {
        self.slice_count
    }
}

/// Builds slices, sharing identical ones.
struct Builder<'a> {
    policies: &'a [Policy],
    shared: BTreeMap<Vec<usize>, Arc<PolicySet>>,
}

impl Builder<'_> {
    fn set(&mut self, members: Vec<usize>) -> Result<Arc<PolicySet>, String> {
        if let Some(set) = self.shared.get(&members) {
            return Ok(Arc::clone(set));
        }
        let set = Arc::new(
            PolicySet::from_policies(members.iter().filter_map(|&i| self.policies.get(i)).cloned())
                .map_err(|e| e.to_string())?,
        );
        self.shared.insert(members, Arc::clone(&set));
        Ok(set)
    }

    fn fine(&mut self, members: &[usize], scopes: &[(ActionScope, ResourceScope)]) -> Result<ActionSlices, String> {
        let resources: BTreeSet<&str> = members
            .iter()
            .filter_map(|&i| match &scopes[i].1 {
                ResourceScope::Name(name) => Some(name.as_str()),
                ResourceScope::Any | ResourceScope::Never => None,
            })
            .collect();
        let matching = |resource: Option<&str>| -> Vec<usize> {
            members
                .iter()
                .copied()
                .filter(|&i| match &scopes[i].1 {
                    ResourceScope::Any => true,
                    ResourceScope::Name(name) => resource == Some(name.as_str()),
                    ResourceScope::Never => false,
                })
                .collect()
        };
        let mut by_resource = HashMap::with_capacity(resources.len());
        for resource in resources {
            by_resource.insert(resource.to_owned(), self.set(matching(Some(resource)))?);
        }
        Ok(ActionSlices { by_resource, other_resources: self.set(matching(None))? })
    }

    fn coarse(&mut self, members: &[usize]) -> Result<ActionSlices, String> {
        Ok(ActionSlices { by_resource: HashMap::new(), other_resources: self.set(members.to_vec())? })
    }
}
