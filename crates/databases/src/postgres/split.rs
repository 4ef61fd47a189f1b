//! A simple query's text cut into its statements, as PostgreSQL's own
//! lexer cuts it: at semicolons outside strings, quoted names,
//! dollar-quoted bodies and comments. The cutting follows PostgreSQL's
//! rules ([`countersign_facts::sql::pglex`]), not `sqlparser`'s, which
//! differ where a text can hide a statement (`$_€$` opens a string in
//! PostgreSQL, not in `sqlparser`). Each piece is a substring of the
//! text, so what is decided is exactly what was sent.
//!
//! A text PostgreSQL's lexer rejects (an unterminated string) stays
//! whole: it is decided as one statement, whose facts then say
//! `parse_error`, so a policy fails closed on it (and the database
//! rejects it before running any of it). A text with nothing but
//! whitespace and comments has no statements.

/// The statements of `text`, trimmed, in order.
#[cfg(test)]
fn statements(text: &str) -> Vec<&str> {
    countersign_facts::sql::pglex::statements(text)
}

/// [`statements`], or `None` when PostgreSQL's lexer rejects the text.
pub fn readable_statements(text: &str) -> Option<Vec<&str>> {
    countersign_facts::sql::pglex::readable_statements(text)
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
        assert_eq!(readable_statements("select 'unterminated; drop table x"), None);
        assert_eq!(readable_statements("select 1; select 2"), Some(vec!["select 1", "select 2"]));
    }
}
