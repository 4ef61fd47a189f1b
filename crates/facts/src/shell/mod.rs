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
//! both as risky. Which programs count as running their arguments, and
//! the rule for programs the analysis does not know, are in [`programs`].
//!
//! The analysis is bounded, so no input can exhaust the stack or take
//! long: substitutions and nested shells at most [`MAX_DEPTH`] deep (the
//! lexer's own nesting at most [`lex::MAX_NESTING`]; deeper is a
//! `parse_error`), at most [`MAX_INPUT_BYTES`] per text and [`MAX_WORK`]
//! bytes lexed and words read in all (re-parsing `sh -c` strings
//! included; more is a `parse_error`). Parentheses, `&&`/`||`/`|` chains
//! and argv length are read in loops, never by recursion.

pub(crate) mod lex;
mod opts;
pub(crate) mod paths;
mod programs;
mod risk;
mod wrappers;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kubectl::KubectlCall;
use crate::MAX_INPUT_BYTES;
use lex::{Op, Redirect, Token, Word};

/// How many wrappers and nested shells deep the analysis follows; deeper
/// is a parse error.
pub const MAX_DEPTH: usize = 24;
/// The most text lexed plus words read, over the whole analysis (the
/// strings of nested `sh -c`, `eval`, `ssh` are lexed again); more is a
/// parse error, so the time spent is bounded.
pub const MAX_WORK: usize = 4 * MAX_INPUT_BYTES;
/// The most argv elements read.
const MAX_ARGS: usize = 64 * 1024;
/// The most arguments of an unknown program checked for a command.
const MAX_UNKNOWN_ARGS: usize = 4096;
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
    analysis.cwd = match payload.get("cwd") {
        Some(Value::String(cwd)) if cwd.starts_with('/') && cwd.len() <= 4096 => Some(paths::normalise(cwd)),
        _ => None,
    };
    analysis.stdin = stdin_of(payload);
    if analysis.stdin.is_some() {
        analysis.stdin_open = true;
        analysis.stdin_data = true;
    }
    match argv {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let words: Option<Vec<Word>> = items.iter().map(|v| v.as_str().map(Word::literal)).collect();
            match words {
                Some(words)
                    if !words.is_empty()
                        && words.len() <= MAX_ARGS
                        && words.iter().map(|w| w.text.len() + 1).sum::<usize>() <= MAX_INPUT_BYTES =>
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

/// The payload's standard input, as `countersign exec` binds it: `stdin`
/// (the text fed to the program) with `stdin_sha256`; a copy that is not
/// the whole input (`stdin_truncated: true`, or a digest without the
/// text, or a `stdin` that is not a string) cannot be read.
fn stdin_of(payload: &Value) -> Option<Stdin> {
    let truncated = payload.get("stdin_truncated").is_some_and(|v| v != &Value::Bool(false));
    match payload.get("stdin") {
        Some(Value::String(text)) if !truncated && text.len() <= MAX_INPUT_BYTES => Some(Stdin::Text(text.clone())),
        Some(Value::Null) | None if payload.get("stdin_sha256").is_none() && !truncated => None,
        Some(_) | None => Some(Stdin::Unseen),
    }
}

/// Analyses one shell command line on its own.
pub fn analyse(line: &str) -> ShellFacts {
    let mut analysis = Analysis::default();
    analysis.shell(line, 0);
    analysis.facts
}

/// The payload's standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stdin {
    Text(String),
    /// Given, but not whole in the payload.
    Unseen,
}

/// The facts being gathered, plus the `kubectl` calls and SQL seen.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub(crate) facts: ShellFacts,
    pub(crate) kubectl: Vec<KubectlCall>,
    pub(crate) sql: Vec<SqlText>,
    /// Text lexed and words read so far (see [`MAX_WORK`]).
    work: usize,
    /// The payload's stdin, until a program reads it.
    stdin: Option<Stdin>,
    /// The command being analysed reads the payload's stdin (it is not
    /// piped or redirected).
    stdin_open: bool,
    /// The command being analysed reads data on stdin (a pipe, a
    /// redirection, a here-document or the payload's).
    stdin_data: bool,
    /// The working directory, when known.
    cwd: Option<String>,
    /// Files that earlier commands downloaded (`curl -o x`), by base name.
    downloaded: Vec<String>,
    /// Functions being defined, with the nesting level of their body.
    functions: Vec<(String, usize)>,
    /// `{`/`(` nesting level of the command being analysed.
    level: usize,
    /// Inside a command run once per input (`parallel`).
    bulk: usize,
}

/// SQL handed to a database client on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlText {
    pub text: String,
    /// The client's dialect: `postgres`, `mysql` or `sqlite`.
    pub dialect: &'static str,
    /// Only known at run time (`psql -c "$QUERY"`).
    pub dynamic: bool,
    /// The server's settings, not the client, decide how the text reads
    /// (`mysql` and `NO_BACKSLASH_ESCAPES`): judged as a claimed dialect.
    pub claimed: bool,
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

    /// Counts `amount` of work; past [`MAX_WORK`] the input is a parse error.
    fn spend(&mut self, amount: usize) -> bool {
        self.work = self.work.saturating_add(amount);
        if self.work > MAX_WORK {
            self.facts.parse_error = true;
            return false;
        }
        true
    }

    /// The payload's stdin, when the command being analysed reads it.
    pub(crate) fn take_stdin(&mut self) -> Option<Stdin> {
        if self.stdin_open {
            self.stdin.take()
        } else {
            None
        }
    }

    /// The command being analysed reads data (not a terminal) on stdin.
    pub(crate) fn stdin_is_data(&self) -> bool {
        self.stdin_data
    }

    /// A shell reading its commands from stdin: the payload's stdin when
    /// that is its input, else commands that cannot be seen.
    pub(crate) fn stdin_shell(&mut self, depth: usize) {
        match self.take_stdin() {
            Some(Stdin::Text(text)) => {
                let saved = (self.stdin_open, self.stdin_data);
                // The script's commands share the shell's stdin, which the
                // shell itself is reading.
                self.stdin_open = false;
                self.shell(&text, depth);
                (self.stdin_open, self.stdin_data) = saved;
            }
            Some(Stdin::Unseen) | None => self.facts.unresolved = true,
        }
    }

    /// A command line run once per input item.
    pub(crate) fn bulk_shell(&mut self, line: &str, depth: usize) {
        self.bulk += 1;
        self.shell(line, depth);
        self.bulk -= 1;
    }

    /// A file the command writes; `truncating` when it replaces the
    /// contents (`>`, `tee` without `-a`) rather than appending.
    pub(crate) fn write_target(&mut self, target: &Word, truncating: bool) {
        if target.dynamic {
            return;
        }
        for path in paths::candidates(&target.text, self.cwd.as_deref()) {
            if paths::is_device(&path) || paths::is_kernel_control(&path) {
                self.destructive(format!("write to {path}"));
            } else if truncating && paths::is_critical_file(&path) {
                self.destructive(format!("overwrite {path}"));
            }
        }
    }

    pub(crate) fn cwd(&self) -> Option<&str> {
        self.cwd.as_deref()
    }

    pub(crate) fn downloaded(&mut self, file: &str) {
        let name = basename(file);
        if !name.is_empty() && self.downloaded.len() < MAX_PROGRAMS && !self.downloaded.iter().any(|d| d == name) {
            self.downloaded.push(name.to_owned());
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
            self.facts.parse_error = true;
            return;
        }
        if !self.spend(line.len()) {
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
                    command.piped = true;
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
                        if let Some(name) = command.words.last() {
                            if self.functions.len() < MAX_PROGRAMS {
                                self.functions.push((name.text.clone(), self.level));
                            }
                        }
                        command.words.clear();
                        i += 1;
                        continue;
                    }
                    self.command(&mut command, &mut case_depth, depth);
                    parens += 1;
                    self.level += 1;
                }
                Token::Op(Op::RParen) => {
                    if command.words.first().is_some_and(|w| is_keyword(w, "case")) {
                        // `case x in pattern)`: the header and first pattern.
                        case_depth += 1;
                        command = Command::default();
                    } else if parens > 0 {
                        self.command(&mut command, &mut case_depth, depth);
                        parens -= 1;
                        self.close_level();
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
            if depth + 1 > MAX_DEPTH {
                self.facts.unresolved = true;
                self.facts.parse_error = true;
                return;
            }
            // A substitution reads the stdin of the command it is in.
            self.list(sub, depth + 1);
        }
    }

    /// Leaves a `{ … }` or `( … )` body: functions defined at this level
    /// are complete.
    fn close_level(&mut self) {
        self.level = self.level.saturating_sub(1);
        let level = self.level;
        self.functions.retain(|(_, at)| *at < level);
    }

    /// One simple command, as split by [`Analysis::list`]; leaves it empty.
    fn command(&mut self, command: &mut Command<'_>, case_depth: &mut usize, depth: usize) {
        let Command { words, redirects, piped } = std::mem::take(command);
        let mut reads_input = false;
        for (kind, target) in &redirects {
            match kind {
                Redirect::Output => self.write_target(target, true),
                Redirect::Append => self.write_target(target, false),
                Redirect::Input | Redirect::HereDoc { .. } => reads_input = true,
            }
        }
        if !self.spend(words.len() + redirects.len()) {
            return;
        }
        let mut rest: &[&Word] = &words;
        // Reserved words and assignments before the program.
        while let Some((first, tail)) = rest.split_first() {
            if first.assignment {
                if wrappers::loads_code(&first.text) {
                    // `BASH_ENV=/tmp/x bash -c true`, `LD_PRELOAD=… ls`.
                    self.facts.unresolved = true;
                }
                rest = tail;
                continue;
            }
            if first.quoted || first.dynamic {
                break;
            }
            match first.text.as_str() {
                "{" => {
                    self.level += 1;
                    rest = tail;
                }
                "}" => {
                    self.close_level();
                    rest = tail;
                }
                "!" | "if" | "then" | "else" | "elif" | "fi" | "do" | "done" | "while" | "until" | "coproc" => {
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
        let saved = (self.stdin_open, self.stdin_data);
        self.stdin_open &= !piped && !reads_input;
        self.stdin_data |= piped || reads_input;
        self.argv(rest, false, depth);
        (self.stdin_open, self.stdin_data) = saved;
        // `curl URL > file`: the file is downloaded.
        if rest.first().is_some_and(|w| matches!(basename(&w.text), "curl" | "wget" | "fetch" | "aria2c")) {
            for (kind, target) in &redirects {
                if matches!(kind, Redirect::Output | Redirect::Append) && !target.dynamic {
                    self.downloaded(&target.text);
                }
            }
        }
    }

    /// One argv: the program and its arguments. `bulk` means it runs once
    /// per input line or found file (`xargs`, `find -exec`).
    pub(crate) fn argv(&mut self, words: &[&Word], bulk: bool, depth: usize) {
        let Some((first, args)) = words.split_first() else {
            return;
        };
        if depth > MAX_DEPTH {
            self.facts.unresolved = true;
            self.facts.parse_error = true;
            return;
        }
        if !self.spend(words.len()) {
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
        // `grm`, `gdd`, `gshred`: GNU coreutils installed with a `g` prefix
        // (Homebrew, BSDs) are the same programs.
        let program = programs::gnu_base(program);
        if first.text.contains('/') && !programs::in_program_dir(&first.text) {
            // `./deploy.sh`, `/tmp/x`: a file whose contents cannot be seen.
            self.facts.unresolved = true;
        }
        if self.downloaded.iter().any(|d| d == program) {
            self.facts.unresolved = true;
        }
        if self.functions.iter().any(|(name, level)| name == program && self.level > *level) {
            // A function calling itself: `:(){ :|:& };:`.
            self.destructive(format!("recursive function `{program}` (fork bomb)"));
        }
        if wrappers::unwrap(self, program, args, depth) {
            return;
        }
        if program == "cd" {
            self.cd(args);
            return;
        }
        self.unknown_rule(program, args);
        risk::check(self, program, args, bulk || self.bulk > 0);
    }

    /// `cd DIR` with a literal directory sets the working directory for
    /// what follows; anything else makes it unknown.
    fn cd(&mut self, args: &[&Word]) {
        let dir: Vec<&&Word> = args.iter().filter(|w| w.text != "-P" && w.text != "-L" && w.text != "--").collect();
        self.cwd = match dir.as_slice() {
            [dir] if !dir.dynamic && !dir.glob && dir.text.starts_with('/') => Some(paths::normalise(&dir.text)),
            [dir] if !dir.dynamic && !dir.glob && !dir.text.starts_with('~') && dir.text != "-" => {
                self.cwd.as_ref().map(|cwd| paths::normalise(&format!("{cwd}/{}", dir.text)))
            }
            _ => None,
        };
    }

    /// Interpreters, and unknown programs given what looks like a command
    /// (see [`programs`]).
    fn unknown_rule(&mut self, program: &str, args: &[&Word]) {
        if programs::INTERPRETERS.contains(&program) {
            let texts: Vec<&str> = args.iter().map(|w| w.text.as_str()).collect();
            if !programs::interpreter_reports_only(&texts) {
                self.facts.unresolved = true;
            }
            return;
        }
        if programs::KNOWN.contains(&program) || risk::judges(program) {
            return;
        }
        let is_known = |name: &str| {
            !programs::WORDS.contains(&name)
                && (programs::KNOWN.contains(&name)
                    || programs::INTERPRETERS.contains(&name)
                    || wrappers::is_wrapper(name)
                    || risk::judges(name))
        };
        // Past a few thousand arguments the check would cost more than it
        // tells: such a command line is not read.
        if args.len() > MAX_UNKNOWN_ARGS
            || args.iter().any(|w| !w.dynamic && programs::looks_like_command(&w.text, is_known))
        {
            self.facts.unresolved = true;
        }
    }
}

/// A simple command being collected.
#[derive(Debug, Default)]
struct Command<'a> {
    words: Vec<&'a Word>,
    redirects: Vec<(Redirect, &'a Word)>,
    /// Its stdin is the pipe from the command before.
    piped: bool,
}

fn is_keyword(word: &Word, keyword: &str) -> bool {
    !word.quoted && !word.dynamic && word.text == keyword
}

#[cfg(test)]
mod tests;
