//! The policy engine: loads and checks a policy set once, then decides
//! actions against precomputed slices of it.
//!
//! Loading (in `load.rs`) reports every problem it finds (syntax,
//! templates, ids, annotations, schema) with `file:line:col`, so a policy
//! author sees them all in one run. Decisions are pure functions of the
//! loaded set and the request; the engine is immutable and `Send + Sync`,
//! meant to be shared behind an `Arc` and swapped whole on reload.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use cedar_policy::{Authorizer, Policy, PolicySet};
use countersign_core::{Action, Principal};

use crate::decision::{interpret, Decision, PolicyFacts};
use crate::error::PolicyLoadError;
use crate::load::{check_unique_ids, hash_sources, load_file, texts_start, validate, Loaded};
use crate::request;
use crate::slice::SliceIndex;
use crate::source::SourceText;

/// The optional schema file in a policy directory (Cedar schema syntax).
pub const SCHEMA_FILE: &str = "schema.cedarschema";

/// Values for approval annotations a policy leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Used when a permit has `@approvers` but no `@timeout`.
    pub timeout: Duration,
    /// Used when a permit has `@approvers` but no `@valid_for`.
    pub valid_for: Duration,
}

/// One policy (or schema) file's name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The display name used in ids and messages, e.g. `prod.cedar`.
    pub file: String,
    pub text: String,
}

/// Follows symlinks and accepts only a regular file: reading anything
/// else would fail later, or block (a FIFO).
fn check_regular_file(name: &str, path: &Path) -> Result<(), PolicyLoadError> {
    let metadata = std::fs::metadata(path).map_err(|source| PolicyLoadError::Io { file: name.to_owned(), source })?;
    let file_type = metadata.file_type();
    if file_type.is_file() {
        Ok(())
    } else {
        let what = if file_type.is_dir() { "a directory" } else { "not a regular file" };
        Err(PolicyLoadError::NotAFile { file: name.to_owned(), what })
    }
}

/// A loaded, checked policy set, ready to decide.
pub struct PolicyEngine {
    hash: String,
    files: Vec<String>,
    schema_file: Option<String>,
    ids: Vec<String>,
    facts: HashMap<String, PolicyFacts>,
    all: PolicySet,
    slices: SliceIndex,
    authorizer: Authorizer,
    /// Resources whose SQL dialect the gateway knows (see
    /// [`with_sql_dialects`](Self::with_sql_dialects)).
    sql_dialects: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    /// HTTP APIs the gateway fronts, by resource (see
    /// [`with_http_apis`](Self::with_http_apis)).
    http_apis: HttpApis,
}

/// The operations of each HTTP API the gateway fronts, by resource.
pub type HttpApis =
    std::sync::Arc<std::collections::BTreeMap<String, std::sync::Arc<countersign_facts::HttpApi>>>;

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("hash", &self.hash)
            .field("files", &self.files)
            .field("schema_file", &self.schema_file)
            .field("policies", &self.ids.len())
            .field("slices", &self.slices.slice_count())
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Reads every `*.cedar` file in `dir` (sorted by name, non-recursive)
    /// and an optional [`SCHEMA_FILE`], then loads them as
    /// [`from_sources`](Self::from_sources) does. Files are named by their
    /// file name alone.
    pub fn load_dir(dir: &Path, defaults: Defaults) -> Result<PolicyEngine, PolicyLoadError> {
        let (sources, schema) = Self::read_dir(dir)?;
        Self::from_sources(sources, schema, defaults)
    }

    /// The files [`load_dir`](Self::load_dir) loads, read into memory: the
    /// `*.cedar` files sorted by name, and the schema if there is one. What
    /// a gateway shares with its replicas, so they load exactly this set.
    pub fn read_dir(dir: &Path) -> Result<(Vec<PolicySource>, Option<PolicySource>), PolicyLoadError> {
        let dir_name = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => PolicyLoadError::MissingDir { dir: dir_name.clone() },
            _ => PolicyLoadError::Io { file: dir_name.clone(), source },
        })?;
        let mut policy_files = Vec::new();
        let mut schema_path = None;
        let mut problems = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| PolicyLoadError::Io { file: dir_name.clone(), source })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_schema = name == SCHEMA_FILE;
            if !is_schema && !name.ends_with(".cedar") {
                continue;
            }
            // A `*.cedar` entry that cannot be read (a dangling or looping
            // symlink, a directory, a FIFO) is an error, never skipped: the
            // policy it should hold may be the `forbid` that denies.
            if let Err(problem) = check_regular_file(&name, &path) {
                problems.push(problem);
                continue;
            }
            if is_schema {
                schema_path = Some((name, path));
            } else {
                policy_files.push((name, path));
            }
        }
        if let Some(error) = PolicyLoadError::from_problems(problems) {
            return Err(error);
        }
        if policy_files.is_empty() {
            return Err(PolicyLoadError::EmptyDir { dir: dir_name });
        }
        policy_files.sort();
        let read = |(file, path): (String, std::path::PathBuf)| {
            std::fs::read_to_string(&path)
                .map(|text| PolicySource { file: file.clone(), text })
                .map_err(|source| PolicyLoadError::Io { file, source })
        };
        let sources = policy_files.into_iter().map(read).collect::<Result<Vec<_>, _>>()?;
        let schema = schema_path.map(read).transpose()?;
        Ok((sources, schema))
    }

    /// Loads policies from in-memory files, in the given order, and checks
    /// them against `schema` (Cedar schema syntax, strict mode) if given.
    pub fn from_sources(
        sources: Vec<PolicySource>,
        schema: Option<PolicySource>,
        defaults: Defaults,
    ) -> Result<PolicyEngine, PolicyLoadError> {
        if sources.is_empty() {
            return Err(PolicyLoadError::NoSources);
        }
        let hash = hash_sources(&sources, schema.as_ref());
        let files: Vec<String> = sources.iter().map(|s| s.file.clone()).collect();
        let texts: Vec<SourceText> = sources.into_iter().map(|s| SourceText::new(s.file, s.text)).collect();

        let mut problems = Vec::new();
        let mut loaded: Vec<Loaded> = Vec::new();
        for (file_index, source) in texts.iter().enumerate() {
            load_file(file_index, source, &defaults, &mut loaded, &mut problems);
        }
        check_unique_ids(&loaded, &mut problems);
        if let Some(error) = PolicyLoadError::from_problems(problems) {
            return Err(error);
        }

        let mut all = PolicySet::new();
        let mut problems = Vec::new();
        for policy in &loaded {
            if let Err(e) = all.add(policy.policy.clone()) {
                problems.push(PolicyLoadError::Annotation {
                    at: policy.at.clone(),
                    policy: policy.id.clone(),
                    message: e.to_string(),
                });
            }
        }
        if let Some(schema) = &schema {
            validate(schema, &all, &loaded, &texts, &mut problems);
        }
        if let Some(error) = PolicyLoadError::from_problems(problems) {
            return Err(error);
        }

        let policies: Vec<Policy> = loaded.iter().map(|l| l.policy.clone()).collect();
        let slices = SliceIndex::build(&policies).map_err(|e| PolicyLoadError::Annotation {
            at: loaded.first().map_or_else(|| texts_start(&texts), |l| l.at.clone()),
            policy: loaded.first().map_or_else(String::new, |l| l.id.clone()),
            message: format!("cannot index the policy set: {e}"),
        })?;
        Ok(PolicyEngine {
            hash,
            files,
            schema_file: schema.map(|s| s.file),
            ids: loaded.iter().map(|l| l.id.clone()).collect(),
            facts: loaded.into_iter().map(|l| (l.id, l.facts)).collect(),
            all,
            slices,
            authorizer: Authorizer::new(),
            sql_dialects: std::sync::Arc::default(),
            http_apis: std::sync::Arc::default(),
        })
    }

    /// `sha256:<hex>` over the file names and texts (and the schema), so
    /// any edit, rename or schema change gives a different hash.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn policy_count(&self) -> usize {
        self.ids.len()
    }

    /// Policy ids in load order: files in order, policies in file order.
    pub fn policy_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// Policy file names in load order (the schema file is not included).
    pub fn files(&self) -> Vec<String> {
        self.files.clone()
    }

    /// The schema file the policies were validated against, if any.
    pub fn schema_file(&self) -> Option<&str> {
        self.schema_file.as_deref()
    }

    /// The whole policy set, ids as reported in decisions.
    pub fn cedar_policies(&self) -> &PolicySet {
        &self.all
    }

    /// How many distinct precomputed slices the engine holds.
    pub fn slice_count(&self) -> usize {
        self.slices.slice_count()
    }

    /// Judges SQL for these resources in the dialect given (a database the
    /// gateway fronts), not in every dialect a payload could claim.
    #[must_use]
    pub fn with_sql_dialects(mut self, dialects: std::sync::Arc<std::collections::BTreeMap<String, String>>) -> Self {
        self.sql_dialects = dialects;
        self
    }

    /// Matches HTTP requests on these resources against their APIs'
    /// operations (an API the gateway fronts, with an OpenAPI document).
    #[must_use]
    pub fn with_http_apis(mut self, apis: HttpApis) -> Self {
        self.http_apis = apis;
        self
    }

    /// Decides `action` by `principal`, evaluating only the policies whose
    /// scope can match it (the production path).
    pub fn decide(&self, principal: &Principal, action: &Action) -> Decision {
        self.evaluate(self.slices.get(&action.kind, &action.resource), principal, action)
    }

    /// Decides by evaluating the whole policy set, without slicing; gives
    /// the same answer as [`decide`](Self::decide), more slowly. For tests
    /// and benchmarks.
    pub fn decide_unsliced(&self, principal: &Principal, action: &Action) -> Decision {
        self.evaluate(&self.all, principal, action)
    }

    fn evaluate(&self, policies: &PolicySet, principal: &Principal, action: &Action) -> Decision {
        let bound = countersign_facts::Bound {
            sql_dialect: self.sql_dialects.get(&action.resource).map(String::as_str),
            http_api: self.http_apis.get(&action.resource).map(std::sync::Arc::as_ref),
        };
        match request::build(principal, action, bound) {
            Ok(cedar) => {
                let response = self.authorizer.is_authorized(&cedar.request, policies, &cedar.entities);
                interpret(&response, &self.facts, &self.hash)
            }
            Err(e) => Decision::unevaluable(e.to_string(), &self.hash),
        }
    }
}
