//! Which names name a secret: `password`, `DB_PASSWORD`, `apiKey`,
//! `X-Auth-Token`, `--client-secret`, but not `bypass`, `tokenizer`,
//! `password_policy`, `secret_name` or `token_refresh_command`.
//!
//! A name is split into words (at anything not a letter or digit, and at
//! camelCase humps); it names a secret when its *last* word (or last two
//! words joined: `api_key`, `private-key`) is a secret word, or ends in a
//! long one (`PGPASSWORD`, `authtoken`). What follows a secret word
//! (`_file`, `_policy`, `_command`) says the value is about the secret,
//! not the secret itself, and it stays visible.

/// Secret words that also count at the end of a longer word.
const SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "credential",
    "authorization",
    "cookie",
];

/// Short secret words that count only as a whole word (`pass` but not `bypass`).
const WORDS: &[&str] = &["pass", "pwd", "pw", "jwt"];

/// `name` names a secret (see the module documentation).
pub fn is_secret_name(name: &str) -> bool {
    let words = words(name);
    let Some(last) = words.last() else { return false };
    let last_two = match words.len().checked_sub(2).and_then(|i| words.get(i)) {
        Some(before) => format!("{before}{last}"),
        None => last.clone(),
    };
    [last.as_str(), last_two.as_str()].iter().any(|w| {
        // `password2` names a secret too.
        let w = w.trim_end_matches(|c: char| c.is_ascii_digit());
        let singular = w.strip_suffix('s').unwrap_or(w);
        WORDS.contains(&singular)
            || WORDS.contains(&w)
            || SUFFIXES.iter().any(|s| singular.ends_with(s) || w.ends_with(s))
    })
}

/// Lower-case words of `name`: split at non-alphanumerics and camelCase humps.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_judged_by_their_last_word() {
        for name in [
            "password",
            "DB_PASSWORD",
            "PGPASSWORD",
            "dbPassword",
            "apiKey",
            "api_key",
            "X-Api-Key",
            "x-auth-token",
            "GITHUB_TOKEN",
            "client_secret",
            "AWS_SECRET_ACCESS_KEY",
            "--password",
            "--client-secret",
            "Authorization",
            "Proxy-Authorization",
            "set-cookie",
            "credentials",
            "private_key",
            "DB_PASS",
            "tokens",
            "secrets",
            "MYSQL_PWD",
            "password2",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "bypass",
            "passthrough",
            "compass",
            "tokenizer",
            "secretary",
            "password_policy",
            "password_file",
            "secret_name",
            "token_refresh_command",
            "tokenCount",
            "key",
            "monkey",
            "AWS_ACCESS_KEY_ID",
            "command",
            "cookiecutter",
            "",
            "--",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
