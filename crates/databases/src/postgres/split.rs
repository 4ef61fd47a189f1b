//! A simple query's text cut into its statements, as PostgreSQL's own
//! lexer would cut it: at semicolons outside strings, quoted names,
//! dollar-quoted bodies and comments (tokens from `sqlparser`'s
//! PostgreSQL dialect). Each piece is a substring of the text, so what is
//! decided is exactly what was sent.
//!
//! A text the tokenizer rejects (an unterminated string) stays whole: it
//! is decided as one statement, whose facts then say `parse_error`, so a
//! policy fails closed on it. A text with nothing but whitespace and
//! comments has no statements.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The statements of `text`, trimmed, in order.
pub fn statements(text: &str) -> Vec<&str> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize_with_location() else {
        return vec![text.trim()];
    };
    let offsets = Offsets::new(text);
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    for token in &tokens {
        match &token.token {
            Token::SemiColon => {
                let Some(at) = offsets.byte(token.span.start.line, token.span.start.column) else {
                    return vec![text.trim()];
                };
                if has_code {
                    out.push(text[start..at].trim());
                }
                start = at + 1;
                has_code = false;
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => has_code = true,
        }
    }
    if has_code {
        out.push(text[start..].trim());
    }
    out
}

/// Byte offsets of (line, column) positions, both counted from 1 and in
/// characters, as the tokenizer counts them.
struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    fn byte(&self, line: u64, column: u64) -> Option<usize> {
        let line_start = *self.line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(column).ok()?.checked_sub(1)?;
        let rest = self.text.get(line_start..)?;
        let offset = match rest.char_indices().nth(column) {
            Some((i, _)) => i,
            None if rest.chars().count() == column => rest.len(),
            None => return None,
        };
        Some(line_start + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_in_code_split_and_nowhere_else() {
        assert_eq!(statements("select 1; delete from t"), ["select 1", "delete from t"]);
        assert_eq!(statements("select ';'; select \"a;b\" from t;"), ["select ';'", "select \"a;b\" from t"]);
        assert_eq!(
            statements("create function f() returns int as $$ select 1; $$ language sql; drop table x"),
            ["create function f() returns int as $$ select 1; $$ language sql", "drop table x"]
        );
        assert_eq!(statements("select 1 -- ; not here\n; select 2"), ["select 1 -- ; not here", "select 2"]);
        assert_eq!(statements("/* a; /* nested; */ b; */ select 1"), ["/* a; /* nested; */ b; */ select 1"]);
    }

    #[test]
    fn empty_pieces_are_not_statements() {
        assert!(statements("").is_empty());
        assert!(statements(" ; ;; -- nothing\n").is_empty());
        assert_eq!(statements(";;select 1;;"), ["select 1"]);
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        assert_eq!(statements("select 'é';\n  select 'ü' ; select 3"), ["select 'é'", "select 'ü'", "select 3"]);
    }

    #[test]
    fn what_does_not_tokenize_stays_whole() {
        assert_eq!(statements("select 'unterminated; drop table x"), ["select 'unterminated; drop table x"]);
    }
}
