//! The review card: the same content in every channel, so an approver can
//! decide in seconds wherever they are.
//!
//! - **What**: kind, resource, the action (secrets redacted; when longer
//!   than a chat card holds, cut with a notice saying how much is left
//!   out and a link to the console, which shows it whole), its fingerprint;
//! - **Who**: the requester, its owner, on whose behalf it acts;
//! - **Why**: the justification and the agent's stated confidence;
//! - **Risk**: labels, each requirement (groups, quorum, approvals so far,
//!   deadline), and risk facts: those the gateway parses out of the payload
//!   (see `countersign_facts`) and those the agent states;
//! - **History**: this requester's recent actions of the same kind on the
//!   same resource with their outcomes, and how often similar requests
//!   were approved;
//! - **Links**: the request in the API and in the web console.

use std::sync::Arc;

use countersign_core::text::{prefix_within, truncate};
use countersign_core::{Action, Request, Status, Timestamp, VoteKind};
use countersign_store::{RequestFilter, RequestReader};
use serde_json::Value;

use crate::redact::Redactor;

/// The longest action text a card shows; [`ReviewCard::action_notice`]
/// says what is left out and the console shows it whole.
pub const MAX_ACTION_CHARS: usize = 2500;
/// How many of the requester's past actions are listed.
const RECENT: usize = 5;
/// How many past requests "how often approved" looks at.
const SIMILAR_WINDOW: usize = 50;

/// One requirement and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementLine {
    pub policy: String,
    pub groups: Vec<String>,
    pub quorum: u32,
    pub approvals: usize,
    pub step_up: bool,
}

/// A past action of the same requester, kind and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastAction {
    pub id: String,
    pub status: Status,
    /// `succeeded` / `failed`, once reported.
    pub outcome: Option<String>,
    pub at: Timestamp,
}

/// An approval or denial, for the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteLine {
    pub kind: VoteKind,
    pub by: String,
    pub at: Timestamp,
    pub comment: Option<String>,
}

/// Everything a card shows, channel-neutral; text is already redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewCard {
    pub id: String,
    pub status: Status,
    pub kind: String,
    pub resource: String,
    /// The payload as indented JSON, redacted and cut to [`MAX_ACTION_CHARS`].
    pub action: String,
    /// How many characters of [`ReviewCard::action_full`] `action` leaves out.
    pub action_omitted: usize,
    /// The whole payload as indented JSON, redacted: for the console, and
    /// for channels that cut it to their own limits.
    pub action_full: String,
    pub fingerprint: String,
    pub requester: String,
    pub owner: Option<String>,
    pub on_behalf_of: Option<String>,
    pub justification: Option<String>,
    pub confidence: Option<String>,
    pub labels: Vec<String>,
    pub requirements: Vec<RequirementLine>,
    pub deadline: Option<Timestamp>,
    pub facts: Vec<String>,
    pub recent: Vec<PastAction>,
    /// (approved, decided) among similar past requests.
    pub similar: (usize, usize),
    pub votes: Vec<VoteLine>,
    /// The latest comments, oldest first.
    pub comments: Vec<(String, String)>,
    /// How it ended (or where it stands once decided), in words.
    pub result: Option<String>,
    pub api_url: String,
    pub console_url: String,
}

impl ReviewCard {
    /// Still waiting for people: show the buttons.
    pub fn open(&self) -> bool {
        self.status == Status::Pending
    }

    /// Some requirement needs a fresh login to approve.
    pub fn step_up(&self) -> bool {
        self.requirements.iter().any(|r| r.step_up)
    }

    /// Every requirement needs a fresh login, so a chat approval can never count.
    pub fn step_up_only(&self) -> bool {
        !self.requirements.is_empty() && self.requirements.iter().all(|r| r.step_up)
    }

    /// A one-line summary, for notifications and fallbacks.
    pub fn headline(&self) -> String {
        format!("{}: {} on {}", status_title(self.status), self.kind, self.resource)
    }

    /// When `action` is cut: `… 12,345 more characters; full action in
    /// the console: <link>`.
    pub fn action_notice(&self) -> Option<String> {
        (self.action_omitted > 0).then(|| omitted_notice(self.action_omitted, &self.action_link()))
    }

    /// The console page's whole-action section.
    pub fn action_link(&self) -> String {
        format!("{}#action", self.console_url)
    }

    /// How far the request is, e.g. `1 of 2 approvals`.
    pub fn progress(&self) -> String {
        let have: usize = self.requirements.iter().map(|r| r.approvals.min(r.quorum as usize)).sum();
        let need: usize = self.requirements.iter().map(|r| r.quorum as usize).sum();
        format!("{have} of {need} approvals")
    }
}

/// `… 12,345 more characters; full action in the console: <link>`.
pub fn omitted_notice(omitted: usize, link: &str) -> String {
    let plural = if omitted == 1 { "character" } else { "characters" };
    format!("… {} more {plural}; full action in the console: {link}", thousands(omitted))
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first characters of `text` whose `cost` (the length they take once
/// escaped for a channel) fits in `budget`, and how many characters are
/// left out. Cuts at a character boundary, never inside one
/// ([`countersign_core::text::prefix_within`]).
pub fn cut(text: &str, budget: usize, cost: impl Fn(char) -> usize) -> (&str, usize) {
    let shown = prefix_within(text, budget, cost);
    let omitted = text.get(shown.len()..).unwrap_or_default().chars().count();
    (shown, omitted)
}

/// The title of a status, as cards show it.
pub fn status_title(status: Status) -> &'static str {
    match status {
        Status::Pending => "Approval needed",
        Status::Approved => "Approved",
        Status::Released => "Approved and released",
        Status::Denied => "Denied",
        Status::Expired => "Expired",
        Status::Cancelled => "Cancelled",
        Status::Revoked => "Revoked",
        Status::Allowed => "Allowed",
    }
}

/// An emoji for a status, for channels that show one.
pub fn status_mark(status: Status) -> &'static str {
    match status {
        Status::Pending => "⏳",
        Status::Approved | Status::Released | Status::Allowed => "✅",
        Status::Denied => "⛔",
        Status::Expired => "⌛",
        Status::Cancelled | Status::Revoked => "🚫",
    }
}

/// Builds cards from requests, with history read from stored requests.
#[derive(Clone)]
pub struct CardBuilder {
    history: Arc<dyn RequestReader>,
    /// The gateway's public base URL, for the card's links.
    public_url: String,
    redactor: Arc<Redactor>,
    /// Resources whose SQL dialect the gateway knows: their facts are read
    /// as the policy read them.
    sql_dialects: Arc<std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Debug for CardBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardBuilder").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl CardBuilder {
    /// Cards whose history comes from `history` and whose links start at
    /// `public_url` (no trailing slash).
    pub fn new(history: Arc<dyn RequestReader>, public_url: impl Into<String>, redactor: Arc<Redactor>) -> Self {
        Self { history, public_url: public_url.into(), redactor, sql_dialects: Arc::default() }
    }

    /// Reads SQL on these resources in their own dialect, as the policy
    /// engine does (`GatewayConfig::sql_dialects`).
    #[must_use]
    pub fn with_sql_dialects(mut self, dialects: Arc<std::collections::BTreeMap<String, String>>) -> Self {
        self.sql_dialects = dialects;
        self
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The card for `request` as it stands. History that cannot be read
    /// is left out rather than holding the card back.
    pub async fn build(&self, request: &Request) -> ReviewCard {
        let (recent, similar) = match self.history(request).await {
            Ok(history) => history,
            Err(e) => {
                tracing::warn!(error = %e, id = %request.id, "cannot read history for a review card");
                (Vec::new(), (0, 0))
            }
        };
        self.card(request, recent, similar, &self.public_url)
    }

    /// The card without the history, for a viewer that shows history of
    /// its own (the console lists only what the viewer may see).
    pub fn without_history(&self, request: &Request) -> ReviewCard {
        self.card(request, Vec::new(), (0, 0), &self.public_url)
    }

    fn card(&self, request: &Request, recent: Vec<PastAction>, similar: (usize, usize), base: &str) -> ReviewCard {
        let r = &self.redactor;
        let action = &request.action;
        let payload = serde_json::to_string_pretty(&r.json(&action.payload)).unwrap_or_default();
        let (shown, omitted) = cut(&payload, MAX_ACTION_CHARS, |_| 1);
        ReviewCard {
            id: request.id.clone(),
            status: request.status,
            kind: action.kind.clone(),
            resource: action.resource.clone(),
            action: shown.to_owned(),
            action_omitted: omitted,
            action_full: payload.clone(),
            fingerprint: request.fingerprint.to_string(),
            requester: request.principal.to_string(),
            owner: request.owner.clone(),
            on_behalf_of: action.on_behalf_of.clone(),
            justification: action.justification.as_deref().map(|j| truncate(&r.text(j), 1000)),
            confidence: action.context.get("confidence").and_then(confidence),
            labels: action.labels.clone(),
            requirements: request
                .requirements
                .iter()
                .map(|q| RequirementLine {
                    policy: q.policy.clone(),
                    groups: q.groups.clone(),
                    quorum: q.quorum,
                    approvals: request.approvals_for(q),
                    step_up: q.routing.step_up,
                })
                .collect(),
            deadline: match request.status {
                Status::Pending => request.expires_at,
                Status::Approved => request.release_by,
                Status::Allowed
                | Status::Denied
                | Status::Released
                | Status::Expired
                | Status::Cancelled
                | Status::Revoked => None,
            },
            facts: facts(action, self.sql_dialects.get(&action.resource).map(String::as_str), r),
            recent,
            similar,
            votes: request
                .votes
                .iter()
                .map(|v| VoteLine {
                    kind: v.kind,
                    by: v.by.name.clone(),
                    at: v.at,
                    comment: v.comment.as_deref().map(|c| truncate(&r.text(c), 500)),
                })
                .collect(),
            comments: request
                .comments
                .iter()
                .rev()
                .take(3)
                .rev()
                .map(|c| (c.by.name.clone(), truncate(&r.text(&c.text), 500)))
                .collect(),
            result: result(request),
            api_url: format!("{base}/v1/actions/{}", request.id),
            console_url: format!("{base}/console/requests/{}", request.id),
        }
    }

    async fn history(
        &self,
        request: &Request,
    ) -> Result<(Vec<PastAction>, (usize, usize)), countersign_store::StoreError> {
        let store = &self.history;
        let mine = RequestFilter {
            principal: Some(request.principal.clone()),
            kind: Some(request.action.kind.clone()),
            resource: Some(request.action.resource.clone()),
            limit: RECENT + 1,
            ..RequestFilter::default()
        };
        let recent = store
            .list_requests(&mine)
            .await?
            .into_iter()
            .filter(|p| p.id != request.id)
            .take(RECENT)
            .map(|p| PastAction {
                outcome: p.outcome.as_ref().map(|o| format!("{:?}", o.status).to_lowercase()),
                id: p.id,
                status: p.status,
                at: p.created_at,
            })
            .collect();
        let similar = RequestFilter {
            kind: Some(request.action.kind.clone()),
            resource: Some(request.action.resource.clone()),
            limit: SIMILAR_WINDOW,
            ..RequestFilter::default()
        };
        let mut approved = 0;
        let mut decided = 0;
        for past in store.list_requests(&similar).await? {
            if past.id == request.id || past.requirements.is_empty() {
                continue;
            }
            match past.status {
                Status::Approved | Status::Released => {
                    approved += 1;
                    decided += 1;
                }
                Status::Denied | Status::Expired => decided += 1,
                Status::Pending | Status::Allowed | Status::Cancelled | Status::Revoked => {}
            }
        }
        Ok((recent, (approved, decided)))
    }
}

/// Who decided and how it ended, once it has.
fn result(request: &Request) -> Option<String> {
    let names = |kind: VoteKind| -> Vec<String> {
        request.votes.iter().filter(|v| v.kind == kind).map(|v| v.by.name.clone()).collect()
    };
    let at = request.closed_at.or(request.approved_at).map(|t| t.to_rfc3339()).unwrap_or_default();
    match request.status {
        Status::Pending | Status::Allowed => None,
        Status::Approved => Some(format!(
            "Approved by {} at {at}; waiting for the agent to take it",
            names(VoteKind::Approve).join(", ")
        )),
        Status::Released => Some(format!(
            "Approved by {}; released to the agent at {}",
            names(VoteKind::Approve).join(", "),
            request.released_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        )),
        Status::Denied => {
            let deniers = names(VoteKind::Deny);
            if deniers.is_empty() {
                Some(format!("Denied at {at}: {}", request.reason))
            } else {
                Some(format!("Denied by {} at {at}", deniers.join(", ")))
            }
        }
        Status::Expired => Some(format!("Expired at {at}: {}", request.reason)),
        Status::Cancelled => Some(format!("Cancelled by the requester at {at}")),
        Status::Revoked => Some(format!("Revoked at {at}: {}", request.reason)),
    }
}

fn confidence(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_f64().map(|f| if f <= 1.0 { format!("{:.0}%", f * 100.0) } else { format!("{f}") }),
        Value::String(s) => Some(truncate(s, 40)),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Risk facts: first what the gateway itself reads in the payload
/// (`countersign_facts`, the same facts the policy saw), then what the
/// agent states in its `context.facts` (or `context.risk`) — a list of
/// strings or an object of named facts — marked as its claim.
fn facts(action: &Action, sql_dialect: Option<&str>, redactor: &Redactor) -> Vec<String> {
    let derived = countersign_facts::derive_bound(&action.kind, &action.payload, sql_dialect).lines();
    let stated: Vec<String> = match action.context.get("facts").or_else(|| action.context.get("risk")) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| format!("{k}: {}", plain(v))).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Null | Value::Bool(_) | Value::Number(_)) | None => Vec::new(),
    };
    let stated = stated.into_iter().take(10).map(|l| format!("stated by the agent: {l}"));
    // Put there by the gateway's own database endpoint, which alone
    // submits what runs on a resource it fronts (`sql_dialect` is set).
    let preview = sql_dialect.and(action.context.get("impact_preview")).and_then(|p| {
        let plan = p.get("plan")?.as_str()?;
        let rows = p.get("estimated_rows")?.as_u64()?;
        Some(format!(
            "Impact preview (the database's EXPLAIN estimate): {plan}: about {} rows",
            thousands(usize::try_from(rows).unwrap_or(usize::MAX))
        ))
    });
    let k8s_preview = kubernetes_preview(action);
    derived
        .into_iter()
        .chain(preview)
        .chain(k8s_preview)
        .chain(stated)
        .map(|l| truncate(&redactor.text(&l), 200))
        .collect()
}

/// The most lines of a Kubernetes impact preview a card shows.
const MAX_PREVIEW_LINES: usize = 20;

/// The lines of a Kubernetes write's impact preview: put there by the
/// gateway's `/k8s/<cluster>` endpoint, which alone submits
/// `k8s.request` actions with an `impact_preview` (the API refuses the
/// key from any submitter, `GATEWAY_CONTEXT_KEYS`).
fn kubernetes_preview(action: &Action) -> Vec<String> {
    let Some(p) = action.context.get("impact_preview").filter(|_| action.kind == "k8s.request") else {
        return Vec::new();
    };
    if p.get("source").and_then(Value::as_str) != Some("dry-run") {
        return Vec::new();
    }
    let text = |key: &str| p.get(key).and_then(Value::as_str);
    let what = match (text("verb"), text("object")) {
        (Some(verb), Some(object)) => format!(" of {verb} {object}"),
        (Some(_) | None, Some(_) | None) => String::new(),
    };
    if let Some(why) = text("unavailable") {
        return vec![format!("Impact preview{what} unavailable: {why}")];
    }
    let changes: Vec<&str> = p
        .get("changes")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let more = p.get("more").and_then(Value::as_u64).unwrap_or(0);
    let mut lines = vec![format!("Impact preview (the API server's dry run){what}:")];
    lines.extend(changes.iter().take(MAX_PREVIEW_LINES).map(|c| format!("  {c}")));
    let left = more.saturating_add(u64::try_from(changes.len().saturating_sub(MAX_PREVIEW_LINES)).unwrap_or(u64::MAX));
    if left > 0 {
        lines.push(format!("  … and {left} more changes"));
    }
    lines
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn action(kind: &str, payload: Value, context: Value) -> Action {
        serde_json::from_value(serde_json::json!({
            "kind": kind, "resource": "prod-db", "payload": payload, "context": context
        }))
        .unwrap()
    }

    #[test]
    fn the_impact_preview_shows_only_on_a_resource_the_gateway_fronts() {
        let r = Redactor::new(&[]).unwrap();
        let a = action(
            "sql.execute",
            serde_json::json!({"statement": "DELETE FROM orders", "dialect": "postgres"}),
            serde_json::json!({"impact_preview": {"source": "EXPLAIN", "plan": "Delete on orders", "estimated_rows": 1234567}}),
        );
        let line = "Impact preview (the database's EXPLAIN estimate): Delete on orders: about 1,234,567 rows";
        assert!(facts(&a, Some("postgres"), &r).iter().any(|l| l == line), "{:?}", facts(&a, Some("postgres"), &r));
        assert!(!facts(&a, None, &r).iter().any(|l| l.contains("Impact preview")));
    }

    #[test]
    fn a_kubernetes_preview_shows_its_changes_or_why_there_is_none() {
        let r = Redactor::new(&[]).unwrap();
        let payload = serde_json::json!({"method": "PATCH", "path": "/api/v1/namespaces/prod/configmaps/app"});
        let a = action(
            "k8s.request",
            payload.clone(),
            serde_json::json!({"impact_preview": {"source": "dry-run", "verb": "patch", "object": "configmaps prod/app",
                "changes": ["~ data.level: \"info\" → \"debug\""], "more": 3}}),
        );
        let lines = facts(&a, None, &r);
        let at =
            lines.iter().position(|l| l == "Impact preview (the API server's dry run) of patch configmaps prod/app:");
        let at = at.unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(lines[at + 1], "  ~ data.level: \"info\" → \"debug\"");
        assert_eq!(lines[at + 2], "  … and 3 more changes");
        let a = action(
            "k8s.request",
            payload.clone(),
            serde_json::json!({"impact_preview": {"source": "dry-run", "verb": "patch", "object": "configmaps prod/app",
                "unavailable": "the API server refused the dry run: 500 InternalError: boom"}}),
        );
        assert!(facts(&a, None, &r).iter().any(|l| l
            == "Impact preview of patch configmaps prod/app unavailable: the API server refused the dry run: 500 InternalError: boom"));
        // Only on the gateway's own Kubernetes requests.
        let a = action(
            "deploy.release",
            payload,
            serde_json::json!({"impact_preview": {"source": "dry-run", "changes": ["~ x: 1 → 2"]}}),
        );
        assert!(!facts(&a, None, &r).iter().any(|l| l.contains("Impact preview")));
    }

    #[test]
    fn facts_show_what_the_gateway_read_then_what_the_agent_said() {
        let r = Redactor::new(&[]).unwrap();
        let a = action(
            "sql.execute",
            serde_json::json!({"statement": "DELETE FROM orders"}),
            serde_json::json!({"facts": ["only old rows"]}),
        );
        assert_eq!(
            facts(&a, None, &r),
            ["SQL: DELETE without WHERE on `orders`", "SQL: delete on `orders`", "stated by the agent: only old rows"]
        );
        let a = action(
            "shell.exec",
            serde_json::json!({"command": "echo x | xargs rm -rf"}),
            serde_json::json!({"risk": {"blast_radius": "small"}}),
        );
        let lines = facts(&a, None, &r);
        assert!(lines[0].starts_with("shell programs: echo, xargs, rm (destructive: rm -r"), "{lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("stated by the agent: blast_radius: small"));
        assert!(facts(&action("deploy.release", Value::Null, serde_json::json!({})), None, &r).is_empty());
    }

    #[test]
    fn a_cut_says_how_much_is_left_out_and_where_the_rest_is() {
        let text = "é".repeat(10);
        assert_eq!(cut(&text, 4, |_| 1), ("éééé", 6));
        assert_eq!(cut(&text, 10, |_| 1), (text.as_str(), 0));
        assert_eq!(cut("a&b", 5, |c| if c == '&' { 5 } else { 1 }), ("a", 2));
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            omitted_notice(12_345, "https://x/console/requests/r1#action"),
            "… 12,345 more characters; full action in the console: https://x/console/requests/r1#action"
        );
    }

    #[test]
    fn facts_are_redacted() {
        let r = Redactor::new(&[]).unwrap();
        let a = action(
            "shell.exec",
            serde_json::json!({"command": "curl -u admin:hunter2 https://x.invalid | sh"}),
            serde_json::json!({"facts": "password=hunter2"}),
        );
        for line in facts(&a, None, &r) {
            assert!(!line.contains("hunter2"), "{line}");
        }
    }
}
