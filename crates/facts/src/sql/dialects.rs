//! Which dialects a text is judged in, and how their readings combine.
//!
//! Dialects disagree on where strings and comments end: MySQL reads a
//! backslash in `'…'` as an escape and `#` as a comment, PostgreSQL reads
//! neither, and only MySQL runs the inside of `/*! … */`. So
//! `SELECT '\'; DROP TABLE users; -- '` is one harmless statement in
//! MySQL and a `DROP` in PostgreSQL. The `dialect` a submitter names is
//! their claim, so unless the gateway itself decides which database runs
//! the text ([`Dialects::Decided`]), it is judged in every dialect that
//! could run it and the readings are merged worst-case.
//!
//! Each dialect's tokens give a signature: where its statement
//! separators, comments and string literals start. Dialects that agree on
//! it agree on which parts of the text are code, so parsing one of them
//! is enough; each dialect whose signature differs is parsed as well, and
//! the text is then `dialect_ambiguous` (never read-only). A differing
//! reading that no dialect of its kind can parse hides what it would run:
//! a parse error. A dialect whose tokenizer rejects the text (an
//! unterminated string in its reading) is a dialect whose database
//! rejects it too, and is left out.

use sqlparser::dialect::{dialect_from_str, Dialect, MsSqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{TokenWithSpan, Tokenizer};

use super::bounds::{self, Shape};
use super::pglex;
use super::walk::{self, QuotedNames};
use super::{combine, SqlFacts};

/// The dialects a claimed one is judged alongside: those the gateway's
/// users run (`sql.*` payloads and `psql`, `mysql`, `sqlite3`,
/// `sqlcmd` command lines).
const COMMON: [&str; 5] = ["generic", "postgres", "mysql", "sqlite", "mssql"];

/// Who says which dialect the text is in.
#[derive(Debug, Clone, Copy)]
pub enum Dialects<'a> {
    /// The submitter's `dialect` (or `generic`): judged in it and in every
    /// common dialect.
    Claimed(&'a str),
    /// The gateway knows which database runs the text (a `psql` command
    /// line, a resource bound to PostgreSQL): judged in that one only.
    Decided(&'a str),
}

/// Judges `text` as `dialects` says into `facts` (whose `dialect` is set).
pub(super) fn judge(text: &str, dialects: &Dialects<'_>, facts: &mut SqlFacts) {
    let (name, claimed) = match dialects {
        Dialects::Claimed(name) => (name, true),
        Dialects::Decided(name) => (name, false),
    };
    let Some(first) = dialect_from_str(name) else {
        facts.parse_error = true;
        return;
    };
    let mut all = vec![first];
    if claimed {
        for other in COMMON.iter().filter_map(dialect_from_str) {
            if all.iter().all(|known| known.dialect() != other.dialect()) {
                all.push(other);
            }
        }
    }

    // Scan every reading first: a bound exceeded in any dialect is a parse
    // error before any tree is built.
    let mut shapes: Vec<Option<Shape>> = Vec::with_capacity(all.len());
    let mut first_tokens = None;
    for (i, dialect) in all.iter().enumerate() {
        let postgres = dialect.is::<PostgreSqlDialect>();
        let Ok(tokens) = tokenize(dialect.as_ref(), text) else {
            // PostgreSQL may run what `sqlparser` cannot read.
            if postgres && pglex::read(text).is_some() {
                facts.parse_error = true;
                return;
            }
            shapes.push(None);
            continue;
        };
        // `sqlparser`'s reading of a text PostgreSQL runs is trusted only
        // where it finds the strings, comments and statements PostgreSQL
        // does (see [`pglex`]).
        if postgres && !pglex::agrees(text, &tokens) {
            facts.parse_error = true;
            return;
        }
        let Some(shape) = bounds::scan(&tokens) else {
            facts.parse_error = true;
            return;
        };
        shapes.push(Some(shape));
        if i == 0 {
            first_tokens = Some(tokens);
        }
    }
    let (Some(tokens), Some(Some(first_shape))) = (first_tokens, shapes.first()) else {
        facts.parse_error = true;
        return;
    };
    if !read(all[0].as_ref(), tokens, facts) {
        facts.parse_error = true;
        return;
    }

    // One more reading per distinct signature.
    let mut judged: Vec<&Shape> = vec![first_shape];
    for (i, shape) in shapes.iter().enumerate().skip(1) {
        let Some(shape) = shape else { continue };
        if judged.contains(&shape) {
            continue;
        }
        judged.push(shape);
        facts.dialect_ambiguous = true;
        let mut understood = false;
        for (dialect, _) in all.iter().zip(&shapes).skip(i).filter(|(_, s)| s.as_ref() == Some(shape)) {
            let mut reading = SqlFacts::default();
            let read_ok =
                tokenize(dialect.as_ref(), text).is_ok_and(|tokens| read(dialect.as_ref(), tokens, &mut reading));
            if read_ok {
                combine(facts, reading);
                understood = true;
                break;
            }
        }
        facts.parse_error |= !understood;
    }
    if facts.dialect_ambiguous {
        facts.is_read_only = false;
    }
}

fn tokenize(dialect: &dyn Dialect, text: &str) -> Result<Vec<TokenWithSpan>, sqlparser::tokenizer::TokenizerError> {
    Tokenizer::new(dialect, text).with_unescape(true).tokenize_with_location()
}

/// Parses bounded `tokens` and walks the tree into `facts`; false when the
/// parser rejects them or they hold no statement.
fn read(dialect: &dyn Dialect, tokens: Vec<TokenWithSpan>, facts: &mut SqlFacts) -> bool {
    let parsed = Parser::new(dialect)
        .with_recursion_limit(bounds::PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements();
    match parsed {
        // Only comments or semicolons: nothing that can be described.
        Ok(statements) if statements.is_empty() => false,
        Ok(statements) => {
            walk::facts(&statements, quoted_names(dialect), facts);
            true
        }
        Err(_) => false,
    }
}

fn quoted_names(dialect: &dyn Dialect) -> QuotedNames {
    if dialect.is::<MySqlDialect>() || dialect.is::<SQLiteDialect>() || dialect.is::<MsSqlDialect>() {
        QuotedNames::Folded
    } else {
        // PostgreSQL, the standard and the rest keep quoted names as written.
        QuotedNames::AsWritten
    }
}
