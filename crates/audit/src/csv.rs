//! The one CSV writer of every export (the console's history CSV and
//! `countersign audit export --format csv`): RFC 4180 rows, with every cell
//! a spreadsheet could take for a formula defused, because the cells hold
//! attacker text (payloads, justifications, names, audit bodies).
//!
//! A cell is defused by a leading `'` (which spreadsheets show as text
//! and hide) when, after any leading whitespace or control characters,
//! it starts with `=`, `+`, `-`, `@` or their full-width forms, or when it
//! starts with a tab, CR or LF itself (OWASP's "CSV injection" list, read
//! as a class: spreadsheets skip leading blanks before a formula sign).

/// The line ending of every row (RFC 4180).
pub const LINE_END: &str = "\r\n";

/// Characters that start a formula, ASCII and full-width.
const FORMULA_SIGNS: [char; 8] = ['=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}'];

/// Whether a spreadsheet could evaluate `value` as a formula.
pub fn looks_like_formula(value: &str) -> bool {
    if value.starts_with(['\t', '\r', '\n']) {
        return true;
    }
    value.trim_start_matches(|c: char| c.is_whitespace() || c.is_control()).starts_with(FORMULA_SIGNS)
}

/// One cell: defused, then quoted when it holds a comma, quote or line
/// break (quotes inside doubled).
pub fn field(value: &str) -> String {
    let value = if looks_like_formula(value) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One row, with its line ending.
pub fn row<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = fields.into_iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str(LINE_END);
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cells_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field(r#"{"a":1,"b":"x"}"#), r#""{""a"":1,""b"":""x""}""#);
        assert_eq!(field(""), "");
    }

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
        for cell in [
            "=1+1",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "\n=1",
            "\tplain",
            " =cmd|' /C calc'!A0",
            "\u{a0}=1",
            "\u{3000}@x",
            "\u{1}=1",
            "\u{FF1D}1+1",
            "\u{FF0B}1",
            "\u{FF0D}1",
            "\u{FF20}x",
        ] {
            assert!(field(cell).trim_start_matches('"').starts_with('\''), "{cell:?} -> {:?}", field(cell));
        }
        for cell in ["plain", "a=b", "1-2", "user:alice", "{\"a\":\"=1\"}", "x@example.com"] {
            assert!(!field(cell).trim_start_matches('"').starts_with('\''), "{cell:?}");
        }
    }

    #[test]
    fn rows_end_in_crlf() {
        assert_eq!(row(["1", "=x", "a,b"]), "1,'=x,\"a,b\"\r\n");
        assert_eq!(row(Vec::<String>::new()), "\r\n");
    }

    /// Parses one RFC 4180 record back into cells.
    fn parse(line: &str) -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut chars = line.strip_suffix(LINE_END).unwrap().chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (false, '"') => quoted = true,
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cells.last_mut().unwrap().push('"');
                }
                (true, '"') => quoted = false,
                (false, ',') => cells.push(String::new()),
                (_, c) => cells.last_mut().unwrap().push(c),
            }
        }
        cells
    }

    proptest! {
        #[test]
        fn every_cell_reads_back_and_none_is_a_formula(cells in proptest::collection::vec(".{0,12}", 1..6)) {
            let parsed = parse(&row(&cells));
            prop_assert_eq!(parsed.len(), cells.len());
            for (read, original) in parsed.iter().zip(&cells) {
                prop_assert!(!looks_like_formula(read) || read.starts_with('\''));
                let restored = if looks_like_formula(original) { &read[1..] } else { read.as_str() };
                prop_assert_eq!(restored, original.as_str());
            }
        }
    }
}
