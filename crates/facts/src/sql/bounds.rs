//! Bounds checked on the token stream before anything is parsed, so that
//! no syntax tree is ever deep enough to overflow a thread's stack.
//!
//! `sqlparser` limits its own recursion, but it builds operator chains
//! (`1+1+…+1`, `a OR b OR …`, `x::t::t…`, `UNION` after `UNION`) in a
//! loop, as left-deep trees of boxes: 32,000 terms parse fine and then
//! overflow the stack when the tree is walked, compared or dropped (drop
//! of nested boxes recurses too). So the tokens are scanned first, in one
//! pass with a bounded stack, and text whose tree could be too deep or too
//! big is refused (a parse error) before a tree exists.
//!
//! The depth of any tree the parser can build from the tokens is at most
//! the *weight* computed here, plus a constant per parser recursion (and
//! those are limited by [`PARSER_RECURSION_LIMIT`]): every operator,
//! keyword or punctuation token adds one to the comma-separated segment it
//! is in, and a bracketed group adds its heaviest segment plus one to the
//! segment around it.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

/// The deepest nesting of `(`, `[` and `{`.
pub(super) const MAX_NESTING: usize = 32;
/// The heaviest comma-separated segment (see the module documentation):
/// a `WHERE` of a few hundred conditions fits, a 32,000-term sum does not.
pub(super) const MAX_WEIGHT: usize = 400;
/// The most statements one text may hold.
pub(super) const MAX_STATEMENTS: usize = 1_000;
/// The most tokens (whitespace included) one text may hold: work, not
/// depth, since each dialect that reads a text differently parses it again.
pub(super) const MAX_TOKENS: usize = 65_536;
/// Passed to `sqlparser` (its default is 50).
pub(super) const PARSER_RECURSION_LIMIT: usize = 40;

/// What the scan learnt about a token stream within the bounds.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Shape {
    /// Where the text's statement separators, comments and string literals
    /// start: two dialects that agree on it agree on which parts of the
    /// text are code (see [`super::dialects`]).
    pub(super) signature: Vec<(Mark, Location)>,
}

/// A token that decides how the text splits into code and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Separator,
    Comment,
    String,
}

/// One bracketed group being scanned.
#[derive(Default)]
struct Group {
    /// The heaviest finished segment in the group.
    heaviest: usize,
    /// Tokens counted in the current segment.
    own: usize,
    /// The heaviest group nested in the current segment.
    nested: usize,
}

impl Group {
    fn current(&self) -> usize {
        self.own.saturating_add(self.nested)
    }

    fn weight(&self) -> usize {
        self.heaviest.max(self.current())
    }

    fn end_segment(&mut self) {
        self.heaviest = self.weight();
        self.own = 0;
        self.nested = 0;
    }
}

/// Scans `tokens`; `None` when they exceed a bound.
pub(super) fn scan(tokens: &[TokenWithSpan]) -> Option<Shape> {
    if tokens.len() > MAX_TOKENS {
        return None;
    }
    let mut groups = vec![Group::default()];
    let mut signature = Vec::new();
    let mut separators = 0usize;
    for token in tokens {
        let start = token.span.start;
        match &token.token {
            Token::EOF
            | Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab)
            | Token::Number(..)
            | Token::Placeholder(_) => {}
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                signature.push((Mark::Comment, start));
            }
            Token::Word(word) => {
                if word.quote_style.is_none() && chains(word.keyword) {
                    count(&mut groups)?;
                }
            }
            // `a.b.c` is one name (a list), not a nested tree.
            Token::Period => {}
            token if super::quoted::is_quoted_text(token) => {
                // `"…"` is a string in MySQL and a name elsewhere; only
                // where it ends matters, and that is the same in both
                // unless a backslash moves it, which then moves a
                // separator, comment or single-quoted string too.
                if !matches!(token, Token::DoubleQuotedString(_)) {
                    signature.push((Mark::String, start));
                }
            }
            Token::Comma => groups.last_mut()?.end_segment(),
            Token::SemiColon => {
                separators += 1;
                if separators > MAX_STATEMENTS {
                    return None;
                }
                signature.push((Mark::Separator, start));
                groups.last_mut()?.end_segment();
            }
            Token::LParen | Token::LBracket | Token::LBrace => {
                if groups.len() > MAX_NESTING {
                    return None;
                }
                groups.push(Group::default());
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if groups.len() > 1 {
                    let inner = groups.pop()?.weight().saturating_add(1);
                    let outer = groups.last_mut()?;
                    // Groups in a row (`x[1][1]…`, `f(a)(b)…`) chain too.
                    outer.own = outer.own.saturating_add(1);
                    outer.nested = outer.nested.max(inner);
                    if outer.current() > MAX_WEIGHT {
                        return None;
                    }
                }
            }
            _ => count(&mut groups)?,
        }
    }
    Some(Shape { signature })
}

/// A keyword that may add a level to the tree: every keyword but those
/// that only start a clause of a statement (which the parser keeps in
/// lists, never nested without a bracket).
fn chains(keyword: Keyword) -> bool {
    !matches!(
        keyword,
        Keyword::NoKeyword
            | Keyword::SELECT
            | Keyword::DISTINCT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::AS
            | Keyword::JOIN
            | Keyword::INNER
            | Keyword::LEFT
            | Keyword::RIGHT
            | Keyword::FULL
            | Keyword::OUTER
            | Keyword::CROSS
            | Keyword::ON
            | Keyword::USING
            | Keyword::GROUP
            | Keyword::ORDER
            | Keyword::BY
            | Keyword::HAVING
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::ASC
            | Keyword::DESC
            | Keyword::INSERT
            | Keyword::INTO
            | Keyword::VALUES
            | Keyword::UPDATE
            | Keyword::SET
            | Keyword::DELETE
            | Keyword::WITH
            | Keyword::RETURNING
            | Keyword::TABLE
            | Keyword::NULL
            | Keyword::TRUE
            | Keyword::FALSE
    )
}

/// One more operator-like token in the current segment.
fn count(groups: &mut [Group]) -> Option<()> {
    let group = groups.last_mut()?;
    group.own = group.own.saturating_add(1);
    (group.current() <= MAX_WEIGHT).then_some(())
}
