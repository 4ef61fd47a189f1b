//! How a principal and an action become a Cedar request.
//!
//! # The Cedar request
//!
//! | Cedar       | built from                                                                 |
//! |-------------|-----------------------------------------------------------------------------|
//! | `principal` | `Agent::"<name>"` or `User::"<name>"`, a member (`in`) of `Group::"<g>"` for each of its groups, with attributes `name` and, when known, `owner` (agents) and `email` (users) |
//! | `action`    | `Action::"<kind>"`, e.g. `Action::"sql.execute"`                          |
//! | `resource`  | `Resource::"<resource>"` with attribute `name` (the same string, so `resource.name like "prod*"` works) |
//! | `context`   | `{payload, labels, on_behalf_of, justification, context}` as submitted; `labels` is a set of strings; `on_behalf_of` and `justification` are left out when absent; plus `facts` |
//! | `context.facts` | the risk facts [`countersign_facts::derive`] finds in the payload, converted like `payload`: `{shell, sql, kubectl, terraform, http}`, each record present when the payload's fields call for it (`argv`/`command`/`stdin`, `statement`, `plan`, kubectl `args`), whatever the kind, or when the kind expects it (`shell.*`, `sql.*`, `k8s.*`/`kubectl.*`, `terraform.*`, `http.*`); an empty record otherwise |
//!
//! So a policy can say `principal in Group::"dba"`,
//! `context.facts.sql.delete_without_where`, `context.facts.shell.programs.contains("rm")`,
//! `context.labels.contains("pii")`, `resource.name like "prod*"` or
//! `context.context.confidence.lessThan(decimal("0.9"))`. Read a facts
//! record only for its kinds (`action == Action::"sql.execute"`) or behind
//! `context.facts has sql`. Facts are derived here, on every decision, from
//! the payload alone: the submitter cannot set them, and they are not part
//! of the fingerprint (the payload they come from is).
//!
//! # JSON to Cedar values
//!
//! `payload` and `context` are free JSON; they are converted so that no
//! ordinary JSON document can make a decision fail:
//!
//! | JSON                         | Cedar                                                        |
//! |------------------------------|--------------------------------------------------------------|
//! | `true` / `false`             | boolean                                                      |
//! | string                       | string                                                       |
//! | integer within 64-bit signed | `Long`                                                       |
//! | integer outside that range   | string of its digits, e.g. `"18446744073709551615"`          |
//! | other number                 | `decimal`, when it has at most 4 fractional digits and fits Cedar's decimal range (±922337203685477.5807); otherwise its JSON text as a string, e.g. `"1.5e-7"` |
//! | array                        | set (duplicates collapse; order is lost)                     |
//! | object                       | record                                                       |
//! | `null`                       | dropped: a `null` field is absent from its record (test it with `has`), a `null` element is absent from its set |
//!
//! Keys such as `__entity` or `__extn`, which Cedar's JSON format would read
//! as entity or extension escapes, are plain record attributes here: values
//! are built directly, never through Cedar's JSON parser, so a caller cannot
//! forge an entity reference. Nesting deeper than 64 levels is kept as the
//! JSON text of the deeper value.
//!
//! Because `decimal` is not `Long`, compare fractional numbers with
//! `.lessThan(decimal("0.9"))` and friends, and guard optional fields with
//! `has` — in a `forbid`, an error denies (see [`crate::Verdict`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression};
use countersign_core::{Action, Principal, PrincipalKind};
use serde_json::{Map, Number, Value};

/// Deeper JSON than this is passed as its JSON text.
const MAX_DEPTH: usize = 64;
/// Cedar decimals have exactly this many fractional digits.
const DECIMAL_DIGITS: i64 = 4;

/// The Cedar entity type of groups.
pub const GROUP_TYPE: &str = "Group";
/// The Cedar entity type of resources.
pub const RESOURCE_TYPE: &str = "Resource";
/// The Cedar entity type of actions.
pub const ACTION_TYPE: &str = "Action";

/// A request and the entities it refers to, ready for
/// [`cedar_policy::Authorizer::is_authorized`].
#[derive(Debug, Clone)]
pub struct CedarRequest {
    pub request: Request,
    pub entities: Entities,
}

/// Why a request could not be built. The depth limit and the number
/// mapping above keep this from happening for any JSON; a decision that
/// meets it anyway denies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("cannot build the cedar request: {0}")]
    Cedar(String),
}

struct TypeNames {
    agent: EntityTypeName,
    user: EntityTypeName,
    group: EntityTypeName,
    resource: EntityTypeName,
    action: EntityTypeName,
}

static TYPE_NAMES: LazyLock<Result<TypeNames, String>> = LazyLock::new(|| {
    let parse = |name: &str| EntityTypeName::from_str(name).map_err(|e| e.to_string());
    Ok(TypeNames {
        agent: parse(PrincipalKind::Agent.cedar_type())?,
        user: parse(PrincipalKind::User.cedar_type())?,
        group: parse(GROUP_TYPE)?,
        resource: parse(RESOURCE_TYPE)?,
        action: parse(ACTION_TYPE)?,
    })
});

fn names() -> Result<&'static TypeNames, RequestError> {
    TYPE_NAMES.as_ref().map_err(|e| RequestError::Cedar(e.clone()))
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// Builds the Cedar request for `principal` asking to perform `action`, as
/// described in the [module documentation](self).
pub fn build(
    principal: &Principal,
    action: &Action,
    bound: countersign_facts::Bound<'_>,
) -> Result<CedarRequest, RequestError> {
    let names = names()?;
    let cedar = |e: &dyn std::fmt::Display| RequestError::Cedar(e.to_string());

    let principal_type = match principal.kind {
        PrincipalKind::Agent => &names.agent,
        PrincipalKind::User => &names.user,
    };
    let principal_uid = uid(principal_type, &principal.name);
    let mut attrs = HashMap::with_capacity(3);
    attrs.insert("name".to_owned(), RestrictedExpression::new_string(principal.name.clone()));
    if let Some(owner) = &principal.owner {
        attrs.insert("owner".to_owned(), RestrictedExpression::new_string(owner.clone()));
    }
    if let Some(email) = &principal.email {
        attrs.insert("email".to_owned(), RestrictedExpression::new_string(email.clone()));
    }
    let parents: HashSet<EntityUid> = principal.groups.iter().map(|g| uid(&names.group, g)).collect();
    let principal_entity = Entity::new(principal_uid.clone(), attrs, parents).map_err(|e| cedar(&e))?;

    let resource_uid = uid(&names.resource, &action.resource);
    let resource_attrs =
        HashMap::from([("name".to_owned(), RestrictedExpression::new_string(action.resource.clone()))]);
    let resource_entity = Entity::new(resource_uid.clone(), resource_attrs, HashSet::new()).map_err(|e| cedar(&e))?;

    let entities = Entities::from_entities([principal_entity, resource_entity], None).map_err(|e| cedar(&e))?;
    let context = context(action, bound)?;
    let request = Request::new(principal_uid, uid(&names.action, &action.kind), resource_uid, context, None)
        .map_err(|e| cedar(&e))?;
    Ok(CedarRequest { request, entities })
}

fn context(action: &Action, bound: countersign_facts::Bound<'_>) -> Result<Context, RequestError> {
    let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(6);
    if let Some(payload) = to_cedar(&action.payload, 0) {
        pairs.push(("payload".to_owned(), payload));
    }
    let labels = action.labels.iter().map(|l| RestrictedExpression::new_string(l.clone()));
    pairs.push(("labels".to_owned(), RestrictedExpression::new_set(labels)));
    if let Some(obo) = &action.on_behalf_of {
        pairs.push(("on_behalf_of".to_owned(), RestrictedExpression::new_string(obo.clone())));
    }
    if let Some(justification) = &action.justification {
        pairs.push(("justification".to_owned(), RestrictedExpression::new_string(justification.clone())));
    }
    pairs.push(("context".to_owned(), record(&action.context, 0)));
    // Converted like the payload, so policies compare facts the same way.
    let facts = countersign_facts::derive_with(&action.kind, &action.payload, bound).to_json();
    if let Some(facts) = to_cedar(&facts, 0) {
        pairs.push(("facts".to_owned(), facts));
    }
    Context::from_pairs(pairs).map_err(|e| RequestError::Cedar(e.to_string()))
}

/// Converts one JSON value following the table in the module
/// documentation; `None` means the value is `null` and is dropped.
pub fn json_to_cedar(value: &Value) -> Option<RestrictedExpression> {
    to_cedar(value, 0)
}

fn to_cedar(value: &Value, depth: usize) -> Option<RestrictedExpression> {
    if depth > MAX_DEPTH {
        return match value {
            Value::Null => None,
            Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_) | Value::Object(_) => {
                Some(RestrictedExpression::new_string(value.to_string()))
            }
        };
    }
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Value::Number(n) => Some(number(n)),
        Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Value::Array(items) => Some(RestrictedExpression::new_set(items.iter().filter_map(|v| to_cedar(v, depth + 1)))),
        Value::Object(map) => Some(record(map, depth)),
    }
}

fn record(map: &Map<String, Value>, depth: usize) -> RestrictedExpression {
    let fields = map.iter().filter_map(|(k, v)| to_cedar(v, depth + 1).map(|v| (k.clone(), v)));
    // JSON object keys are unique, so `new_record` cannot meet a duplicate;
    // should it fail anyway, the text keeps the data visible to policies.
    RestrictedExpression::new_record(fields)
        .unwrap_or_else(|_| RestrictedExpression::new_string(Value::Object(map.clone()).to_string()))
}

fn number(n: &Number) -> RestrictedExpression {
    if let Some(i) = n.as_i64() {
        return RestrictedExpression::new_long(i);
    }
    let text = n.to_string();
    if n.is_f64() {
        if let Some(decimal) = decimal_text(&text) {
            return decimal_expression(decimal);
        }
    }
    RestrictedExpression::new_string(text)
}

/// Decimal expressions already built on this thread, by literal.
const DECIMAL_CACHE_SIZE: usize = 4096;

thread_local! {
    static DECIMALS: RefCell<HashMap<String, RestrictedExpression>> = RefCell::new(HashMap::new());
}

/// `RestrictedExpression::new_decimal` runs Cedar's parser on the name
/// `decimal` every time (several µs, a good part of a whole decision), so
/// the expressions for recently seen literals are kept per thread. The
/// expression depends only on the literal, so this is pure memoisation.
fn decimal_expression(literal: String) -> RestrictedExpression {
    DECIMALS.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return RestrictedExpression::new_decimal(&literal);
        };
        if let Some(expression) = cache.get(&literal) {
            return expression.clone();
        }
        let expression = RestrictedExpression::new_decimal(&literal);
        if cache.len() >= DECIMAL_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(literal, expression.clone());
        expression
    })
}

/// The Cedar `decimal` literal equal to the JSON number `text`, if one
/// exists: at most 4 fractional digits (after dropping trailing zeros) and
/// within range. The result always has the form `-?\d+\.\d{4}`.
pub(crate) fn decimal_text(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].strip_prefix('+').unwrap_or(&rest[i + 1..]).parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    // value = digits × 10^scale
    let mut scale = exponent.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
    let mut digits = digits.trim_start_matches('0');
    while let Some(shorter) = digits.strip_suffix('0') {
        digits = shorter;
        scale = scale.checked_add(1)?;
    }
    let scaled: i128 = if digits.is_empty() {
        0
    } else {
        let shift = u32::try_from(scale.checked_add(DECIMAL_DIGITS)?).ok()?;
        if digits.len() > 38 {
            return None;
        }
        digits.parse::<i128>().ok()?.checked_mul(10_i128.checked_pow(shift)?)?
    };
    let value = if negative { -scaled } else { scaled };
    i64::try_from(value).ok()?;
    let unit = 10_i128.pow(4);
    let sign = if value < 0 { "-" } else { "" };
    Some(format!("{sign}{}.{:04}", scaled / unit, scaled % unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_accepts_short_fractions() {
        assert_eq!(decimal_text("0.92").as_deref(), Some("0.9200"));
        assert_eq!(decimal_text("-0.5").as_deref(), Some("-0.5000"));
        assert_eq!(decimal_text("3.0").as_deref(), Some("3.0000"));
        assert_eq!(decimal_text("1e-3").as_deref(), Some("0.0010"));
        assert_eq!(decimal_text("1.25E2").as_deref(), Some("125.0000"));
        assert_eq!(decimal_text("12345.6789").as_deref(), Some("12345.6789"));
        assert_eq!(decimal_text("-0.0").as_deref(), Some("0.0000"));
        assert_eq!(decimal_text("922337203685477.5807").as_deref(), Some("922337203685477.5807"));
    }

    #[test]
    fn decimal_text_rejects_what_does_not_fit() {
        for text in ["1.5e-7", "0.12345", "1e20", "922337203685477.5808", "1e999999999999999999", "abc", ".5", "1.2.3"]
        {
            assert_eq!(decimal_text(text), None, "{text}");
        }
        assert_eq!(decimal_text("-922337203685477.5808").as_deref(), Some("-922337203685477.5808"));
    }
}
