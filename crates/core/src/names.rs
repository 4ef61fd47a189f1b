//! The names a submitter claims: the action's kind, its resource, and the
//! identities it names (`on_behalf_of`).
//!
//! Policies compare these names as exact strings (`action ==
//! Action::"shell.exec"`, `resource.name like "prod*"`,
//! `context.on_behalf_of == "carol"`), so a name that *looks* like another
//! but is spelled differently (`PROD-web`, ` prod-web`, `prod\u{200b}-web`,
//! a fullwidth `ｐrod`, a Cyrillic `р`, `prod-web\n`) would slip past a rule
//! written for the real one. The rule here is to **refuse, not repair**:
//! each name must already be in its one canonical spelling, a small
//! lowercase-ASCII grammar in which no two different strings look alike
//! to a person or to a rule. A refused name never reaches a policy, so
//! there is nothing to normalise and nothing the approver sees differs
//! from what was decided. Names the gateway derives itself (an MCP
//! upstream and tool) are folded to lowercase with [`fold_resource`]
//! before the same check.
//!
//! | name           | grammar                                                                 |
//! |----------------|-------------------------------------------------------------------------|
//! | kind           | 1–4 segments `[a-z][a-z0-9_-]*` joined by `.`, at most [`MAX_KIND_LEN`] characters: `shell.exec`, `mcp.tool_call`, `run` |
//! | resource       | `[a-z0-9]` then `[a-z0-9._:/@-]*`, at most [`MAX_RESOURCE_LEN`] characters: `prod-db`, `fs/write_file` |
//! | identity named | the rules of user and agent names, [`valid_name`]                       |

use crate::principal::valid_name;

/// The longest kind accepted.
pub const MAX_KIND_LEN: usize = 64;
/// The most dot-separated segments in a kind.
pub const MAX_KIND_SEGMENTS: usize = 4;
/// The longest resource name accepted.
pub const MAX_RESOURCE_LEN: usize = 256;

/// The kind families the gateway knows what to do with: the facts it
/// derives and the starter policy are written for these. A kind outside
/// them is accepted (its payload still gets facts by its shape), but no
/// policy that lists kinds treats it as routine.
pub const KNOWN_FAMILIES: [&str; 8] = ["shell", "sql", "k8s", "kubectl", "terraform", "http", "mcp", "file"];

/// Why a claimed name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "`kind` `{0}` is not a kind: use 1 to {MAX_KIND_SEGMENTS} lowercase ASCII words (`a-z`, digits, `_`, `-`, each starting with a letter) joined by `.`, at most {MAX_KIND_LEN} characters, e.g. `shell.exec`"
    )]
    Kind(String),
    #[error(
        "`resource` `{0}` is not a resource name: use lowercase ASCII letters, digits, `.`, `_`, `-`, `/`, `:` and `@`, starting with a letter or digit, at most {MAX_RESOURCE_LEN} characters"
    )]
    Resource(String),
    #[error(
        "`{field}` `{name}` is not an identity name: use 1-64 letters, digits, `.`, `_`, `-` or `@`, starting with a letter or digit"
    )]
    Identity { field: &'static str, name: String },
}

/// Shows a refused name with every invisible or non-ASCII character
/// escaped, so the message itself cannot hide what was wrong.
fn shown(name: &str) -> String {
    name.chars().take(MAX_RESOURCE_LEN).flat_map(char::escape_debug).collect()
}

fn kind_segment(segment: &str) -> bool {
    let mut chars = segment.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// Checks a kind against the grammar above.
pub fn check_kind(kind: &str) -> Result<(), NameError> {
    let segments = kind.split('.').count();
    if kind.len() <= MAX_KIND_LEN && segments <= MAX_KIND_SEGMENTS && kind.split('.').all(kind_segment) {
        Ok(())
    } else {
        Err(NameError::Kind(shown(kind)))
    }
}

/// The part of a kind before its first dot: `shell` for `shell.exec`.
pub fn kind_family(kind: &str) -> &str {
    kind.split('.').next().unwrap_or(kind)
}

/// The kind belongs to one of the [`KNOWN_FAMILIES`].
pub fn is_known_kind(kind: &str) -> bool {
    check_kind(kind).is_ok() && KNOWN_FAMILIES.contains(&kind_family(kind))
}

fn resource_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@')
}

/// Checks a resource name against the grammar above.
pub fn check_resource(resource: &str) -> Result<(), NameError> {
    let starts_well = resource.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if starts_well && resource.len() <= MAX_RESOURCE_LEN && resource.chars().all(resource_char) {
        Ok(())
    } else {
        Err(NameError::Resource(shown(resource)))
    }
}

/// A resource name the gateway derives from names it does not choose (an
/// MCP upstream and tool, whose names may hold capitals): ASCII letters
/// folded to lowercase, nothing else changed, so the result still fails
/// [`check_resource`] when it holds anything outside the grammar.
pub fn fold_resource(resource: &str) -> String {
    resource.to_ascii_lowercase()
}

/// Checks an identity named in a request (`on_behalf_of`) by the rules of
/// user and agent names.
pub fn check_identity(field: &'static str, name: &str) -> Result<(), NameError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(NameError::Identity { field, name: shown(name) })
    }
}

/// The form in which two identity names are compared when deciding who
/// is the same person: ASCII case folded, so `Carol` named in a request
/// counts as `carol` for self-approval.
pub fn identity_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_grammar() {
        for good in ["shell.exec", "sql.execute", "mcp.tool_call", "k8s.apply", "run", "a.b-c.d_e.f9"] {
            assert_eq!(check_kind(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Shell.exec",
            "SHELL.EXEC",
            "shell.Exec",
            "shell..exec",
            ".shell",
            "shell.",
            "shell.exec ",
            " shell.exec",
            "shell.exec\n",
            "shell\u{200b}.exec",
            "shell.exec\u{0}",
            "ｓhell.exec",
            "shеll.exec",
            "1shell.exec",
            "shell.1exec",
            "shell exec",
            "shell/exec",
            "a.b.c.d.e",
        ] {
            assert!(check_kind(bad).is_err(), "{bad:?}");
        }
        assert!(check_kind(&"a".repeat(MAX_KIND_LEN + 1)).is_err());
        assert!(check_kind(&"a".repeat(MAX_KIND_LEN)).is_ok());
    }

    #[test]
    fn families_are_known_or_not() {
        assert!(is_known_kind("shell.exec"));
        assert!(is_known_kind("kubectl.delete"));
        assert!(!is_known_kind("run"));
        assert!(!is_known_kind("shellx.exec"));
        assert!(!is_known_kind("Shell.exec"));
        assert_eq!(kind_family("sql.execute"), "sql");
        assert_eq!(kind_family("run"), "run");
    }

    #[test]
    fn resources_follow_the_grammar() {
        for good in ["prod-db", "staging-web", "fs/write_file", "db:prod/users", "a", "0", "team@prod.web"] {
            assert_eq!(check_resource(good), Ok(()), "{good}");
        }
        assert!(check_resource(&"a".repeat(MAX_RESOURCE_LEN + 1)).is_err());
    }

    #[test]
    fn refusals_show_invisible_characters() {
        let err = check_resource("prod\u{200b}-web\n").unwrap_err().to_string();
        assert!(err.contains("prod\\u{200b}-web\\n"), "{err}");
    }

    #[test]
    fn folding_keeps_lookalikes_refused() {
        assert_eq!(fold_resource("Everything/getTinyImage"), "everything/gettinyimage");
        assert!(check_resource(&fold_resource("Everything/getTinyImage")).is_ok());
        assert!(check_resource(&fold_resource("fs/ｗrite")).is_err());
        assert!(check_resource(&fold_resource("fs/write\u{200b}")).is_err());
    }

    #[test]
    fn identities_follow_name_rules() {
        assert_eq!(check_identity("on_behalf_of", "carol"), Ok(()));
        assert_eq!(check_identity("on_behalf_of", "carol@example.com"), Ok(()));
        for bad in ["carol ", " carol", "carol\u{200b}", "carol\n", "ｃarol", "cаrol", "", "-carol"] {
            assert!(check_identity("on_behalf_of", bad).is_err(), "{bad:?}");
        }
        assert_eq!(identity_key("Carol"), identity_key("carol"));
    }

    /// Lookalikes as a class: any character a valid name does not hold
    /// (every format, control, space and combining mark, every non-ASCII
    /// letter, fullwidth or confusable, every capital), put anywhere in
    /// a valid name, is refused in the kind and the resource, and in an
    /// identity (where capitals are allowed but compare folded).
    mod lookalikes {
        use super::*;
        use proptest::prelude::*;

        /// Characters people and rules confuse with nothing, or with ASCII.
        const SPECIMENS: [char; 24] = [
            '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{00ad}', '\u{202e}', // Cf
            '\u{0}', '\n', '\r', '\t', '\u{7f}', '\u{85}', // Cc
            ' ', '\u{a0}', '\u{3000}', '\u{2009}', // Zs
            '\u{301}', '\u{308}', // Mn
            'ｐ', 'р', 'ο', 'ı', 'ſ', // fullwidth, Cyrillic, Greek, dotless i, long s (NFKC: s)
        ];

        fn outsider() -> impl Strategy<Value = char> {
            prop_oneof![
                proptest::sample::select(SPECIMENS.to_vec()),
                any::<char>().prop_filter("not ASCII", |c| !c.is_ascii()),
                proptest::char::range('A', 'Z'),
            ]
        }

        proptest! {
            #[test]
            fn any_outsider_anywhere_is_refused(c in outsider(), at in 0usize..=8) {
                let place = |name: &str| {
                    let at = at.min(name.len());
                    format!("{}{c}{}", &name[..at], &name[at..])
                };
                prop_assert!(check_resource(&place("prod-web")).is_err());
                prop_assert!(check_kind(&place("shell.exec")).is_err());
                // Identity names keep their case (`Carol`), compared folded
                // (see `identity_key`); anything else is refused.
                if c.is_ascii_uppercase() {
                    prop_assert!(check_identity("on_behalf_of", &place("carol")).is_ok());
                    let lower = place("carol").replace(c, &c.to_ascii_lowercase().to_string());
                    prop_assert_eq!(identity_key(&place("carol")), identity_key(&lower));
                    prop_assert!(check_resource(&place("prod-web")).is_err());
                } else {
                    prop_assert!(check_identity("on_behalf_of", &place("carol")).is_err());
                    prop_assert!(check_resource(&fold_resource(&place("fs/write"))).is_err());
                }
            }

            #[test]
            fn accepted_names_are_their_own_canonical_form(name in "[a-z0-9][a-z0-9._:/@-]{0,40}") {
                prop_assert!(check_resource(&name).is_ok());
                prop_assert_eq!(fold_resource(&name), name.clone());
                prop_assert_eq!(name.trim(), name.as_str());
            }
        }
    }
}
