//! The facts of one parsed text: one walk over the syntax tree (which
//! [`super::bounds`] keeps shallow) that looks at every statement, query,
//! expression and table, nested ones included.
//!
//! Read-only is decided by what is known to be safe: a statement kind on
//! the allow-list (a query, `EXPLAIN`, `DESCRIBE`, `SHOW …`), with no
//! locking (`FOR UPDATE`), no `SELECT … INTO`, no data-modifying statement
//! inside it, no custom operator, and only functions from
//! [`super::functions`]. Anything else is not read-only.

use std::fmt::{self, Write as _};
use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_expressions, BinaryOperator, CopyTarget, Expr, MergeAction, ObjectName, ObjectNamePart, Query, Select,
    Statement, TableFactor, Visit, Visitor,
};

use super::{functions, push_unique, SqlFacts};

/// How a dialect folds quoted names: PostgreSQL (and the standard) keeps
/// `"Users"` as written, MySQL, SQLite and SQL Server compare names without
/// case (MySQL on most systems).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuotedNames {
    AsWritten,
    Folded,
}

/// The facts of `statements`, parsed in a dialect that folds quoted names
/// as `quoted`.
pub(super) fn facts(statements: &[Statement], quoted: QuotedNames, facts: &mut SqlFacts) {
    facts.statement_count = statements.len();
    let mut walk = Walk { facts, quoted, read_only: !statements.is_empty() };
    for statement in statements {
        let _ = statement.visit(&mut walk);
    }
    let read_only = walk.read_only;
    facts.is_read_only = read_only;
}

struct Walk<'a> {
    facts: &'a mut SqlFacts,
    quoted: QuotedNames,
    read_only: bool,
}

impl Walk<'_> {
    fn table(&mut self, name: &ObjectName) {
        let parts = self.parts(name);
        push_unique(&mut self.facts.tables, parts.join("."));
        if let [_, .., last] = parts.as_slice() {
            push_unique(&mut self.facts.tables, last.clone());
        }
    }

    fn parts(&self, name: &ObjectName) -> Vec<String> {
        name.0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => match (ident.quote_style, self.quoted) {
                    (None, _) | (Some(_), QuotedNames::Folded) => ident.value.to_lowercase(),
                    (Some(_), QuotedNames::AsWritten) => ident.value.clone(),
                },
                ObjectNamePart::Function(function) => function.to_string().to_lowercase(),
            })
            .collect()
    }

    fn call(&mut self, name: &ObjectName) {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
                ObjectNamePart::Function(function) => function.to_string().to_lowercase(),
            })
            .collect();
        if !functions::is_safe(&parts) {
            self.read_only = false;
            push_unique(&mut self.facts.side_effect_functions, parts.join("."));
        }
        if parts.last().is_some_and(|name| functions::runs_program(name)) {
            self.facts.runs_program = true;
        }
    }
}

impl Visitor for Walk<'_> {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        let kind = kind(statement);
        self.facts.is_ddl |= ["create_", "alter_", "drop", "truncate", "rename", "comment", "undrop"]
            .iter()
            .any(|prefix| kind.starts_with(prefix));
        self.read_only &= allow_listed(statement, &kind);
        push_unique(&mut self.facts.statement_kinds, kind);
        match statement {
            Statement::Drop { names, .. } => names.iter().for_each(|name| self.table(name)),
            Statement::Delete(delete) => self.facts.delete_without_where |= !filters_rows(delete.selection.as_ref()),
            Statement::Update(update) => self.facts.update_without_where |= !filters_rows(update.selection.as_ref()),
            // Emptying a table is deleting every row.
            Statement::Truncate(_) => self.facts.delete_without_where = true,
            // What `MERGE` deletes or updates is every row its join
            // matches: no `WHERE` narrows it.
            Statement::Merge(merge) => {
                for clause in &merge.clauses {
                    match clause.action {
                        MergeAction::Delete { .. } => self.facts.delete_without_where = true,
                        MergeAction::Update(_) => self.facts.update_without_where = true,
                        MergeAction::Insert(_) | MergeAction::DoNothing { .. } => {}
                    }
                }
            }
            Statement::Copy { target, .. } => match target {
                // `COPY … TO '/path'` writes, and `FROM '/path'` reads, a
                // file on the database server, as the server's user.
                CopyTarget::Program { .. } | CopyTarget::File { .. } => self.facts.runs_program = true,
                CopyTarget::Stdin | CopyTarget::Stdout => {}
            },
            // SQLite's `ATTACH 'file'` creates or opens any file the server
            // process can reach.
            Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => {
                self.facts.runs_program = true;
            }
            // `PRAGMA writable_schema = 1` lets statements rewrite the schema
            // table itself.
            Statement::Pragma { name, .. } => {
                let last = self.parts(name).last().map(|n| n.to_lowercase());
                if matches!(last.as_deref(), Some("writable_schema" | "trusted_schema")) {
                    self.facts.is_ddl = true;
                }
            }
            // `INSERT OVERWRITE` replaces every row of the table.
            Statement::Insert(insert) if insert.overwrite => self.facts.delete_without_where = true,
            Statement::Call(function) => {
                self.facts.calls_procedure = true;
                self.runs_program_if_shell(&function.name);
            }
            Statement::Execute { name, .. } => {
                self.facts.calls_procedure = true;
                if let Some(name) = name {
                    self.runs_program_if_shell(name);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        // `FOR UPDATE` / `FOR SHARE` / `LOCK IN SHARE MODE` take locks.
        self.read_only &= query.locks.is_empty();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // `SELECT … INTO t` creates a table (or sets variables).
        self.read_only &= select.into.is_none();
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.table(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { name, args: Some(_), .. } | TableFactor::Function { name, .. } => self.call(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(function) => self.call(&function.name),
            // A user-defined operator runs a user-defined function.
            Expr::BinaryOp { op: BinaryOperator::Custom(_) | BinaryOperator::PGCustomBinaryOperator(_), .. } => {
                self.read_only = false;
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl Walk<'_> {
    /// SQL Server's `xp_cmdshell` runs its argument as a command line, and
    /// `sp_executesql` and the like run theirs as SQL.
    fn runs_program_if_shell(&mut self, name: &ObjectName) {
        let last = name.0.last().map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
            ObjectNamePart::Function(function) => function.to_string().to_lowercase(),
        });
        if last.as_deref().is_some_and(functions::runs_program) {
            self.facts.runs_program = true;
        }
    }
}

/// Statement kinds that only read (what they contain is checked too).
fn allow_listed(statement: &Statement, kind: &str) -> bool {
    matches!(statement, Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. })
        || kind.starts_with("show")
}

/// A `WHERE` that can keep some rows out: one that mentions a column, and
/// is not an `OR` with an arm that does not (`id = 1 OR 1 = 1`), nor a
/// comparison of something with itself (`id = id`).
fn filters_rows(selection: Option<&Expr>) -> bool {
    selection.is_some_and(filters)
}

fn filters(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => filters(inner),
        Expr::BinaryOp { op: BinaryOperator::Or, .. } if tautology(expr) => false,
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => filters(left) && filters(right),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => filters(left) || filters(right),
        Expr::BinaryOp { left, op: BinaryOperator::Eq | BinaryOperator::LtEq | BinaryOperator::GtEq, right }
            if left == right =>
        {
            false
        }
        other => visit_expressions(other, |e| match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break(),
    }
}

/// `expr` without the parentheses around it.
fn strip(mut e: &Expr) -> &Expr {
    while let Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// An `OR` chain true for every row: `x IS NULL OR x IS NOT NULL`,
/// `p OR NOT p` (arms compared as written, parentheses aside).
fn tautology(expr: &Expr) -> bool {
    const MAX_ARMS: usize = 64;
    let mut arms: Vec<&Expr> = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Nested(inner) => stack.push(inner),
            Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
                stack.push(left);
                stack.push(right);
            }
            other => arms.push(other),
        }
        if arms.len() + stack.len() > MAX_ARMS {
            return false;
        }
    }
    arms.iter().any(|a| {
        arms.iter().any(|b| match (strip(a), strip(b)) {
            (Expr::IsNull(x), Expr::IsNotNull(y)) => strip(x) == strip(y),
            (p, Expr::UnaryOp { op: sqlparser::ast::UnaryOperator::Not, expr }) => p == strip(expr),
            _ => false,
        })
    })
}

/// The statement's kind: its syntax-tree variant in `snake_case`, with
/// `Query` read as `select` and `Drop` carrying its object type.
pub(super) fn kind(statement: &Statement) -> String {
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
