//! PostgreSQL's own reading of where a text's statements, strings and
//! comments are, following its lexer (`scan.l`) rule for rule, for the
//! settings the gateway keeps its sessions in (`standard_conforming_strings`
//! on, the client encoding UTF-8).
//!
//! `sqlparser`'s tokenizer is close to it but not the same: it takes
//! `$_€$` for a placeholder where PostgreSQL starts a dollar-quoted
//! string, and `$1a$` for a dollar-quoted string where PostgreSQL reads a
//! parameter, and it reads the continuation of an `E'…'` string on the
//! next line as a plain one. Each such difference lets a text hide a
//! statement from whoever reads it with `sqlparser`. So statements are
//! split here ([`statements`]), and a reading by `sqlparser` is trusted
//! only where it puts every string, comment and separator exactly where
//! this one does ([`agrees`]).
//!
//! What PostgreSQL's versions read differently (`1e$a$` is a number and a
//! name in 14 and an error in 15) is unreadable here: `None`.

use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

/// Where the text's strings, quoted names and comments are, and its
/// statement separators, by byte offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Each string, quoted name or comment: where its opening quote (or
    /// `--`, `/*`, `$tag$`) starts and where it ends. A string continued
    /// on another line is one region per quoted part.
    pub regions: Vec<(usize, usize)>,
    /// The `;` that end statements.
    pub separators: Vec<usize>,
}

/// Reads `text` as PostgreSQL does; `None` when PostgreSQL rejects it as a
/// whole (an unterminated string or comment) or its versions disagree.
pub fn read(text: &str) -> Option<Reading> {
    let mut lexer = Lexer { text, at: 0, out: Reading::default() };
    lexer.run()?;
    Some(lexer.out)
}

/// The statements of `text` as PostgreSQL splits them, trimmed, empty
/// ones left out; the whole text, trimmed, when it cannot be read (the
/// database then rejects it before running any of it).
pub fn statements(text: &str) -> Vec<&str> {
    readable_statements(text).unwrap_or_else(|| if trim(text).is_empty() { Vec::new() } else { vec![trim(text)] })
}

/// [`statements`], or `None` when `text` cannot be read: one lexing for
/// both the split and whether the text reads at all.
pub fn readable_statements(text: &str) -> Option<Vec<&str>> {
    let reading = read(text)?;
    let mut out = Vec::new();
    let mut start = 0;
    for &at in reading.separators.iter().chain(std::iter::once(&text.len())) {
        let piece = &text[start..at];
        if has_code(piece) {
            out.push(trim(piece));
        }
        start = (at + 1).min(text.len());
    }
    Some(out)
}

/// `text` trimmed of PostgreSQL's whitespace only: to it a no-break space
/// is part of a name (`DROP TABLE orders\u{a0}` drops another table).
fn trim(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// Whether `piece` holds anything but whitespace and comments.
fn has_code(piece: &str) -> bool {
    let Some(reading) = read(piece) else { return !piece.trim_matches(is_space).is_empty() };
    let mut at = 0;
    let bytes = piece.as_bytes();
    let comment = |start: usize| piece[start..].starts_with("--") || piece[start..].starts_with("/*");
    for &(start, end) in &reading.regions {
        if piece[at..start].chars().any(|c| !is_space(c)) || !comment(start) {
            return true;
        }
        at = end;
    }
    bytes[at..].iter().any(|&b| !is_space(char::from(b)))
}

/// Whether `sqlparser`'s `tokens` of `text` put every string, quoted
/// name, comment and separator where PostgreSQL does.
pub fn agrees(text: &str, tokens: &[TokenWithSpan]) -> bool {
    let Some(ours) = read(text) else { return false };
    let mut lines = LineStarts::new(text);
    let mut theirs = Reading::default();
    for token in tokens {
        let region = match &token.token {
            Token::SemiColon => {
                let Some(at) = lines.byte(token.span.start) else { return false };
                theirs.separators.push(at);
                continue;
            }
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => true,
            Token::Word(word) => word.quote_style.is_some(),
            token if super::quoted::is_quoted_text(token) => true,
            _ => false,
        };
        if !region {
            continue;
        }
        let (Some(start), Some(end)) = (lines.byte(token.span.start), lines.byte(token.span.end)) else {
            return false;
        };
        // A prefix (`E`, `U&`, `X`, `N`) is not part of where the quote starts.
        let Some(quote) = text.get(start..end).and_then(|t| t.find(['\'', '"', '$', '-', '/'])) else {
            return false;
        };
        theirs.regions.push((start + quote, end));
    }
    ours == theirs
}

/// Byte offsets of `sqlparser`'s (line, column) locations: both from 1,
/// lines ended by `\n` only, columns in characters. Asked in order (as
/// tokens come), it moves forward only: linear in the text, however many
/// tokens there are.
struct LineStarts<'a> {
    text: &'a str,
    starts: Vec<usize>,
    /// The last location found: line, column, byte.
    at: (u64, u64, usize),
}

impl<'a> LineStarts<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts, at: (1, 1, 0) }
    }

    fn byte(&mut self, to: Location) -> Option<usize> {
        let (line, column, _) = self.at;
        if (to.line, to.column) < (line, column) {
            return None;
        }
        if to.line > line {
            let start = *self.starts.get(usize::try_from(to.line).ok()?.checked_sub(1)?)?;
            self.at = (to.line, 1, start);
        }
        let (_, column, byte) = self.at;
        let skip = usize::try_from(to.column.checked_sub(column)?).ok()?;
        let rest = self.text.get(byte..)?;
        let offset = match rest.char_indices().nth(skip) {
            Some((i, _)) => i,
            None if rest.chars().count() == skip => rest.len(),
            None => return None,
        };
        // Within one line: a `\n` on the way means a column past its end.
        if rest[..offset].contains('\n') {
            return None;
        }
        self.at = (to.line, to.column, byte + offset);
        Some(byte + offset)
    }
}

/// PostgreSQL's `space` (`\v` since version 16; an error before it).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b')
}

/// `ident_start`: a letter, `_`, or any byte of a multi-byte character.
fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

/// `ident_cont`.
fn ident_cont(c: char) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == '$'
}

/// How a quoted string reads what is inside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    /// `'…'`, `N'…'`, `U&'…'`: `''` is a quote.
    Standard,
    /// `E'…'`: a backslash escapes the next character, too.
    Escape,
    /// `B'…'`, `X'…'`: no quote inside at all.
    Bits,
}

struct Lexer<'a> {
    text: &'a str,
    at: usize,
    out: Reading,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn run(&mut self) -> Option<()> {
        while let Some(c) = self.peek() {
            match c {
                '-' if self.rest().starts_with("--") => self.line_comment(),
                '/' if self.rest().starts_with("/*") => self.block_comment()?,
                '\'' => self.string(Quoted::Standard)?,
                '"' => self.quoted_name()?,
                ';' => {
                    self.out.separators.push(self.at);
                    self.at += 1;
                }
                '$' => self.dollar()?,
                c if ident_start(c) => self.word()?,
                c if c.is_ascii_digit() || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) => {
                    self.number()?;
                }
                _ => {
                    self.bump();
                }
            }
        }
        Some(())
    }

    /// `--` to the end of the line (`\n` or `\r`).
    fn line_comment(&mut self) {
        let start = self.at;
        let len = self.rest().find(['\n', '\r']).unwrap_or(self.rest().len());
        self.at += len;
        self.out.regions.push((start, self.at));
    }

    /// `/* … */`, nested.
    fn block_comment(&mut self) -> Option<()> {
        let start = self.at;
        self.at += 2;
        let mut depth = 1usize;
        while depth > 0 {
            if self.rest().starts_with("/*") {
                depth += 1;
                self.at += 2;
            } else if self.rest().starts_with("*/") {
                depth -= 1;
                self.at += 2;
            } else {
                self.bump()?;
            }
        }
        self.out.regions.push((start, self.at));
        Some(())
    }

    /// A string from its opening quote, with its continuations: a quote
    /// after whitespace holding a newline (and `--` comments) continues it,
    /// read the same way.
    fn string(&mut self, quoted: Quoted) -> Option<()> {
        loop {
            let start = self.at;
            self.bump();
            loop {
                match self.bump()? {
                    '\\' if quoted == Quoted::Escape => {
                        self.bump()?;
                    }
                    '\'' if quoted != Quoted::Bits && self.peek() == Some('\'') => {
                        self.bump();
                    }
                    '\'' => break,
                    _ => {}
                }
            }
            self.out.regions.push((start, self.at));
            if !self.continuation() {
                return Some(());
            }
        }
    }

    /// Moves to the quote that continues a string, if one does, recording
    /// the comments on the way.
    fn continuation(&mut self) -> bool {
        let mut at = self.at;
        let mut newline = false;
        let mut comments = Vec::new();
        loop {
            let rest = &self.text[at..];
            match rest.chars().next() {
                Some('\n' | '\r') => {
                    newline = true;
                    at += 1;
                }
                Some(' ' | '\t' | '\x0c' | '\x0b') => at += 1,
                Some('-') if rest.starts_with("--") => {
                    let Some(len) = rest.find(['\n', '\r']) else { return false };
                    comments.push((at, at + len));
                    at += len;
                }
                Some('\'') if newline => {
                    self.out.regions.extend(comments);
                    self.at = at;
                    return true;
                }
                _ => return false,
            }
        }
    }

    /// `"…"` (also after `U&`), `""` a quote inside.
    fn quoted_name(&mut self) -> Option<()> {
        let start = self.at;
        self.bump();
        loop {
            match self.bump()? {
                '"' if self.peek() == Some('"') => {
                    self.bump();
                }
                '"' => break,
                _ => {}
            }
        }
        self.out.regions.push((start, self.at));
        Some(())
    }

    /// `$1` (a parameter), `$tag$…$tag$`, or a lone `$`.
    fn dollar(&mut self) -> Option<()> {
        let rest = self.rest();
        if rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            return Some(());
        }
        let tag_len: usize = rest[1..]
            .char_indices()
            .take_while(|&(i, c)| if i == 0 { ident_start(c) } else { ident_start(c) || c.is_ascii_digit() })
            .map(|(_, c)| c.len_utf8())
            .sum();
        if !rest[1 + tag_len..].starts_with('$') {
            // `dolqfailed`: the `$` alone; what follows is read on its own.
            self.bump();
            return Some(());
        }
        let delimiter = &rest[..tag_len + 2];
        let start = self.at;
        let body = start + delimiter.len();
        let end = self.text[body..].find(delimiter)? + body + delimiter.len();
        self.at = end;
        self.out.regions.push((start, end));
        Some(())
    }

    /// A name or keyword, or the prefix of a string (`E'`, `B'`, `X'`,
    /// `N'`, `U&'`, `U&"`).
    fn word(&mut self) -> Option<()> {
        let c = self.peek()?;
        let next = self.peek_at(1);
        let third = self.peek_at(2);
        match (c, next, third) {
            ('e' | 'E', Some('\''), _) => {
                self.bump();
                self.string(Quoted::Escape)
            }
            ('b' | 'B' | 'x' | 'X', Some('\''), _) => {
                self.bump();
                self.string(Quoted::Bits)
            }
            ('n' | 'N', Some('\''), _) => {
                self.bump();
                self.string(Quoted::Standard)
            }
            ('u' | 'U', Some('&'), Some('\'')) => {
                self.at += 2;
                self.string(Quoted::Standard)
            }
            ('u' | 'U', Some('&'), Some('"')) => {
                self.at += 2;
                self.quoted_name()
            }
            _ => {
                while self.peek().is_some_and(ident_cont) {
                    self.bump();
                }
                Some(())
            }
        }
    }

    /// A number. Letters stuck to it (`1e`, `1abc`, `0x1f`) are an error
    /// in PostgreSQL 15, a number and a name in 14, and a hexadecimal
    /// number in 16: where what follows is a quote or a `$`, which of them
    /// runs the text decides where its strings are, so it is unreadable.
    fn number(&mut self) -> Option<()> {
        let mut letters = false;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() || c == '.' {
            } else if c.is_ascii_alphabetic() || c == '_' || !c.is_ascii() {
                letters = true;
            } else {
                break;
            }
            self.bump();
        }
        if letters && matches!(self.peek(), Some('\'' | '"' | '$')) {
            return None;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_where_postgresql_splits_them() {
        assert_eq!(statements("select 1; delete from t"), ["select 1", "delete from t"]);
        assert_eq!(statements("select ';'; select \"a;b\" from t;"), ["select ';'", "select \"a;b\" from t"]);
        assert_eq!(statements("select $$;$$; select $a$ $$; $a$"), ["select $$;$$", "select $a$ $$; $a$"]);
        assert_eq!(statements("select 1 -- ;\r; select 2"), ["select 1 -- ;", "select 2"]);
        assert_eq!(statements("/* a; /* b; */ c; */ select 1"), ["/* a; /* b; */ c; */ select 1"]);
        assert_eq!(statements(" ; ;; -- nothing\n/* x */"), Vec::<&str>::new());
        assert_eq!(statements("select E'\\';'; select 2"), ["select E'\\';'", "select 2"]);
        assert_eq!(statements("select 'it''s;'; select 2"), ["select 'it''s;'", "select 2"]);
        assert_eq!(statements("select 'unterminated; drop table x"), ["select 'unterminated; drop table x"]);
    }

    /// Texts `sqlparser` reads with a statement where PostgreSQL has a
    /// string, or a string where PostgreSQL has a statement.
    #[test]
    fn what_sqlparser_misreads_is_split_as_postgresql_does() {
        // `$_€$` opens a dollar-quoted string in PostgreSQL.
        assert_eq!(
            statements("SELECT $_€$ , $a$ $_€$; DELETE FROM orders; SELECT 1 -- $a$"),
            ["SELECT $_€$ , $a$ $_€$", "DELETE FROM orders", "SELECT 1 -- $a$"]
        );
        // `$1` is a parameter, not the start of `$1a$`.
        assert_eq!(statements("SELECT $1a$; DELETE FROM t; $1a$"), ["SELECT $1a$", "DELETE FROM t", "$1a$"]);
        // An `E'…'` string continued on the next line still reads backslashes.
        assert_eq!(
            statements("SELECT E'x'\n'\\''; DELETE FROM orders; --'"),
            ["SELECT E'x'\n'\\''", "DELETE FROM orders"]
        );
        assert_eq!(statements("SELECT 'x' -- c\n';'; select 2"), ["SELECT 'x' -- c\n';'", "select 2"]);
        // A name may hold `$`; a string after a name is not an `E'…'`.
        assert_eq!(
            statements("select a$b$; select xE'\\'; select 3 --'"),
            ["select a$b$", "select xE'\\'", "select 3 --'"]
        );
    }

    /// A long line of many strings is compared in one pass (locations are
    /// found moving forward, not counted from the line's start each time).
    #[test]
    fn many_tokens_on_one_line_are_compared() {
        let text = format!("select {}1", "'a', ".repeat(20_000));
        assert!(agrees(&text, &sqlparser_tokens(&text)));
        let text = format!("select 'é', {}\n'ü'; select 2", "$$x$$, ".repeat(1_000));
        assert!(agrees(&text, &sqlparser_tokens(&text)));
    }

    #[test]
    fn only_postgresqls_whitespace_is_trimmed() {
        assert_eq!(
            statements("DROP TABLE orders\u{a0}; \u{3000}select 1 "),
            ["DROP TABLE orders\u{a0}", "\u{3000}select 1"]
        );
        assert_eq!(statements("\u{a0}"), ["\u{a0}"]);
    }

    #[test]
    fn what_versions_read_differently_is_unreadable() {
        assert!(read("select 1e$a$ ; $a$").is_none());
        assert!(read("select 1abc'x'").is_none());
        assert!(read("select 1e5, 1.5, .5e-3").is_some());
    }

    /// Facts on a text PostgreSQL reads otherwise than `sqlparser` are a
    /// parse error, never read-only, whoever names the dialect.
    #[test]
    fn a_misread_text_is_never_read_only() {
        for text in [
            "SELECT $_€$ , $a$ $_€$; DELETE FROM orders; SELECT 1 -- $a$",
            "SELECT $_€$ , $a$ $_€$ -- $a$",
            "SELECT E'x'\n'\\''; DELETE FROM orders; --'",
        ] {
            let decided = super::super::analyse_as(text, &super::super::Dialects::Decided("postgres"));
            assert!(decided.parse_error && !decided.is_read_only, "{text}: {decided:?}");
            let claimed = super::super::analyse(text, "generic");
            assert!(!claimed.is_read_only, "{text}: {claimed:?}");
        }
    }

    fn sqlparser_tokens(text: &str) -> Vec<TokenWithSpan> {
        sqlparser::tokenizer::Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, text)
            .with_unescape(true)
            .tokenize_with_location()
            .unwrap()
    }

    #[test]
    fn sqlparser_is_trusted_where_it_reads_the_same() {
        for text in [
            "select 1",
            "select 'a', E'b\\'c', \"Q\"\"x\", $$d$$, $t$e$t$, U&'\\0041', X'ff', N'n' -- c\n/* d /* e */ */;",
            "select 'é'; select 'ü' ; select 3",
            "SELECT lower(item) FROM orders WHERE id = $1",
        ] {
            assert!(agrees(text, &sqlparser_tokens(text)), "{text}");
        }
        for text in [
            "SELECT $_€$ , $a$ $_€$; DELETE FROM orders; SELECT 1 -- $a$",
            "SELECT E'x'\n'\\''; DELETE FROM orders; --'",
        ] {
            let tokens = sqlparser::tokenizer::Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, text)
                .with_unescape(true)
                .tokenize_with_location();
            assert!(tokens.is_err() || !agrees(text, &tokens.unwrap()), "{text}");
        }
    }
}
