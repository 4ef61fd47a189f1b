//! The impact preview of a write: before a `DELETE`, `UPDATE`, `MERGE` or
//! `INSERT … SELECT` is decided, the gateway asks the database to
//! `EXPLAIN` it (never `ANALYZE`: nothing runs) with its own credential,
//! in a read-only transaction, under a short statement timeout, on a
//! connection of its own. The estimate goes on the action's context
//! (`context.context.impact_preview`) for the policy and the review card.
//!
//! A preview that fails or takes too long is simply absent: the decision
//! never waits past the timeout. Statements with parameters (`$1`) and
//! statements calling functions not known to be free of side effects
//! (which planning could evaluate) are not previewed.

use bytes::{BufMut as _, BytesMut};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::config::PostgresConfig;
use super::upstream::{self, MAX_BACKEND_MESSAGE};
use super::{wire, Stream};

/// What the planner expects a write to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// `Delete on orders`, `Update on public.accounts`, …
    pub plan: String,
    pub estimated_rows: u64,
}

impl Preview {
    /// As the policy and the card read it.
    pub fn to_json(&self) -> Value {
        json!({"source": "EXPLAIN", "plan": self.plan, "estimated_rows": self.estimated_rows})
    }

    /// `Delete on orders: about 1.2 M rows (estimate)`.
    pub fn describe(&self) -> String {
        format!("{}: about {} (the planner's estimate)", self.plan, about(self.estimated_rows))
    }
}

fn about(rows: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "an estimate shown rounded")]
    let f = rows as f64;
    match rows {
        0..=999 => format!("{rows} rows"),
        1_000..=999_999 => format!("{:.1} k rows", f / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} M rows", f / 1e6),
        _ => format!("{:.1} G rows", f / 1e9),
    }
}

/// Whether a statement is a write worth previewing: one of the writes
/// previews cover, without placeholders, and `side_effect_free` (asked
/// last, only of such a write: it derives the statement's facts, which
/// would double the work of deciding every routine read).
pub fn wanted(text: &str, side_effect_free: impl FnOnce(&str) -> bool) -> bool {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize() else { return false };
    let words: Vec<String> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.value.to_ascii_lowercase()),
            Token::Placeholder(_) => Some("$".to_owned()),
            _ => None,
        })
        .collect();
    if words.iter().any(|w| w == "$") {
        return false;
    }
    let write = match words.first().map(String::as_str) {
        Some("delete" | "update" | "merge") => true,
        Some("insert") => words.iter().any(|w| w == "select"),
        _ => false,
    };
    write && side_effect_free(text)
}

/// A connection for previews, opened when first needed and kept.
#[derive(Default)]
pub struct Previewer {
    connection: Option<(Stream, BytesMut)>,
}

impl std::fmt::Debug for Previewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previewer").field("connected", &self.connection.is_some()).finish()
    }
}

impl Previewer {
    /// The preview of `text`, or `None` (and the connection dropped) on
    /// any failure or after `config.preview_timeout`.
    pub async fn explain(&mut self, config: &PostgresConfig, text: &str) -> Option<Preview> {
        let found = tokio::time::timeout(config.preview_timeout, self.explain_inner(config, text)).await;
        match found {
            Ok(Ok(preview)) => Some(preview),
            Ok(Err(why)) => {
                tracing::debug!(resource = %config.resource, %why, "no impact preview");
                self.connection = None;
                None
            }
            Err(_) => {
                tracing::debug!(resource = %config.resource, "the impact preview timed out");
                self.connection = None;
                None
            }
        }
    }

    async fn explain_inner(&mut self, config: &PostgresConfig, text: &str) -> Result<Preview, String> {
        if self.connection.is_none() {
            let upstream =
                upstream::connect(config, &[("application_name".to_owned(), "countersign-preview".to_owned())])
                    .await
                    .map_err(|e| e.to_string())?;
            self.connection = Some((upstream.stream, upstream.leftover));
        }
        let Some((stream, buf)) = self.connection.as_mut() else { return Err("no connection".to_owned()) };
        let timeout_ms = config.preview_timeout.as_millis().max(1);
        let mut out = BytesMut::new();
        out.extend_from_slice(&wire::query(&format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL lock_timeout = {timeout_ms}"
        )));
        // The extended protocol: `Parse` refuses a text holding more than
        // one statement, so nothing can ride along after the EXPLAIN.
        let mut body = BytesMut::new();
        body.put_u8(0);
        body.put_slice(b"EXPLAIN (FORMAT JSON) ");
        body.put_slice(text.as_bytes());
        body.put_u8(0);
        body.put_i16(0);
        wire::put_frame(&mut out, b'P', &body);
        wire::put_frame(&mut out, b'B', &[0, 0, 0, 0, 0, 0, 0, 0]);
        wire::put_frame(&mut out, b'E', &[0, 0, 0, 0, 0]);
        wire::put_frame(&mut out, b'S', &[]);
        out.extend_from_slice(&wire::query("ROLLBACK"));
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;

        let mut plan_json = None;
        let mut failure = None;
        let mut ready = 0;
        while ready < 3 {
            let frame = loop {
                match wire::take_frame(buf, MAX_BACKEND_MESSAGE).map_err(|e| e.to_string())? {
                    Some(frame) => break frame,
                    None => {
                        if stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
                            return Err("the database closed the connection".to_owned());
                        }
                    }
                }
            };
            match frame[0] {
                b'Z' => ready += 1,
                b'E' => {
                    failure = Some(
                        wire::fields(&frame).into_iter().find(|(c, _)| *c == b'M').map(|(_, m)| m).unwrap_or_default(),
                    )
                }
                b'D' => plan_json = first_column(&frame),
                _ => {}
            }
        }
        if let Some(why) = failure {
            return Err(why);
        }
        let plan: Value = serde_json::from_str(&plan_json.ok_or("no plan")?).map_err(|e| e.to_string())?;
        read_plan(&plan).ok_or_else(|| "an unexpected plan".to_owned())
    }
}

fn first_column(frame: &[u8]) -> Option<String> {
    let body = frame.get(5..)?;
    let len = usize::try_from(i32::from_be_bytes(body.get(2..6)?.try_into().ok()?)).ok()?;
    Some(String::from_utf8_lossy(body.get(6..6 + len)?).into_owned())
}

/// The top node and its estimated rows. A `ModifyTable` node estimates
/// the rows it returns (none without `RETURNING`): the rows it changes are
/// those of the node below it.
pub fn read_plan(explained: &Value) -> Option<Preview> {
    let top = explained.get(0)?.get("Plan")?;
    let node = top.get("Node Type")?.as_str()?;
    let rows = |n: &Value| n.get("Plan Rows").and_then(Value::as_f64);
    let (plan, estimated) = if node == "ModifyTable" {
        let operation = top.get("Operation").and_then(Value::as_str).unwrap_or("Modify");
        let relation = top.get("Relation Name").and_then(Value::as_str).unwrap_or("?");
        let relation = match top.get("Schema").and_then(Value::as_str) {
            Some(schema) => format!("{schema}.{relation}"),
            None => relation.to_owned(),
        };
        let below = top.get("Plans").and_then(|p| p.get(0)).and_then(rows);
        (format!("{operation} on {relation}"), below.or_else(|| rows(top))?)
    } else {
        (node.to_owned(), rows(top)?)
    };
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a non-negative estimate, rounded")]
    let estimated_rows = estimated.max(0.0).round() as u64;
    Some(Preview { plan, estimated_rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_previewed_and_nothing_else() {
        let free = |_: &str| true;
        assert!(wanted("DELETE FROM orders", free));
        assert!(wanted("update t set a = 1", free));
        assert!(wanted("INSERT INTO t SELECT * FROM u", free));
        assert!(!wanted("INSERT INTO t VALUES (1)", free));
        assert!(!wanted("SELECT 1", free));
        assert!(!wanted("DELETE FROM orders WHERE id = $1", free));
        assert!(!wanted("DELETE FROM orders WHERE f()", |_: &str| false));
    }

    #[test]
    fn only_a_write_has_its_side_effects_derived() {
        // A routine read's facts are derived once, to decide it, not a
        // second time here.
        let asked = std::cell::Cell::new(0);
        let count = |_: &str| {
            asked.set(asked.get() + 1);
            true
        };
        assert!(!wanted("SELECT * FROM orders", count));
        assert!(!wanted("INSERT INTO t VALUES (1)", count));
        assert_eq!(asked.get(), 0);
        assert!(wanted("DELETE FROM orders", count));
        assert_eq!(asked.get(), 1);
    }

    #[test]
    fn the_rows_a_delete_changes_come_from_the_node_below() {
        let plan = json!([{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Relation Name": "orders",
            "Schema": "public", "Plan Rows": 0, "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 1_234_567}]}}]);
        let preview = read_plan(&plan).unwrap();
        assert_eq!(preview, Preview { plan: "Delete on public.orders".into(), estimated_rows: 1_234_567 });
        assert_eq!(preview.describe(), "Delete on public.orders: about 1.2 M rows (the planner's estimate)");
        assert!(read_plan(&json!({"nope": 1})).is_none());
    }
}
