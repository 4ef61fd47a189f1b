//! SQL that is deep or wide (long operator chains, deep parentheses and
//! subqueries, `NOT NOT …`, deep `CASE`, long `IN` lists, thousands of
//! statements) never overflows a small thread stack in any dialect: it is
//! either described or a parse error. Decisions run on async worker
//! threads; a stack overflow aborts the whole gateway and cannot be caught.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use countersign_facts::derive;
use countersign_facts::sql::{analyse, analyse_as, Dialects, SqlFacts};
use proptest::prelude::*;
use serde_json::json;

/// Smaller than any worker's stack (tokio's are 2 MiB).
const SMALL_STACK: usize = 2 * 1024 * 1024;

const DIALECTS: [&str; 6] = ["generic", "postgres", "mysql", "sqlite", "mssql", "snowflake"];

/// Runs `f` on a thread with a small stack; a stack overflow would abort
/// the test process.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(SMALL_STACK).spawn(f).unwrap().join().unwrap()
}

/// `n` copies of `unit` joined, between `open` and `close`.
fn chain(open: &str, unit: &str, sep: &str, n: usize, close: &str) -> String {
    let mut s = String::with_capacity(open.len() + close.len() + n * (unit.len() + sep.len()));
    s.push_str(open);
    for i in 0..n {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(unit);
    }
    s.push_str(close);
    s
}

/// Deep and wide shapes of about `n` repetitions.
fn shapes(n: usize) -> Vec<String> {
    let ops = [
        "+",
        "-",
        "*",
        "/",
        "%",
        "||",
        " AND ",
        " OR ",
        " = ",
        " < ",
        "::int",
        " -> ",
        " ->> ",
        " # ",
        " & ",
        " | ",
        " ^ ",
        " << ",
        " LIKE ",
        " IS NULL = ",
        " COLLATE c = ",
        " DIV ",
        " XOR ",
        " IN (1) = ",
        " @> ",
        " ~ ",
    ];
    let mut out: Vec<String> = ops.iter().map(|op| chain("SELECT ", "1", op, n, "")).collect();
    out.extend([
        chain("SELECT ", "(", "", n, &format!("1{}", ")".repeat(n))),
        chain("SELECT * FROM ", "(SELECT * FROM ", "", n, &format!("t{}", ")".repeat(n))),
        chain("SELECT ", "NOT ", "", n, "true"),
        chain("SELECT ", "- ", "", n, "1"),
        chain("SELECT ", "~", "", n, "1"),
        chain("SELECT ", "CASE WHEN true THEN ", "", n, &format!("1{}", " END".repeat(n))),
        chain("SELECT ", "abs(", "", n, &format!("1{}", ")".repeat(n))),
        chain("SELECT ", "ARRAY[", "", n, &format!("1{}", "]".repeat(n))),
        chain("SELECT x", "[1]", "", n, ""),
        chain("SELECT * FROM t WHERE id IN (", "1", ",", n, ")"),
        chain("SELECT * FROM t WHERE id IN (", "(1)", ",", n, ")"),
        chain("INSERT INTO t VALUES ", "(1, 'a')", ",", n, ""),
        chain("", "SELECT 1", ";", n, ""),
        chain("", "SELECT 1", " UNION ALL ", n, ""),
        chain("", "SELECT 1", " EXCEPT ", n, ""),
        chain("SELECT * FROM a", " JOIN b ON true", "", n, ""),
        chain("SELECT * FROM ", "(", "", n, &format!("a{}", " JOIN b ON true)".repeat(n))),
        chain("WITH ", "c AS (SELECT 1)", ", ", n, " SELECT 1"),
        chain("DELETE FROM t WHERE ", "a = 1", " AND ", n, ""),
        chain("UPDATE t SET ", "a = 1", ", ", n, ""),
        chain("SELECT a", ".b", "", n, ""),
        chain("SELECT ", "'x' ", "", n, ""),
        chain("SELECT 1 ", "/* c */ ", "", n, ""),
        chain("SELECT * FROM t WHERE a = ", "(SELECT ", "", n, &format!("1{}", ")".repeat(n))),
        chain("SELECT ", "EXISTS (SELECT ", "", n, &format!("1{}", ")".repeat(n))),
        chain("SELECT ", "f(1, ", "", n, &format!("1{}", ")".repeat(n))),
        chain("SELECT ", "x BETWEEN 1 AND ", "", n, "1"),
        chain("SELECT ", "ROW(", "", n, &format!("1{}", ")".repeat(n))),
    ]);
    out
}

/// Claimed, each dialect is parsed (the others are scanned); decided,
/// only the one.
fn judged_everywhere(text: &str) -> Vec<SqlFacts> {
    let mut all: Vec<SqlFacts> = DIALECTS.iter().map(|d| analyse(text, d)).collect();
    all.push(analyse_as(text, &Dialects::Decided("postgres")));
    all
}

#[test]
fn the_issue_s_sum_is_a_parse_error() {
    // `SELECT 1+1+…+1` with 32,000 terms, about 65 KB: aborted the gateway.
    let text = chain("SELECT ", "1", "+", 32_000, "");
    let facts = on_small_stack(move || judged_everywhere(&text));
    assert!(facts.iter().all(|f| f.parse_error && !f.is_read_only), "{:?}", facts[0]);
    let payload = json!({"statement": chain("SELECT ", "'a'", " || ", 32_000, ""), "dialect": "postgres"});
    let sql = on_small_stack(move || derive("sql.execute", &payload).sql.unwrap());
    assert!(sql.parse_error);
}

#[test]
fn deep_and_wide_shapes_never_overflow() {
    for n in [10, 400, 5_000] {
        let texts = shapes(n);
        on_small_stack(move || {
            for text in &texts {
                for facts in judged_everywhere(text) {
                    // Described or refused, never both read-only and unreadable.
                    assert!(!(facts.parse_error && facts.is_read_only), "{text:.80}");
                }
            }
        });
    }
}

#[test]
fn ordinary_big_statements_are_still_described() {
    // Bounds cut depth, not honest width: long lists and many rows parse.
    let texts = [
        chain("SELECT * FROM t WHERE id IN (", "1", ",", 20_000, ")"),
        chain("INSERT INTO t VALUES ", "(1, 'a', now())", ",", 5_000, ""),
        chain("DELETE FROM t WHERE ", "a = 1", " OR ", 200, ""),
        chain("", "SELECT 1", ";", 500, ""),
    ];
    on_small_stack(move || {
        for text in &texts {
            let f = analyse(text, "postgres");
            assert!(!f.parse_error, "{text:.80}");
        }
    });
}

/// Pieces that nest or chain, glued at random.
const DEEP_PIECES: [&str; 24] = [
    "(",
    ")",
    "(SELECT ",
    "NOT ",
    "- ",
    "1",
    "+",
    " OR ",
    " AND ",
    "||",
    "CASE WHEN ",
    " THEN ",
    " END",
    "[",
    "]",
    ",",
    ";",
    "abs(",
    " UNION SELECT ",
    "::int",
    "'\\'",
    " -- ",
    "\n",
    "#",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_deep_text_never_overflows(
        pieces in prop::collection::vec(prop::sample::select(&DEEP_PIECES[..]), 0..400),
        repeat in 1usize..200,
        dialect in prop::sample::select(&DIALECTS[..]),
    ) {
        // A random piece list, repeated: deep and wide at once.
        let text = format!("SELECT {}", pieces.concat().repeat(repeat));
        let facts = on_small_stack(move || analyse(&text, dialect));
        prop_assert!(!(facts.parse_error && facts.is_read_only));
    }
}
