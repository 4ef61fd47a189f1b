//! Shell commands: which programs run — including those behind `sh -c`,
//! `&&`, pipes, `xargs`, `sudo`, `env`, `find -exec` and command
//! substitutions — and whether any of them is destructive.
//!
//! The command line is tokenized like a shell would ([`lex`]), split into
//! simple commands at every operator, and each command's argv is walked
//! through the wrappers that run another program (`sudo rm` runs `rm`;
//! `sh -c 'a; b'` runs `a` and `b`). What cannot be known before it runs
//! (a program name computed from a variable, a script file, a shell
//! reading its commands from stdin, `eval` of computed text) is reported
//! as [`ShellFacts::unresolved`] rather than guessed; what cannot be
//! parsed at all is [`ShellFacts::parse_error`]. A policy should treat
//! both as risky.

pub(crate) mod lex;
mod risk;
mod wrappers;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kubectl::KubectlCall;
use crate::MAX_INPUT_BYTES;
use lex::{Op, Redirect, Token, Word};

/// How many wrappers and nested shells deep the analysis follows.
const MAX_DEPTH: usize = 24;
/// The most distinct programs and reasons kept, so a huge script cannot
/// blow up the policy context.
const MAX_PROGRAMS: usize = 128;
const MAX_REASONS: usize = 32;

/// What a shell command (or argv) runs.
///
/// Serialised as the `shell` record of the facts; field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellFacts {
    /// Every program that runs, by base name (`/usr/bin/rm` → `rm`), in
    /// the order they start (a substitution before the command using its
    /// output), each once, wrappers included (`sudo`, `xargs`, `sh`). Programs run on another host through `ssh` or
    /// `kubectl exec … --` are listed too.
    pub programs: Vec<String>,
    /// Some command destroys data or takes the system down; see
    /// [`ShellFacts::destructive_reasons`].
    pub destructive: bool,
    /// Why it is destructive, e.g. `rm -r`, `dd of=/dev/sda`,
    /// `write to /dev/sda`, `mkfs.ext4`, `chmod -R 777`, `kill -1`,
    /// `find -delete`, `shutdown`.
    pub destructive_reasons: Vec<String>,
    /// Runs something as another user: `sudo`, `doas`, `su`, `runuser`,
    /// `pkexec`.
    pub uses_sudo: bool,
    /// Contains a pipe (`|` or `|&`).
    pub has_pipeline: bool,
    /// Contains a command substitution (`$(…)`, backticks, `<(…)`); the
    /// commands inside are analysed too.
    pub has_substitution: bool,
    /// Something runs that the analysis cannot name: a program name
    /// computed at run time (`$CMD`, `"$(echo rm)"`, a glob), a shell
    /// reading a script file or stdin (`curl … | sh`), `eval` or `sh -c`
    /// of computed text, or wrappers nested too deeply.
    pub unresolved: bool,
    /// The command could not be parsed (unterminated quote or
    /// substitution, unbalanced parentheses, an argv that is not a list
    /// of strings, no command at all, or more than the size limit).
    pub parse_error: bool,
}

/// Analyses a `shell.exec`-style payload: `argv` (a list of strings, run
/// without a shell, as `countersign exec` sends it) and/or `command` (a
/// shell command line). Also collects the `kubectl` calls and the SQL
/// given to database clients (`psql -c`, `mysql -e`, `sqlite3 FILE SQL`).
pub(crate) fn from_payload(payload: &Value) -> Analysis {
    let mut analysis = Analysis::default();
    let argv = payload.get("argv");
    let command = payload.get("command");
    if argv.is_none() && command.is_none() {
        analysis.facts.parse_error = true;
    }
    match argv {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let words: Option<Vec<Word>> = items.iter().map(|v| v.as_str().map(Word::literal)).collect();
            match words {
                Some(words)
                    if !words.is_empty() && words.iter().map(|w| w.text.len()).sum::<usize>() <= MAX_INPUT_BYTES =>
                {
                    let refs: Vec<&Word> = words.iter().collect();
                    analysis.argv(&refs, false, 0);
                }
                Some(_) | None => analysis.facts.parse_error = true,
            }
        }
        Some(Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_)) => {
            analysis.facts.parse_error = true;
        }
    }
    match command {
        None | Some(Value::Null) => {}
        Some(Value::String(line)) => {
            if line.trim().is_empty() {
                analysis.facts.parse_error = true;
            } else {
                analysis.shell(line, 0);
            }
        }
        Some(Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => {
            analysis.facts.parse_error = true;
        }
    }
    analysis
}

/// Analyses one shell command line on its own.
pub fn analyse(line: &str) -> ShellFacts {
    let mut analysis = Analysis::default();
    analysis.shell(line, 0);
    analysis.facts
}

/// The facts being gathered, plus the `kubectl` calls and SQL seen.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub(crate) facts: ShellFacts,
    pub(crate) kubectl: Vec<KubectlCall>,
    pub(crate) sql: Vec<SqlText>,
}

/// SQL handed to a database client on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlText {
    pub text: String,
    /// The client's dialect: `postgres`, `mysql` or `sqlite`.
    pub dialect: &'static str,
    /// Only known at run time (`psql -c "$QUERY"`).
    pub dynamic: bool,
}

/// The base name of a program path: `/usr/bin/rm` → `rm`.
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Analysis {
    pub(crate) fn program(&mut self, name: &str) {
        let programs = &mut self.facts.programs;
        if programs.len() < MAX_PROGRAMS && !programs.iter().any(|p| p == name) {
            programs.push(name.to_owned());
        }
    }

    pub(crate) fn destructive(&mut self, reason: String) {
        self.facts.destructive = true;
        let reasons = &mut self.facts.destructive_reasons;
        if reasons.len() < MAX_REASONS && !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }

    /// A command line, as a shell reads it (the argument of `sh -c`, `eval`, …).
    pub(crate) fn shell(&mut self, line: &str, depth: usize) {
        if line.len() > MAX_INPUT_BYTES {
            self.facts.parse_error = true;
            return;
        }
        if depth > MAX_DEPTH {
            self.facts.unresolved = true;
            return;
        }
        match lex::tokenize(line, depth) {
            Ok(tokens) => self.list(&tokens, depth),
            Err(_) => self.facts.parse_error = true,
        }
    }

    /// A tokenized command list: split into simple commands at operators.
    fn list(&mut self, tokens: &[Token], depth: usize) {
        let mut command = Command::default();
        let mut parens = 0_usize;
        let mut case_depth = 0_usize;
        let mut i = 0;
        while let Some(token) = tokens.get(i) {
            i += 1;
            match token {
                Token::Word(w) => {
                    self.substitutions(w, depth);
                    command.words.push(w);
                }
                Token::Redirect(kind, w) => {
                    self.substitutions(w, depth);
                    command.redirects.push((*kind, w));
                }
                Token::Op(Op::Pipe) => {
                    self.facts.has_pipeline = true;
                    self.command(&mut command, &mut case_depth, depth);
                }
                Token::Op(Op::Separator | Op::CaseBreak) => self.command(&mut command, &mut case_depth, depth),
                Token::Op(Op::LParen) => {
                    // `name()` or `function name()`: a function definition;
                    // the name does not run here, the body is analysed.
                    let defines = match command.words.as_slice() {
                        [_] => true,
                        [keyword, _] => is_keyword(keyword, "function"),
                        _ => false,
                    };
                    if defines && matches!(tokens.get(i), Some(Token::Op(Op::RParen))) {
                        command.words.clear();
                        i += 1;
                        continue;
                    }
                    self.command(&mut command, &mut case_depth, depth);
                    parens += 1;
                }
                Token::Op(Op::RParen) => {
                    if command.words.first().is_some_and(|w| is_keyword(w, "case")) {
                        // `case x in pattern)`: the header and first pattern.
                        case_depth += 1;
                        command = Command::default();
                    } else if parens > 0 {
                        self.command(&mut command, &mut case_depth, depth);
                        parens -= 1;
                    } else if case_depth > 0 {
                        // A `case` pattern: not a command.
                        command = Command::default();
                    } else {
                        self.facts.parse_error = true;
                        self.command(&mut command, &mut case_depth, depth);
                    }
                }
            }
        }
        self.command(&mut command, &mut case_depth, depth);
        if parens != 0 {
            self.facts.parse_error = true;
        }
    }

    fn substitutions(&mut self, word: &Word, depth: usize) {
        for sub in &word.subs {
            self.facts.has_substitution = true;
            self.list(sub, depth + 1);
        }
    }

    /// One simple command, as split by [`Analysis::list`]; leaves it empty.
    fn command(&mut self, command: &mut Command<'_>, case_depth: &mut usize, depth: usize) {
        let Command { words, redirects } = std::mem::take(command);
        for (kind, target) in &redirects {
            match kind {
                Redirect::Output => {
                    if !target.dynamic && risk::is_device(&target.text) {
                        self.destructive(format!("write to {}", target.text));
                    }
                }
                Redirect::Input | Redirect::HereDoc { .. } => {}
            }
        }
        let mut rest: &[&Word] = &words;
        // Reserved words and assignments before the program.
        while let Some((first, tail)) = rest.split_first() {
            if first.assignment {
                rest = tail;
                continue;
            }
            if first.quoted || first.dynamic {
                break;
            }
            match first.text.as_str() {
                "!" | "{" | "}" | "if" | "then" | "else" | "elif" | "fi" | "do" | "done" | "while" | "until" => {
                    rest = tail;
                }
                "time" => {
                    rest = tail;
                    if rest.first().is_some_and(|w| w.text == "-p") {
                        rest = &rest[1..];
                    }
                }
                "function" => rest = tail.get(1..).unwrap_or(&[]),
                "esac" => {
                    *case_depth = case_depth.saturating_sub(1);
                    rest = tail;
                }
                // The header of a loop or `case`: words, not commands
                // (substitutions in them were analysed already).
                "for" | "select" => return,
                "case" => {
                    *case_depth += 1;
                    return;
                }
                _ => break,
            }
        }
        self.argv(rest, false, depth);
    }

    /// One argv: the program and its arguments. `bulk` means it runs once
    /// per input line or found file (`xargs`, `find -exec`).
    pub(crate) fn argv(&mut self, words: &[&Word], bulk: bool, depth: usize) {
        let Some((first, args)) = words.split_first() else {
            return;
        };
        if depth > MAX_DEPTH {
            self.facts.unresolved = true;
            return;
        }
        if first.dynamic || first.glob {
            self.facts.unresolved = true;
            return;
        }
        let program = basename(&first.text);
        if program.is_empty() {
            self.facts.parse_error = true;
            return;
        }
        self.program(program);
        if wrappers::unwrap(self, program, args, depth) {
            return;
        }
        risk::check(self, program, args, bulk);
    }
}

/// A simple command being collected.
#[derive(Debug, Default)]
struct Command<'a> {
    words: Vec<&'a Word>,
    redirects: Vec<(Redirect, &'a Word)>,
}

fn is_keyword(word: &Word, keyword: &str) -> bool {
    !word.quoted && !word.dynamic && word.text == keyword
}

#[cfg(test)]
mod tests;
