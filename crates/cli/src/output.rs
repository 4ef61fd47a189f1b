//! How the binary talks to people: `--output`, colour (honouring
//! `NO_COLOR` and non-TTY streams), one-line errors, and small formatting
//! helpers shared by the commands.

use std::io::IsTerminal;
use std::time::Duration;

use clap::ValueEnum;

/// `--output text|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

impl Output {
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

/// True when ANSI escapes may be written to stderr.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// True when stderr is a terminal (for in-place status lines).
pub fn stderr_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Styles for stderr; every method is a no-op without colour.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn stderr() -> Self {
        Self { color: stderr_color() }
    }

    pub fn stdout() -> Self {
        Self { color: std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal() }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn red(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub fn green(self, text: &str) -> String {
        self.paint("1;32", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint("1;33", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Prints `error: <message>` on one line of stderr.
pub fn print_error(message: &str) {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("{} {one_line}", Style::stderr().red("error:"));
}

/// Prints `warning: <message>` on stderr.
pub fn print_warning(message: &str) {
    eprintln!("{} {message}", Style::stderr().yellow("warning:"));
}

/// A compact human duration: `45s`, `12m`, `3h20m`, `2d`.
pub fn short_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => {
            let (m, s) = (secs / 60, secs % 60);
            if s == 0 || m >= 10 {
                format!("{m}m")
            } else {
                format!("{m}m{s:02}s")
            }
        }
        3600..=86_399 => {
            let (h, m) = (secs / 3600, (secs % 3600) / 60);
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{m:02}m")
            }
        }
        _ => format!("{}d", secs / 86_400),
    }
}

/// Renders rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(header.to_vec());
    for row in rows {
        push_row(row.iter().map(String::as_str).collect());
    }
    out
}

/// Quotes a path or word for a POSIX shell when it needs it, so printed
/// commands can be pasted as they are.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '@' | '=' | ','));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(short_duration(Duration::from_secs(5)), "5s");
        assert_eq!(short_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(short_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(short_duration(Duration::from_secs(3600 + 120)), "1h02m");
        assert_eq!(short_duration(Duration::from_secs(3 * 86_400)), "3d");
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(shell_quote("./countersign-data"), "./countersign-data");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
