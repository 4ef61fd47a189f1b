//! SQL statements in every dialect a payload may name, claimed or decided
//! by the gateway, and deep or wide: the input's tail is repeated up to
//! thousands of times (`1+` becomes a 5,000-term sum, `(` a deep nesting),
//! so small inputs reach the depth and size bounds. Run with the SQL
//! dictionary: `cargo fuzz run facts_sql -- -dict=dicts/facts_sql.dict`.
//!
//! Read-only is never claimed together with anything that contradicts it
//! (a parse error, DDL, a write without a filter, a program, a procedure,
//! a function with effects, dialects that disagree), and the gateway's
//! own dialect decision never finds text read-only that the submitter's
//! claim of the same dialect does not.
#![no_main]

use countersign_facts::derive;
use countersign_facts::sql::{analyse_as, Dialects};
use countersign_facts::SqlFacts;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const DIALECTS: [&str; 6] = ["generic", "postgres", "mysql", "sqlite", "mssql", "bigquery"];

fuzz_target!(|data: &[u8]| {
    let [selector, repeat, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let dialect = DIALECTS[usize::from(*selector) % DIALECTS.len()];
    // The head once, then the repeated part: `SELECT ` + `1+`×n + `1`.
    let (head, tail) = text.split_once('\0').unwrap_or(("", text));
    let times = if (*selector & 0x80) == 0 { 1 } else { usize::from(*repeat) * 40 };
    // A little over the size limit at most, so both sides of it are tried.
    let times = times.min(300_000 / tail.len().max(1));
    let mut sql = String::with_capacity(head.len() + tail.len() * times);
    sql.push_str(head);
    for _ in 0..times {
        sql.push_str(tail);
    }
    if (*selector & 0x40) == 0 {
        let facts = derive("sql.execute", &json!({"statement": sql, "dialect": dialect}));
        let _ = facts.lines();
        let Some(claimed) = facts.sql else { panic!("a statement has SQL facts") };
        consistent(&claimed);
        if claimed.is_read_only {
            let decided = analyse_as(&sql, &Dialects::Decided(dialect));
            assert!(decided.is_read_only, "read-only as claimed, not as decided: {decided:?}");
        }
    } else {
        consistent(&analyse_as(&sql, &Dialects::Decided(dialect)));
    }
});

fn consistent(f: &SqlFacts) {
    let contradicted = f.parse_error
        || f.is_ddl
        || f.delete_without_where
        || f.update_without_where
        || f.runs_program
        || f.calls_procedure
        || f.dialect_ambiguous
        || !f.side_effect_functions.is_empty()
        || f.statement_kinds
            .iter()
            .any(|k| matches!(k.as_str(), "delete" | "update" | "insert" | "merge" | "call" | "copy"));
    assert!(!(f.is_read_only && contradicted), "{f:?}");
}
