//! Every audit event as an OCSF event (schema 1.5.0): which class and
//! activity it is, its severity, and the OCSF JSON itself.
//!
//! The mapping is an exhaustive `match` over [`Event`], so a new event kind
//! does not compile until it has a class. The table is in the README
//! (section "SIEM sinks"). The audit event itself rides along in
//! `unmapped.countersign` (sequence number, hash, previous hash, the
//! latest signed checkpoint, the body), so an OCSF copy is verifiable
//! against the log.

use countersign_core::events::{Attempt, AttemptRefused, Event, Parsed, Rejection};
use countersign_core::Status;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::record::Exported;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.5.0";

/// OCSF `severity_id`; refusals are filtered by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Informational = 1,
    Low = 2,
    Medium = 3,
    High = 4,
    Critical = 5,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "informational" => Some(Self::Informational),
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }

    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Informational => "Informational",
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
        }
    }
}

/// The OCSF classes events map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 3001, Identity & Access Management.
    AccountChange,
    /// 3002.
    Authentication,
    /// 3003.
    AuthorizeSession,
    /// 3005.
    UserAccess,
    /// 6002, Application Activity.
    ApplicationLifecycle,
    /// 6003.
    ApiActivity,
}

impl Class {
    pub fn uid(self) -> u32 {
        match self {
            Self::AccountChange => 3001,
            Self::Authentication => 3002,
            Self::AuthorizeSession => 3003,
            Self::UserAccess => 3005,
            Self::ApplicationLifecycle => 6002,
            Self::ApiActivity => 6003,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::AccountChange => "Account Change",
            Self::Authentication => "Authentication",
            Self::AuthorizeSession => "Authorize Session",
            Self::UserAccess => "User Access Management",
            Self::ApplicationLifecycle => "Application Lifecycle",
            Self::ApiActivity => "API Activity",
        }
    }

    fn category(self) -> (u32, &'static str) {
        match self {
            Self::AccountChange | Self::Authentication | Self::AuthorizeSession | Self::UserAccess => {
                (3, "Identity & Access Management")
            }
            Self::ApplicationLifecycle | Self::ApiActivity => (6, "Application Activity"),
        }
    }
}

/// What an audit event is in OCSF terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub class: Class,
    /// OCSF `activity_id` and its caption.
    pub activity: (u8, &'static str),
    /// Whether what was attempted happened.
    pub success: bool,
    pub severity: Severity,
    /// A refused call or move (filtered by `refusals_min_severity`).
    pub refusal: bool,
    /// The identity the event is about (identity classes), else the actor.
    pub user: Option<String>,
    /// What was signed in to (authentication).
    pub service: Option<String>,
    /// The request the event belongs to.
    pub request: Option<String>,
}

const CREATE: (u8, &str) = (1, "Create");
const READ: (u8, &str) = (2, "Read");
const UPDATE: (u8, &str) = (3, "Update");
const DELETE: (u8, &str) = (4, "Delete");

fn other(caption: &'static str) -> (u8, &'static str) {
    (99, caption)
}

impl Mapping {
    fn new(class: Class, activity: (u8, &'static str)) -> Self {
        Self {
            class,
            activity,
            success: true,
            severity: Severity::Informational,
            refusal: false,
            user: None,
            service: None,
            request: None,
        }
    }

    fn failed(mut self, severity: Severity) -> Self {
        self.success = false;
        self.severity = severity;
        self
    }

    fn refused(self, severity: Severity) -> Self {
        Self { refusal: true, ..self.failed(severity) }
    }

    fn user(mut self, name: impl Into<String>) -> Self {
        self.user = Some(name.into());
        self
    }

    fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    fn request(mut self, id: impl Into<String>) -> Self {
        self.request = Some(id.into());
        self
    }
}

/// The OCSF class, activity and severity of a stored event. An event this
/// version cannot read (a newer replica's) is exported as API activity
/// "Other", so nothing is held back.
pub fn map(parsed: &Parsed) -> Mapping {
    match parsed {
        Parsed::Known(event) => map_event(event),
        Parsed::Unknown(_) => Mapping::new(Class::ApiActivity, other("Unknown event")),
    }
}

fn map_event(event: &Event) -> Mapping {
    use Class::{AccountChange, ApiActivity, ApplicationLifecycle, Authentication, AuthorizeSession, UserAccess};
    let request = event.request().map(str::to_owned);
    let mapping = match event {
        // Actions and the gateway's decisions on them: API activity.
        Event::ActionSubmitted(_) => Mapping::new(ApiActivity, CREATE),
        Event::ActionDecided(decided) => match decided.status {
            Status::Denied => Mapping::new(ApiActivity, other("Decide")).failed(Severity::Low),
            Status::Pending
            | Status::Allowed
            | Status::Approved
            | Status::Released
            | Status::Expired
            | Status::Cancelled
            | Status::Revoked => Mapping::new(ApiActivity, other("Decide")),
        },
        Event::ActionApproved(_) => Mapping::new(ApiActivity, other("Approve")),
        Event::ActionDenied(_) => Mapping::new(ApiActivity, other("Deny")).failed(Severity::Low),
        Event::ActionReleased(_) => Mapping::new(ApiActivity, READ),
        Event::OutcomeReported(_) => Mapping::new(ApiActivity, UPDATE),
        Event::ActionCancelled(_) => Mapping::new(ApiActivity, DELETE),
        Event::ActionExpired(_) => Mapping::new(ApiActivity, other("Expire")),
        Event::ActionRevoked(_) => Mapping::new(ApiActivity, other("Revoke")).failed(Severity::Low),
        Event::CommentAdded(_) => Mapping::new(ApiActivity, CREATE),
        // An approver's vote grants (or refuses) the request its privilege.
        Event::ApprovalAccepted(vote) => {
            Mapping::new(AuthorizeSession, (1, "Assign Privileges")).user(vote.person.to_string())
        }
        Event::DenialAccepted(vote) => {
            Mapping::new(AuthorizeSession, other("Deny Privileges")).user(vote.person.to_string())
        }
        Event::VotesWithdrawn(withdrawn) => Mapping::new(UserAccess, (2, "Revoke Privileges")).user(&withdrawn.by),
        Event::ActionEscalated(escalated) => {
            Mapping::new(AuthorizeSession, (2, "Assign Groups")).user(format!("group:{}", escalated.to))
        }
        Event::AttemptRefused(AttemptRefused::Move(refused)) => {
            let severity = match refused.attempt {
                Attempt::Approve | Attempt::Deny if refused.code == "self_approval" => Severity::High,
                Attempt::Approve | Attempt::Deny => Severity::Medium,
                Attempt::Cancel | Attempt::Release | Attempt::Outcome => Severity::Low,
            };
            Mapping::new(ApiActivity, other("Refused move")).refused(severity)
        }
        Event::AttemptRefused(AttemptRefused::Record(_)) => {
            Mapping::new(Authentication, (1, "Logon")).service("countersign console").refused(Severity::Medium)
        }
        // The policy set is the application's configuration.
        Event::PolicyLoaded(_) | Event::PolicyAdopted(_) => Mapping::new(ApplicationLifecycle, (8, "Update")),
        Event::PolicyLoadFailed(_) => Mapping::new(ApplicationLifecycle, (8, "Update")).failed(Severity::Medium),
        // Identities.
        Event::UserCreated(created) => Mapping::new(AccountChange, CREATE).user(&created.name),
        Event::UserUpdated(updated) => Mapping::new(AccountChange, other("Update")).user(&updated.name),
        Event::UserRevoked(revoked) | Event::AgentRevoked(revoked) => {
            Mapping::new(AccountChange, (5, "Disable")).user(&revoked.name)
        }
        Event::AgentCreated(created) => Mapping::new(AccountChange, CREATE).user(&created.name),
        Event::IdentityBound(bound) => Mapping::new(AccountChange, other("Bind")).user(&bound.name),
        Event::IdentityBindingRefused(refused) => Mapping::new(Authentication, (1, "Logon"))
            .user(&refused.name)
            .service(&refused.source)
            .refused(Severity::High),
        Event::ConsoleLogin(_) => Mapping::new(Authentication, (1, "Logon")).service("countersign console"),
        Event::ConsoleLogout(_) => Mapping::new(Authentication, (2, "Logoff")).service("countersign console"),
        // Refused calls.
        Event::RequestRejected(Rejection::Call(fields)) => {
            let severity = match fields.code() {
                Some("unauthenticated" | "forbidden" | "self_approval") => Severity::Medium,
                Some(_) | None => Severity::Low,
            };
            Mapping::new(ApiActivity, other("Rejected call")).refused(severity)
        }
        Event::RequestRejected(Rejection::Message(_)) | Event::McpUpstreamMessageDropped(_) => {
            Mapping::new(ApiActivity, other("Rejected message")).refused(Severity::Low)
        }
        // Without a code the chat platform's signature or token failed:
        // someone may be forging clicks.
        Event::IntegrationRejected(fields) => {
            let severity = match fields.code() {
                Some("rate_limited") => Severity::Low,
                Some(_) => Severity::Medium,
                None => Severity::High,
            };
            Mapping::new(ApiActivity, other("Rejected call")).refused(severity)
        }
        Event::RefusalsAggregated(_) => Mapping::new(ApiActivity, other("Rejected calls")).refused(Severity::Medium),
        // Channels.
        Event::ChannelStarted(started) => Mapping::new(ApplicationLifecycle, (3, "Start")).service(&started.channel),
        Event::ChannelClick(click) => {
            let mapping = Mapping::new(ApiActivity, other("Click")).request(&click.request);
            match &click.refused {
                Some(_) => mapping.refused(Severity::Medium),
                None => mapping,
            }
        }
        Event::WebhookDelivery(delivery) => {
            let mapping = Mapping::new(ApiActivity, CREATE).request(&delivery.request);
            if delivery.ok {
                mapping
            } else {
                mapping.failed(Severity::Low)
            }
        }
        // Database sessions: a sign-in to the database, through the gateway.
        Event::DatabaseSessionOpened(opened) => Mapping::new(Authentication, (1, "Logon")).service(&opened.resource),
        Event::DatabaseSessionClosed(closed) => Mapping::new(Authentication, (2, "Logoff")).service(&closed.resource),
    };
    match (mapping.request.is_none(), request) {
        (true, Some(id)) => mapping.request(id),
        (true, None) | (false, _) => mapping,
    }
}

/// The OCSF event of one exported audit event.
pub fn event(record: &Exported, mapping: &Mapping) -> Value {
    let class = mapping.class;
    let (category_uid, category_name) = class.category();
    let (activity_id, activity_name) = mapping.activity;
    let actor_user = user(&record.event.actor);
    let subject = mapping.user.as_deref().map_or_else(|| actor_user.clone(), user);
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_owned(), value);
    };
    put("class_uid", json!(class.uid()));
    put("class_name", json!(class.name()));
    put("category_uid", json!(category_uid));
    put("category_name", json!(category_name));
    put("activity_id", json!(activity_id));
    put("activity_name", json!(activity_name));
    put("type_uid", json!(u64::from(class.uid()) * 100 + u64::from(activity_id)));
    put("type_name", json!(format!("{}: {activity_name}", class.name())));
    put("time", json!(record.event.time.as_millis()));
    put("severity_id", json!(mapping.severity.id()));
    put("severity", json!(mapping.severity.name()));
    let (status_id, status) = if mapping.success { (1, "Success") } else { (2, "Failure") };
    put("status_id", json!(status_id));
    put("status", json!(status));
    if let Some(code) = record.body().get("code").and_then(Value::as_str) {
        put("status_code", json!(code));
    }
    put("message", json!(record.summary()));
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": {"name": "countersign", "vendor_name": "countersign", "version": env!("CARGO_PKG_VERSION")},
        "uid": record.event.hash,
        "sequence": record.event.seq,
        "log_name": "audit",
        "event_code": record.event.kind,
    });
    if let (Some(id), Some(meta)) = (&mapping.request, metadata.as_object_mut()) {
        meta.insert("correlation_uid".to_owned(), json!(id));
    }
    put("metadata", metadata);
    // Application Lifecycle has no `actor`; who acted is in `unmapped`.
    if class != Class::ApplicationLifecycle {
        put("actor", json!({"user": actor_user}));
    }
    match class {
        Class::ApiActivity => {
            put("api", json!({"operation": record.event.kind, "service": {"name": "countersign"}}));
            put("src_endpoint", source(record));
            if let Some(id) = &mapping.request {
                put("resources", json!([{"uid": id, "type": "countersign request"}]));
            }
        }
        Class::AccountChange => put("user", subject),
        Class::Authentication => {
            put("user", subject);
            put("service", json!({"name": mapping.service.as_deref().unwrap_or("countersign")}));
            if let Some(endpoint) = source_ip(record) {
                put("src_endpoint", json!({"ip": endpoint}));
            }
        }
        Class::AuthorizeSession => {
            put("user", subject);
            let privilege = match &mapping.request {
                Some(id) => format!("{}:{id}", record.event.kind),
                None => record.event.kind.clone(),
            };
            put("privileges", json!([privilege]));
        }
        Class::UserAccess => {
            put("user", subject);
            let privilege =
                mapping.request.as_deref().map_or_else(|| "approve".to_owned(), |id| format!("approve:{id}"));
            put("privileges", json!([privilege]));
        }
        Class::ApplicationLifecycle => {
            let name =
                mapping.service.as_deref().map_or_else(|| "countersign".to_owned(), |s| format!("countersign {s}"));
            put("app", json!({"name": name, "vendor_name": "countersign", "version": env!("CARGO_PKG_VERSION")}));
        }
    }
    put("unmapped", json!({"countersign": record.envelope()}));
    Value::Object(out)
}

/// An OCSF `user` for `user:alice`, `agent:bot`, `system`, `cli:local`, …
fn user(actor: &str) -> Value {
    let (kind, name) = actor.split_once(':').unwrap_or(("", actor));
    let (type_id, type_name) = match kind {
        "user" => (1, "User"),
        "" if name == "system" => (3, "System"),
        _ => (99, "Other"),
    };
    let name = if name.is_empty() { actor } else { name };
    json!({"name": name, "uid": actor, "type_id": type_id, "type": type_name})
}

/// The caller's address, when the event recorded one.
fn source_ip(record: &Exported) -> Option<String> {
    let body = record.body();
    let text = body.get("source").or_else(|| body.get("peer")).and_then(Value::as_str)?;
    let host = text.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()).map_or(text, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

/// Where the call came from: its address when known, else the caller's name.
fn source(record: &Exported) -> Value {
    match source_ip(record) {
        Some(ip) => json!({"ip": ip}),
        None => json!({"name": record.event.actor}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::events::Parsed;

    const GOLDEN: &str = include_str!("../../core/tests/golden/events.jsonl");

    #[test]
    fn every_golden_event_maps_to_a_class_with_its_chain_fields() {
        for (n, line) in GOLDEN.lines().enumerate() {
            let record: Value = serde_json::from_str(line).unwrap();
            let kind = record["type"].as_str().unwrap();
            let body = serde_json::to_string(&record["body"]).unwrap();
            let parsed = Parsed::read(kind, &body);
            assert!(matches!(parsed, Parsed::Known(_)), "line {n}");
            let exported = crate::record::tests::exported(n as u64 + 1, kind, record["actor"].as_str().unwrap(), &body);
            let mapping = map(&parsed);
            let ocsf = event(&exported, &mapping);
            assert_eq!(ocsf["class_uid"], mapping.class.uid());
            assert_eq!(ocsf["metadata"]["sequence"], n as u64 + 1);
            assert_eq!(ocsf["unmapped"]["countersign"]["hash"], exported.event.hash);
        }
    }

    #[test]
    fn refusals_are_graded() {
        let read = |kind: &str, body: &str| map(&Parsed::read(kind, body));
        let selfie = read("attempt.refused", r#"{"attempt":"approve","code":"self_approval","id":"r","message":"no"}"#);
        assert_eq!((selfie.refusal, selfie.severity), (true, Severity::High));
        let forged = read("integration.rejected", r#"{"integration":"slack","reason":"bad signature","source":"x"}"#);
        assert_eq!(forged.severity, Severity::High);
        let limited = read("integration.rejected", r#"{"code":"rate_limited","integration":"slack","source":"x"}"#);
        assert_eq!(limited.severity, Severity::Low);
        let approved = read("action.approved", r#"{"id":"r","reason":"ok","release_by":null}"#);
        assert!(!approved.refusal);
    }
}
