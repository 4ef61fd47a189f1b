//! SQL statements: what kind each statement is, which tables it touches,
//! and the classic accidents (`DELETE`/`UPDATE` without `WHERE`).
//!
//! The text is parsed by `sqlparser` into a syntax tree, so comments,
//! case, whitespace and extra statements change nothing:
//! `/* hi */ DeLeTe from t` is a `delete` without `WHERE`, and
//! `select 1; drop table x` has two statements, one a `drop_table`.
//! What the parser rejects is a [`SqlFacts::parse_error`].

use std::fmt::{self, Write as _};
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlparser::ast::{visit_expressions, visit_relations, visit_statements, Expr, ObjectName, ObjectNamePart};
use sqlparser::ast::{Query, SetExpr, Statement};
use sqlparser::dialect::{dialect_from_str, Dialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::MAX_INPUT_BYTES;

/// The most statement kinds and tables listed.
const MAX_LISTED: usize = 64;

/// What a SQL payload does.
///
/// Serialised as the `sql` record of the facts; field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFacts {
    /// The dialect the text was parsed as: the payload's `dialect`
    /// (`generic`, `postgres`, `mysql`, `sqlite`, `mssql`, `snowflake`,
    /// `bigquery`, …) or `generic`.
    pub dialect: String,
    /// Each statement's kind in `snake_case`, in order of first
    /// appearance: `select`, `insert`, `update`, `delete`, `merge`,
    /// `truncate`, `create_table`, `alter_table`, `drop_table`,
    /// `drop_schema`, `grant`, `copy`, `explain`, … (`DROP` carries its
    /// object type).
    pub statement_kinds: Vec<String>,
    /// The tables and views named anywhere (joins, subqueries, CTEs,
    /// `DROP TABLE`), `schema.table` style; unquoted names lowercased.
    pub tables: Vec<String>,
    /// Some `DELETE` has no `WHERE`, or one that mentions no column
    /// (`WHERE 1=1`, `WHERE true`).
    pub delete_without_where: bool,
    /// Some `UPDATE` has no `WHERE`, or one that mentions no column.
    pub update_without_where: bool,
    /// Some statement changes the schema: `CREATE …`, `ALTER …`, `DROP …`,
    /// `TRUNCATE`, `RENAME …`, `COMMENT ON …`.
    pub is_ddl: bool,
    /// Every statement only reads: `SELECT` without `INTO`, locks aside,
    /// and with no data-modifying CTE; `EXPLAIN` without `ANALYZE` (or of
    /// a read-only statement); `SHOW …`; `DESCRIBE`.
    pub is_read_only: bool,
    /// How many statements the text holds.
    pub statement_count: usize,
    /// The text could not be parsed (or was missing, not a string, empty,
    /// in an unknown dialect, over the size limit, or holds a MySQL
    /// executable comment `/*! … */` the chosen dialect would ignore).
    pub parse_error: bool,
}

/// Analyses an `sql.*` payload: `statement` (the SQL text) and an optional
/// `dialect`.
pub(crate) fn from_payload(payload: &Value) -> SqlFacts {
    let dialect = match payload.get("dialect") {
        None | Some(Value::Null) => Some("generic"),
        Some(Value::String(name)) => Some(name.as_str()),
        Some(Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => None,
    };
    match (payload.get("statement").and_then(Value::as_str), dialect) {
        (Some(text), Some(dialect)) => analyse(text, dialect),
        (Some(_), None) | (None, Some(_) | None) => {
            SqlFacts { dialect: dialect.unwrap_or("generic").to_owned(), parse_error: true, ..SqlFacts::default() }
        }
    }
}

/// Analyses SQL `text` in `dialect` (see [`SqlFacts::dialect`]).
pub fn analyse(text: &str, dialect: &str) -> SqlFacts {
    let mut facts = SqlFacts { dialect: dialect.to_ascii_lowercase(), ..SqlFacts::default() };
    let Some(parser_dialect) = dialect_from_str(dialect) else {
        facts.parse_error = true;
        return facts;
    };
    if text.len() > MAX_INPUT_BYTES || has_hidden_executable_comment(parser_dialect.as_ref(), text) {
        facts.parse_error = true;
        return facts;
    }
    let statements = match Parser::parse_sql(parser_dialect.as_ref(), text) {
        Ok(statements) => statements,
        Err(_) => {
            facts.parse_error = true;
            return facts;
        }
    };
    facts.statement_count = statements.len();
    if statements.is_empty() {
        // Only comments or semicolons: nothing that can be described.
        facts.parse_error = true;
        return facts;
    }
    facts.is_read_only = statements.iter().all(read_only);
    for statement in &statements {
        let kind = kind(statement);
        facts.is_ddl |= ["create_", "alter_", "drop", "truncate", "rename", "comment", "undrop"]
            .iter()
            .any(|prefix| kind.starts_with(prefix));
        push_unique(&mut facts.statement_kinds, kind);
        if let Statement::Drop { names, .. } = statement {
            for name in names {
                push_unique(&mut facts.tables, normalise(name));
            }
        }
    }
    let _ = visit_relations(&statements, |relation| {
        push_unique(&mut facts.tables, normalise(relation));
        ControlFlow::<()>::Continue(())
    });
    // DELETE and UPDATE may also sit inside CTEs and EXPLAIN ANALYZE.
    let _ = visit_statements(&statements, |statement| {
        match statement {
            Statement::Delete(delete) => facts.delete_without_where |= !filters_rows(delete.selection.as_ref()),
            Statement::Update(update) => facts.update_without_where |= !filters_rows(update.selection.as_ref()),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    facts
}

/// The facts of several SQL texts as one: the SQL that database clients
/// on a shell command line run (`psql -c`, `mysql -e`, `sqlite3 FILE SQL`).
/// A computed text (`psql -c "$Q"`) is a parse error.
pub(crate) fn merge(texts: &[crate::shell::SqlText]) -> Option<SqlFacts> {
    let (first, rest) = texts.split_first()?;
    let one = |t: &crate::shell::SqlText| {
        if t.dynamic {
            SqlFacts { dialect: t.dialect.to_owned(), parse_error: true, ..SqlFacts::default() }
        } else {
            analyse(&t.text, t.dialect)
        }
    };
    let mut all = one(first);
    for part in rest.iter().map(one) {
        for kind in part.statement_kinds {
            push_unique(&mut all.statement_kinds, kind);
        }
        for table in part.tables {
            push_unique(&mut all.tables, table);
        }
        all.delete_without_where |= part.delete_without_where;
        all.update_without_where |= part.update_without_where;
        all.is_ddl |= part.is_ddl;
        all.is_read_only &= part.is_read_only;
        all.statement_count += part.statement_count;
        all.parse_error |= part.parse_error;
    }
    Some(all)
}

/// A `WHERE` that can keep some rows out: one that mentions a column.
fn filters_rows(selection: Option<&Expr>) -> bool {
    let Some(selection) = selection else {
        return false;
    };
    visit_expressions(selection, |e| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// MySQL runs the inside of `/*! … */` as SQL. A dialect that reads it as
/// a comment would miss whatever is hidden there, and the dialect is the
/// submitter's claim, so such text is not trusted.
fn has_hidden_executable_comment(dialect: &dyn Dialect, text: &str) -> bool {
    if dialect.supports_multiline_comment_hints() || !text.contains("/*!") {
        return false;
    }
    match Tokenizer::new(dialect, text).tokenize() {
        Ok(tokens) => {
            tokens.iter().any(|t| matches!(t, Token::Whitespace(Whitespace::MultiLineComment(c)) if c.starts_with('!')))
        }
        // The parser will reject it too.
        Err(_) => false,
    }
}

/// The statement's kind: its syntax-tree variant in `snake_case`, with
/// `Query` read as `select` and `Drop` carrying its object type.
fn kind(statement: &Statement) -> String {
    match statement {
        Statement::Query(_) => "select".to_owned(),
        Statement::Drop { object_type, .. } => {
            format!("drop_{}", object_type.to_string().to_ascii_lowercase().replace(' ', "_"))
        }
        other => snake_case(&variant_name(other)),
    }
}

/// Collects the leading identifier of a `Debug` rendering, then stops the
/// rendering: the variant name without formatting the whole tree.
struct VariantName(String);

impl fmt::Write for VariantName {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if !c.is_ascii_alphanumeric() {
                return Err(fmt::Error);
            }
            self.0.push(c);
        }
        Ok(())
    }
}

fn variant_name(statement: &Statement) -> String {
    let mut name = VariantName(String::new());
    // The writer ends the rendering with an error on purpose, right after
    // the variant name; what it collected is the result.
    let _ = write!(name, "{statement:?}");
    name.0
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn read_only(statement: &Statement) -> bool {
    match statement {
        Statement::Query(query) => query_reads_only(query),
        Statement::Explain { analyze, statement, .. } => !analyze || read_only(statement),
        Statement::ExplainTable { .. } => true,
        other => variant_name(other).starts_with("Show"),
    }
}

fn query_reads_only(query: &Query) -> bool {
    let ctes = query.with.iter().flat_map(|w| &w.cte_tables);
    ctes.into_iter().all(|cte| query_reads_only(&cte.query)) && set_reads_only(&query.body)
}

fn set_reads_only(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_none(),
        SetExpr::Query(query) => query_reads_only(query),
        SetExpr::SetOperation { left, right, .. } => set_reads_only(left) && set_reads_only(right),
        SetExpr::Values(_) | SetExpr::Table(_) => true,
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => false,
    }
}

/// `schema.table`, unquoted parts lowercased (SQL folds them), quoted
/// parts as written.
fn normalise(name: &ObjectName) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => match ident.quote_style {
                None => ident.value.to_lowercase(),
                Some(_) => ident.value.clone(),
            },
            ObjectNamePart::Function(function) => function.to_string(),
        })
        .collect();
    parts.join(".")
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if list.len() < MAX_LISTED && !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str) -> SqlFacts {
        analyse(text, "generic")
    }

    #[test]
    fn kinds_and_tables() {
        let f = sql("SELECT o.id FROM Shop.Orders o JOIN \"Users\" u ON u.id = o.user_id WHERE o.total > 5");
        assert_eq!(f.statement_kinds, ["select"]);
        assert_eq!(f.tables, ["shop.orders", "Users"]);
        assert!(f.is_read_only && !f.is_ddl && !f.parse_error);
        assert_eq!(f.statement_count, 1);

        let f = sql("insert into audit select * from events; update t set a = 1 where id = 2");
        assert_eq!(f.statement_kinds, ["insert", "update"]);
        assert_eq!(f.tables, ["audit", "events", "t"]);
        assert!(!f.is_read_only && !f.update_without_where);
    }

    #[test]
    fn delete_and_update_without_where() {
        assert!(sql("DeLeTe from orders").delete_without_where);
        assert!(sql("delete from orders where 1 = 1").delete_without_where);
        assert!(sql("DELETE FROM orders WHERE true").delete_without_where);
        assert!(!sql("delete from orders where id = 7").delete_without_where);
        assert!(sql("update users set admin = true").update_without_where);
        assert!(!sql("update users set admin = true where users.id = 3").update_without_where);
        let cte = analyse("WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone", "postgres");
        assert!(cte.delete_without_where && !cte.is_read_only, "{cte:?}");
    }

    #[test]
    fn ddl_however_it_is_hidden() {
        let f = sql("select 1; drop table x");
        assert_eq!(f.statement_kinds, ["select", "drop_table"]);
        assert_eq!(f.statement_count, 2);
        assert!(f.is_ddl && !f.is_read_only);
        assert_eq!(f.tables, ["x"]);

        let f = sql("/* harmless */ SELECT 1 -- nothing here\n; /* see */ DROP /* x */ TABLE users");
        assert_eq!(f.statement_kinds, ["select", "drop_table"]);
        assert!(f.is_ddl);

        for ddl in
            ["truncate table t", "alter table t add column c int", "create table t (a int)", "drop schema s cascade"]
        {
            assert!(sql(ddl).is_ddl, "{ddl}");
        }
        assert_eq!(sql("DROP SCHEMA s").statement_kinds, ["drop_schema"]);
        assert_eq!(sql("drop materialized view v").statement_kinds, ["drop_materialized_view"]);
    }

    #[test]
    fn executable_comments_are_not_comments() {
        let hidden = "SELECT 1 /*! ; DROP TABLE users */";
        assert!(analyse(hidden, "postgres").parse_error);
        let mysql = analyse(hidden, "mysql");
        assert!(mysql.parse_error || mysql.is_ddl, "{mysql:?}");
    }

    #[test]
    fn read_only_is_strict() {
        assert!(sql("explain select * from t").is_read_only);
        assert!(!analyse("explain analyze delete from t", "postgres").is_read_only);
        assert!(analyse("show tables", "mysql").is_read_only);
        assert!(!analyse("select * into backup from t", "postgres").is_read_only);
        assert!(!sql("select 1; delete from t where id = 1").is_read_only);
    }

    #[test]
    fn what_cannot_be_parsed() {
        assert!(sql("DROP TABEL x").parse_error);
        assert!(sql("").parse_error);
        assert!(sql("-- only a comment").parse_error);
        assert!(analyse("select 1", "klingon").parse_error);
        assert!(from_payload(&serde_json::json!({"statement": 5})).parse_error);
        assert!(from_payload(&serde_json::json!({})).parse_error);
        assert!(from_payload(&serde_json::json!({"statement": "select 1", "dialect": 1})).parse_error);
        let deep = format!("select {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(sql(&deep).parse_error);
    }

    #[test]
    fn deep_nesting_fits_a_small_thread_stack() {
        // Decisions run on async worker threads (2 MiB stacks); the
        // parser's recursion limit must stop every kind of nesting first.
        let n = 5000;
        let inputs = [
            format!("select {}1{}", "(".repeat(n), ")".repeat(n)),
            format!("select {}1", "- ".repeat(n)),
            format!("select {}true", "not ".repeat(n)),
            format!("select {}1{}", "abs(".repeat(n), ")".repeat(n)),
            format!("select * from {}t{}", "(select * from ".repeat(n), ")".repeat(n)),
            format!("select {}1{}", "case when true then ".repeat(n), " end".repeat(n)),
            format!("select 1{}", " + 1".repeat(n)),
            format!("delete from t where {}", vec!["a = 1"; n].join(" and ")),
        ];
        let worker = std::thread::Builder::new().stack_size(2 << 20).spawn(move || {
            for text in &inputs {
                for dialect in ["generic", "postgres", "mysql", "sqlite"] {
                    let _ = analyse(text, dialect);
                }
            }
        });
        worker.unwrap().join().unwrap();
    }

    #[test]
    fn dialects() {
        let f = from_payload(&serde_json::json!({"statement": "DELETE FROM `orders`", "dialect": "mysql"}));
        assert_eq!((f.dialect.as_str(), f.tables.clone()), ("mysql", vec!["orders".to_owned()]));
        assert!(f.delete_without_where);
        assert!(!from_payload(&serde_json::json!({"statement": "select 1", "dialect": "sqlite"})).parse_error);
    }
}
