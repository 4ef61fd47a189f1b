//! Loading one policy set: parsing each file, naming policies, reading
//! their annotations, checking ids are unique, validating against the
//! schema, and hashing the sources.
//!
//! Every step collects problems instead of stopping at the first, so an
//! author sees everything wrong with a set in one run.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use sha2::{Digest, Sha256};

use crate::annotations;
use crate::decision::PolicyFacts;
use crate::engine::{Defaults, PolicySource};
use crate::error::{Location, PolicyLoadError};
use crate::source::{diagnostic_message, statement_starts, SourceText};

/// A policy as loaded, before it joins the set.
pub(crate) struct Loaded {
    pub(crate) id: String,
    pub(crate) at: Location,
    pub(crate) file_index: usize,
    pub(crate) offset: usize,
    pub(crate) policy: Policy,
    pub(crate) facts: PolicyFacts,
}

pub(crate) fn texts_start(texts: &[SourceText]) -> Location {
    texts.first().map_or_else(|| Location { file: String::new(), line: 1, column: 1 }, |t| t.location(0))
}

/// Parses one file, appending its policies and problems.
pub(crate) fn load_file(
    file_index: usize,
    source: &SourceText,
    defaults: &Defaults,
    loaded: &mut Vec<Loaded>,
    problems: &mut Vec<PolicyLoadError>,
) {
    let set = match PolicySet::from_str(&source.text) {
        Ok(set) => set,
        Err(errors) => {
            problems.extend(errors.iter().map(|e| PolicyLoadError::Syntax {
                at: source.diagnostic_location(e, 0),
                message: diagnostic_message(e),
            }));
            return;
        }
    };
    let starts = statement_starts(&source.text);
    let offset_of = |generated: &PolicyId| -> (usize, usize) {
        let index =
            AsRef::<str>::as_ref(generated).strip_prefix("policy").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        (index, starts.get(index).copied().unwrap_or(0))
    };
    let mut templates: Vec<usize> = set.templates().map(|t| offset_of(t.id()).1).collect();
    templates.sort_unstable();
    problems.extend(templates.into_iter().map(|offset| PolicyLoadError::Template { at: source.location(offset) }));

    let mut policies: Vec<(usize, usize, &Policy)> = set
        .policies()
        .map(|p| {
            let (index, offset) = offset_of(p.id());
            (index, offset, p)
        })
        .collect();
    policies.sort_by_key(|&(index, _, _)| index);
    let stem =
        Path::new(&source.file).file_stem().map_or_else(|| source.file.clone(), |s| s.to_string_lossy().into_owned());
    for (index, offset, policy) in policies {
        let at = source.location(offset);
        let id = match annotations::explicit_id(policy) {
            Ok(Some(id)) => id,
            Ok(None) => format!("{stem}.{index}"),
            Err(message) => {
                problems.push(PolicyLoadError::Annotation { at, policy: format!("{stem}.{index}"), message });
                continue;
            }
        };
        match annotations::approval(policy, defaults) {
            Ok(approval) => loaded.push(Loaded {
                policy: policy.new_id(PolicyId::new(&id)),
                facts: PolicyFacts { effect: policy.effect(), approval },
                id,
                at,
                file_index,
                offset,
            }),
            Err(messages) => problems.extend(messages.into_iter().map(|message| PolicyLoadError::Annotation {
                at: at.clone(),
                policy: id.clone(),
                message,
            })),
        }
    }
}

pub(crate) fn check_unique_ids(loaded: &[Loaded], problems: &mut Vec<PolicyLoadError>) {
    let mut seen: HashMap<&str, &Location> = HashMap::new();
    for policy in loaded {
        if let Some(first) = seen.get(policy.id.as_str()) {
            problems.push(PolicyLoadError::DuplicateId {
                id: policy.id.clone(),
                at: policy.at.clone(),
                first: (*first).clone(),
            });
        } else {
            seen.insert(&policy.id, &policy.at);
        }
    }
}

/// Parses the schema and validates the set against it in strict mode.
pub(crate) fn validate(
    schema: &PolicySource,
    all: &PolicySet,
    loaded: &[Loaded],
    texts: &[SourceText],
    problems: &mut Vec<PolicyLoadError>,
) {
    let schema_text = SourceText::new(schema.file.clone(), schema.text.clone());
    let parsed = match Schema::from_cedarschema_str(&schema.text) {
        Ok((parsed, _warnings)) => parsed,
        Err(e) => {
            problems.push(PolicyLoadError::Schema {
                at: schema_text.diagnostic_location(&e, 0),
                message: diagnostic_message(&e),
            });
            return;
        }
    };
    let by_id: HashMap<&str, &Loaded> = loaded.iter().map(|l| (l.id.as_str(), l)).collect();
    let result = Validator::new(parsed).validate(all, ValidationMode::Strict);
    let mut found: Vec<PolicyLoadError> = result
        .validation_errors()
        .map(|e| {
            let id: &str = e.policy_id().as_ref();
            let at = by_id
                .get(id)
                .and_then(|l| texts.get(l.file_index).map(|t| t.diagnostic_location(e, l.offset)))
                .unwrap_or_else(|| schema_text.location(0));
            let message = diagnostic_message(e);
            // Cedar repeats the id that the error already carries.
            let message = message.strip_prefix(&format!("for policy `{id}`, ")).map_or(message.clone(), str::to_owned);
            PolicyLoadError::Validation { at, policy: id.to_owned(), message }
        })
        .collect();
    found.sort_by_key(ToString::to_string);
    problems.extend(found);
}

/// The policy-set hash: SHA-256 over length-prefixed, tagged fields, with
/// policy files sorted by name, so that file order does not matter but any
/// change to a name or text does.
pub(crate) fn hash_sources(sources: &[PolicySource], schema: Option<&PolicySource>) -> String {
    fn field(hasher: &mut Sha256, tag: u8, bytes: &[u8]) {
        hasher.update([tag]);
        hasher.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
        hasher.update(bytes);
    }
    let mut pairs: Vec<(&str, &str)> = sources.iter().map(|s| (s.file.as_str(), s.text.as_str())).collect();
    pairs.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(b"countersign-policy-set/v1");
    for (file, text) in pairs {
        field(&mut hasher, b'F', file.as_bytes());
        field(&mut hasher, b'T', text.as_bytes());
    }
    if let Some(schema) = schema {
        field(&mut hasher, b'S', schema.file.as_bytes());
        field(&mut hasher, b'X', schema.text.as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
