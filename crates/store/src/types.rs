//! Records the store keeps besides requests, and the shapes of its calls.

use countersign_audit::AuditDraft;
use countersign_core::{Principal, PrincipalKind, PrincipalRef, Refusal, Request, Status, Timestamp};
use serde::{Deserialize, Serialize};

/// A human identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// The person's name as the identity provider last gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the person last signed in through the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Timestamp>,
}

impl User {
    pub fn principal(&self) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            name: self.name.clone(),
            email: Some(self.email.clone()),
            owner: None,
            groups: self.groups.clone(),
        }
    }
}

/// An automated actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub groups: Vec<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl Agent {
    pub fn principal(&self) -> Principal {
        Principal {
            kind: PrincipalKind::Agent,
            name: self.name.clone(),
            email: None,
            owner: self.owner.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// A user to create. Only the SHA-256 hex hash of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
    pub token_hash: String,
    pub created_at: Timestamp,
}

/// What the identity provider says about a person at a login; it replaces
/// the user's email, display name and groups (the provider is the source
/// of truth for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub email: String,
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    pub login_at: Timestamp,
}

impl UserProfile {
    /// Whether saving this profile changes anything but the login time.
    pub fn changes(&self, user: &User) -> bool {
        self.email != user.email || self.display_name != user.display_name || self.groups != user.groups
    }
}

/// An agent to create. Only the SHA-256 hex hash of its key is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub name: String,
    pub owner: Option<String>,
    pub groups: Vec<String>,
    pub token_hash: String,
    pub created_at: Timestamp,
}

/// Lists return this many requests when the caller does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// Lists never return more than this many requests.
pub const MAX_LIMIT: usize = 1000;

/// How many requests a list asked for `requested` returns at most, the
/// same in every backend: 0 means [`DEFAULT_LIMIT`], and never more than
/// [`MAX_LIMIT`].
pub fn page_limit(requested: usize) -> usize {
    match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// Which requests to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub status: Option<Status>,
    pub principal: Option<PrincipalRef>,
    pub kind: Option<String>,
    pub resource: Option<String>,
    /// Only requests this audience may see: filtered in the store, before
    /// the limit, so that nobody's queue can be pushed out of a page by
    /// requests they cannot see.
    pub visible_to: Option<Audience>,
    /// Only requests after this one in the list's order (newest first):
    /// the next page.
    pub after: Option<Cursor>,
    /// At most this many, newest first; 0 means the store's default (100).
    pub limit: usize,
}

/// Who is looking: a principal sees the requests it submitted and those
/// that one of its groups may decide (a group named in a requirement).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub principal: Option<PrincipalRef>,
    pub groups: Vec<String>,
}

impl Audience {
    /// The audience keys (see [`audience_keys`]) that admit this audience.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.principal.iter().map(principal_key).collect();
        keys.extend(self.groups.iter().map(|g| group_key(g)));
        keys.sort();
        keys.dedup();
        keys
    }

    /// Whether `request` is visible to this audience (what a store's index
    /// of [`audience_keys`] answers).
    pub fn admits(&self, request: &Request) -> bool {
        self.principal.as_ref() == Some(&request.principal)
            || request.requirements.iter().any(|r| r.admits(&self.groups))
    }
}

/// The keys under which a store indexes who may see `request`: its
/// requester, and every group named in its requirements. Stores keep them
/// in an index table so that a list for one person reads only what that
/// person may see.
pub fn audience_keys(request: &Request) -> Vec<String> {
    let mut keys = vec![principal_key(&request.principal)];
    keys.extend(request.requirements.iter().flat_map(|r| r.groups.iter()).map(|g| group_key(g)));
    keys.sort();
    keys.dedup();
    keys
}

fn principal_key(principal: &PrincipalRef) -> String {
    format!("p:{}:{}", principal.kind.as_str(), principal.name)
}

fn group_key(group: &str) -> String {
    format!("g:{group}")
}

/// A position in a list of requests (newest first): the next page starts
/// after the request it names. Clients see it only as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Timestamp,
    pub id: String,
}

/// Ids longer than this are no request id (a cursor naming one is refused).
const CURSOR_ID_MAX: usize = 128;

impl Cursor {
    /// The position just after `request`.
    pub fn after(request: &Request) -> Self {
        Self { created_at: request.created_at, id: request.id.clone() }
    }

    /// The opaque text form: `c1` and the hex of `created_at.id`.
    pub fn encode(&self) -> String {
        let plain = format!("{}.{}", self.created_at.as_millis(), self.id);
        let mut text = String::with_capacity(2 + plain.len() * 2);
        text.push_str("c1");
        for byte in plain.bytes() {
            text.push_str(&format!("{byte:02x}"));
        }
        text
    }

    /// Reads [`Cursor::encode`]'s form; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("c1")?;
        if hex.len() % 2 != 0 || hex.len() > 2 * (CURSOR_ID_MAX + 24) {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .collect::<Option<Vec<u8>>>()?;
        let plain = String::from_utf8(bytes).ok()?;
        let (millis, id) = plain.split_once('.')?;
        let valid_id = !id.is_empty() && id.len() <= CURSOR_ID_MAX && !id.chars().any(char::is_control);
        let digits = millis.strip_prefix('-').unwrap_or(millis);
        if !valid_id || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self { created_at: Timestamp(millis.parse().ok()?), id: id.to_owned() })
    }
}

/// What a transition decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The request to save, if it changed.
    pub save: Option<Request>,
    /// Events to append in the same transaction, whether or not it changed
    /// (a refused attempt is audited too).
    pub events: Vec<AuditDraft>,
    /// What the caller is told.
    pub result: Result<(), Refusal>,
}

/// A transition run inside the store's transaction.
pub type UpdateFn = Box<dyn FnOnce(&Request) -> Update + Send + 'static>;

/// The request after an update, and the transition's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    pub request: Request,
    pub result: Result<(), Refusal>,
    /// The status the transition saw, read inside the same transaction (a
    /// read before the call could be stale: another move may commit in
    /// between).
    pub before: Status,
    /// Whether the transition saved a request different from the one it saw.
    pub changed: bool,
}

/// What another process or replica committed, as [`crate::Store::change_feed`]
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This request changed (its status, votes, comments or outcome).
    Request(String),
    /// This key of the key-value area changed.
    Kv { namespace: String, key: String },
    /// Anything may have changed (the feed reconnected and may have missed
    /// notices): re-check everything.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        for (millis, id) in [(0, "a"), (1_790_000_000_123, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), (-5, "r.1")] {
            let cursor = Cursor { created_at: Timestamp(millis), id: id.to_owned() };
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        let long = Cursor { created_at: Timestamp(1), id: "x".repeat(CURSOR_ID_MAX + 1) }.encode();
        let bad_hex = "c1zz".to_owned();
        let control = Cursor { created_at: Timestamp(1), id: "a\nb".to_owned() }.encode();
        let no_time = Cursor { created_at: Timestamp(1), id: "a".to_owned() }.encode().replacen("c131", "c1", 1);
        for text in ["", "c1", "c", "c2", "1.a", "c12e61", &bad_hex, &long, &control, &no_time, "c1\u{e9}"] {
            assert_eq!(Cursor::decode(text), None, "{text:?}");
        }
    }

    #[test]
    fn an_audience_admits_what_its_keys_index() {
        let action = countersign_core::Action {
            kind: "k".to_owned(),
            resource: "r".to_owned(),
            payload: serde_json::json!({}),
            on_behalf_of: None,
            justification: None,
            labels: Vec::new(),
            context: serde_json::Map::new(),
        };
        let request: Request = serde_json::from_value(serde_json::json!({
            "id": "r1", "fingerprint": "sha256:00", "principal": {"kind": "agent", "name": "bot"},
            "action": action, "status": "pending", "reason": "", "policies": [], "policy_hash": "",
            "requirements": [{"policy": "p", "groups": ["dba", "sre"], "quorum": 1, "timeout": 1, "valid_for": 1}],
            "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        let keys = audience_keys(&request);
        for (audience, admitted) in [
            (Audience { principal: Some(PrincipalRef::agent("bot")), groups: vec![] }, true),
            (Audience { principal: Some(PrincipalRef::user("bot")), groups: vec![] }, false),
            (Audience { principal: None, groups: vec!["sre".to_owned()] }, true),
            (Audience { principal: Some(PrincipalRef::user("x")), groups: vec!["web".to_owned()] }, false),
            (Audience::default(), false),
        ] {
            assert_eq!(audience.admits(&request), admitted, "{audience:?}");
            assert_eq!(audience.keys().iter().any(|k| keys.contains(k)), admitted, "{audience:?}");
        }
    }
}
