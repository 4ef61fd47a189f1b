//! Positions in policy and schema text: byte offsets to `line:column`, the
//! start of each policy statement, and the first span of a Cedar diagnostic.
//!
//! Cedar's public API does not expose where a parsed policy starts, so the
//! statement starts are found with a small scanner that knows just enough
//! Cedar lexing (strings and `//` comments) to find the `;` that end
//! statements. It only runs on text Cedar has already parsed.

use miette::Diagnostic;

use crate::error::Location;

/// A file's text with what is needed to turn byte offsets into locations.
#[derive(Debug, Clone)]
pub(crate) struct SourceText {
    pub(crate) file: String,
    pub(crate) text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    pub(crate) fn new(file: String, text: String) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { file, text, line_starts }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub(crate) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line_index = self.line_starts.partition_point(|&start| start <= offset).saturating_sub(1);
        let line_start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let column = self.text.get(line_start..offset).map_or(offset - line_start, |prefix| prefix.chars().count());
        Location { file: self.file.clone(), line: line_index + 1, column: column + 1 }
    }

    /// Where the first labelled span of `diagnostic` points, or `fallback`.
    pub(crate) fn diagnostic_location(&self, diagnostic: &dyn Diagnostic, fallback: usize) -> Location {
        self.location(first_label_offset(diagnostic).unwrap_or(fallback))
    }
}

/// The offset of a diagnostic's first label, looking into related
/// diagnostics when the outer one has none.
pub(crate) fn first_label_offset(diagnostic: &dyn Diagnostic) -> Option<usize> {
    if let Some(offset) = diagnostic.labels().and_then(|mut labels| labels.next()).map(|l| l.offset()) {
        return Some(offset);
    }
    diagnostic.related().and_then(|mut related| related.find_map(first_label_offset))
}

/// A diagnostic's message on one line, with its help text when it has one.
pub(crate) fn diagnostic_message(diagnostic: &dyn Diagnostic) -> String {
    let mut message = one_line(&diagnostic.to_string());
    if let Some(help) = diagnostic.help() {
        let help = one_line(&help.to_string());
        if !help.is_empty() {
            message.push_str(" (help: ");
            message.push_str(&help);
            message.push(')');
        }
    }
    message
}

/// Collapses whitespace runs (including newlines) so that every problem
/// stays on one `file:line:col: message` line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The byte offset where each `;`-terminated statement starts (its first
/// character that is neither whitespace nor part of a comment).
pub(crate) fn statement_starts(text: &str) -> Vec<usize> {
    #[derive(Clone, Copy)]
    enum State {
        Code,
        String { escaped: bool },
        Comment,
    }
    let mut starts = Vec::new();
    let mut current: Option<usize> = None;
    let mut state = State::Code;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        state = match state {
            State::Comment => match c {
                '\n' => State::Code,
                _ => State::Comment,
            },
            State::String { escaped: true } => State::String { escaped: false },
            State::String { escaped: false } => match c {
                '\\' => State::String { escaped: true },
                '"' => State::Code,
                _ => State::String { escaped: false },
            },
            State::Code => {
                if c == '/' && chars.peek().is_some_and(|&(_, next)| next == '/') {
                    State::Comment
                } else if c.is_whitespace() {
                    State::Code
                } else {
                    let start = *current.get_or_insert(i);
                    if c == ';' {
                        starts.push(start);
                        current = None;
                    }
                    match c {
                        '"' => State::String { escaped: false },
                        _ => State::Code,
                    }
                }
            }
        };
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_count_characters() {
        let s = SourceText::new("a.cedar".into(), "ab\n\u{e9}xy\n".into());
        assert_eq!(s.location(0).to_string(), "a.cedar:1:1");
        assert_eq!(s.location(1).to_string(), "a.cedar:1:2");
        assert_eq!(s.location(3).to_string(), "a.cedar:2:1");
        // `é` is two bytes but one column.
        assert_eq!(s.location(5).to_string(), "a.cedar:2:2");
        assert_eq!(s.location(100).to_string(), "a.cedar:3:1");
    }

    #[test]
    fn finds_statement_starts_past_comments_and_strings() {
        let text = "// permit(principal, action, resource);\n\
                    @id(\"a;b\") permit(principal, action, resource) when { \"x;//\" == \"y\" };\n\
                    \n  forbid(principal, action, resource); // done;\n";
        let starts = statement_starts(text);
        assert_eq!(starts.len(), 2);
        assert!(text[starts[0]..].starts_with("@id(\"a;b\")"));
        assert!(text[starts[1]..].starts_with("forbid"));
    }

    #[test]
    fn string_escapes_do_not_end_strings() {
        let text =
            r#"permit(principal, action, resource) when { "a\";" == "b" }; permit(principal, action, resource);"#;
        assert_eq!(statement_starts(text).len(), 2);
    }
}
