//! Finding secret values in text, and never anything else.
//!
//! Every candidate is a span of the original text; a span is hidden only
//! when it is a *literal value*: it holds none of the characters that make
//! text code to a shell ([`is_code_char`]: substitutions, pipes,
//! separators, redirections, escapes, line breaks) and no quote that could
//! change what the shell around it sees, and no word in it is a program
//! that the shell parser (`countersign_facts::shell`) sees running. So
//! redaction can only ever replace literal words that are arguments or
//! assigned values, while programs, operators and substitutions stay as
//! they were.

use std::ops::Range;

use countersign_facts::shell;

/// The most programs the shell analysis lists; a list that long may be
/// cut, so it no longer tells which words are programs.
const PROGRAMS_CAP: usize = 128;

/// Characters that make text code to a shell, or change how it splits.
pub fn is_code_char(c: char) -> bool {
    matches!(c, '$' | '`' | '\\' | '|' | ';' | '&' | '<' | '>' | '(' | ')' | '\n' | '\r' | '\0')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// How a secret-named word is followed by its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `NAME=value`, `NAME:value`: one shell word.
    Joined,
    /// `NAME = value`, `NAME: value`: the value is a word of its own.
    SpacedAssign,
    /// `NAME value`: only for options (`--password value`) or a quoted value.
    Spaced,
}

/// A value after a secret-named word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub value: Range<usize>,
    pub form: Form,
    /// The name is an option (`-p…`, `--password`).
    pub option: bool,
    /// The value is one quoted string.
    pub quoted: bool,
    /// No code characters, and no quote inside quotes.
    pub literal: bool,
}

/// The values after secret-named words in `text`, per `is_secret`.
pub fn assignments(text: &str, is_secret: impl Fn(&str) -> bool) -> Vec<Assignment> {
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut previous: Option<char> = None;
    while let Some((start, c)) = chars.next() {
        let starts_name = is_name_char(c) && !previous.is_some_and(is_name_char);
        previous = Some(c);
        if !starts_name {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if !is_name_char(next) {
                break;
            }
            end = i + next.len_utf8();
            previous = Some(next);
            chars.next();
        }
        let name = text.get(start..end).unwrap_or_default();
        if !is_secret(name) {
            continue;
        }
        // `"password": "…"` in JSON-like text: step over the closing quote.
        let opened = text.get(..start).and_then(|t| t.chars().last());
        let mut at = end;
        if let Some(q @ ('"' | '\'')) = opened {
            if text.get(at..).is_some_and(|t| t.starts_with(q)) {
                at += 1;
            }
        }
        let quoted_name = at > end;
        if let Some(assignment) = value_after(text, at, name.starts_with('-'), quoted_name) {
            found.push(assignment);
        }
    }
    found
}

/// The value following a name that ends at `at`, if there is one.
fn value_after(text: &str, at: usize, option: bool, json_like: bool) -> Option<Assignment> {
    let rest = text.get(at..)?;
    let before = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let after_blank = rest.get(before..)?;
    let separator = after_blank.chars().next()?;
    let (form, offset) = match separator {
        '=' | ':' => {
            let after_sep = after_blank.get(1..)?;
            let blank = after_sep.len() - after_sep.trim_start_matches([' ', '\t']).len();
            let form = if before == 0 && blank == 0 { Form::Joined } else { Form::SpacedAssign };
            (form, before + 1 + blank)
        }
        _ if before > 0 => (Form::Spaced, before),
        _ => return None,
    };
    let start = at + offset;
    let (mut range, mut quoted, mut literal) = word_at(text, start, json_like)?;
    if form == Form::Spaced && text.get(range.clone()).is_some_and(|v| v.starts_with('-') || v.contains('=')) {
        // The next option or assignment, not this one's value.
        return None;
    }
    // `Authorization: Bearer abc…`: the scheme stays, the credential goes.
    let scheme = text.get(range.clone()).unwrap_or_default().to_ascii_lowercase();
    if matches!(scheme.as_str(), "basic" | "bearer" | "digest" | "token" | "negotiate" | "ntlm") {
        let rest = text.get(range.end..)?;
        let blank = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if blank > 0 {
            (range, quoted, literal) = word_at(text, range.end + blank, json_like)?;
        }
    }
    // `NAME:=value`, `NAME::…`: separators are structure, not the value.
    let value = text.get(range.clone()).unwrap_or_default();
    range.start += value.len() - value.trim_start_matches(['=', ':']).len();
    let value = text.get(range.clone()).unwrap_or_default();
    if value.is_empty() {
        return None;
    }
    // An `=` is what makes a word an assignment (`env A=b cmd`, `A=b cmd`):
    // masking one that is not after this name's own `=` would turn the
    // word into a command, and the command after it into an argument.
    if value.contains('=') && !(form == Form::Joined && separator == '=') {
        return None;
    }
    Some(Assignment { value: range, form, option, quoted, literal })
}

/// The shell word starting at `start`: bare runs and quoted strings up to
/// a blank, a code character or the end; in JSON-like text (`"name": …`)
/// one string, or a bare run up to `,`, `}` or `]`. `None` when there is
/// no word or a quote is left open.
fn word_at(text: &str, start: usize, json_like: bool) -> Option<(Range<usize>, bool, bool)> {
    let mut i = start;
    let mut literal = true;
    let mut bare = false;
    let mut segments = 0;
    loop {
        let rest = text.get(i..)?;
        let Some(c) = rest.chars().next() else { break };
        match c {
            '"' | '\'' => {
                let inner = rest.get(1..)?;
                // A quote left open here closes an enclosing string
                // (`-H 'X-Api-Key: abc'`): the word ends before it.
                let Some(close) = inner.find(c) else { break };
                let content = inner.get(..close)?;
                let other = if c == '"' { '\'' } else { '"' };
                literal &= !content.contains(other) && !content.chars().any(is_code_char);
                i += close + 2;
                segments += 1;
                if json_like {
                    break;
                }
            }
            c if c.is_whitespace() || is_code_char(c) => break,
            ',' | '}' | ']' if json_like => break,
            _ => {
                let run = rest.find(|c: char| {
                    c.is_whitespace()
                        || is_code_char(c)
                        || c == '"'
                        || c == '\''
                        || (json_like && matches!(c, ',' | '}' | ']'))
                });
                i += run.unwrap_or(rest.len());
                bare = true;
                segments += 1;
            }
        }
    }
    (segments > 0).then_some((start..i, !bare && segments == 1, literal))
}

/// One word on its own, with nothing a shell would treat as code: a
/// value (a token in a JSON string, say) rather than a command line.
pub fn single_word(text: &str) -> bool {
    let trimmed = text.trim();
    !trimmed.is_empty() && !trimmed.contains(char::is_whitespace) && !trimmed.chars().any(is_code_char)
}

/// Which words are programs, as far as the shell parser can tell.
#[derive(Debug)]
pub enum Programs {
    /// The parser read the text; these programs run.
    Known(Vec<String>),
    /// The text is not a command line the parser can read whole.
    Unknown,
}

impl Programs {
    pub fn of(text: &str) -> Self {
        let facts = shell::analyse(text);
        if facts.parse_error || facts.programs.len() >= PROGRAMS_CAP {
            Programs::Unknown
        } else {
            Programs::Known(facts.programs)
        }
    }

    /// Some word that `range` of `text` is part of is a program that runs
    /// (the whole word: `token:rm` may be a program; compared by base
    /// name, quotes removed, as the parser reports them).
    pub fn touches(&self, text: &str, range: Range<usize>) -> bool {
        let boundary = |c: char| c.is_whitespace() || is_code_char(c);
        let start = text.get(..range.start).and_then(|t| t.rfind(boundary)).map_or(0, |i| i + 1);
        let end = text.get(range.end..).and_then(|t| t.find(boundary)).map_or(text.len(), |i| range.end + i);
        let span = text.get(start..end).unwrap_or_default();
        let is_program = |word: &str| {
            let word: String = word.chars().filter(|c| !matches!(c, '"' | '\'')).collect();
            let base = word.rsplit('/').next().unwrap_or(&word);
            match self {
                Programs::Unknown => false,
                Programs::Known(programs) => !base.is_empty() && programs.iter().any(|p| p == base || *p == word),
            }
        };
        // The word as the shell reads it (quoted blanks included), and each
        // blank-separated part of it.
        is_program(span) || span.split_whitespace().any(is_program)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(&str, Form, bool)> {
        assignments(text, crate::redact::names::is_secret_name)
            .into_iter()
            .map(|a| (&text[a.value], a.form, a.literal))
            .collect()
    }

    #[test]
    fn values_follow_their_names() {
        assert_eq!(values("A_TOKEN=abc b"), [("abc", Form::Joined, true)]);
        assert_eq!(values("--password \"x y\""), [("\"x y\"", Form::Spaced, true)]);
        assert_eq!(values("password: hunter2"), [("hunter2", Form::SpacedAssign, true)]);
        assert_eq!(values("{\"password\": \"p\"}"), [("\"p\"", Form::SpacedAssign, true)]);
        assert_eq!(values("TOKEN=\"$(id)\""), [("\"$(id)\"", Form::Joined, false)]);
        assert_eq!(values("TOKEN='a\"b'"), [("'a\"b'", Form::Joined, false)]);
        assert_eq!(values("--token=abc$(id)"), [("abc", Form::Joined, true)]);
        assert_eq!(values("Authorization: Bearer abc.def"), [("abc.def", Form::SpacedAssign, true)]);
        assert!(values("--token --verbose").is_empty());
        assert!(values("TOKEN='open").is_empty());
        assert!(values("bypass=x").is_empty());
    }
}
