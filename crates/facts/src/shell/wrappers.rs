//! Programs that run other programs: `sudo rm` runs `rm`, `sh -c 'a; b'`
//! runs `a` and `b`, `find -exec rm {} +` runs `rm`. Each is unwrapped
//! with its own option syntax (so `sudo -u root rm` runs `rm`, not
//! `root`), and the wrapped command is analysed like any other.

use super::lex::Word;
use super::{Analysis, SqlText};
use crate::kubectl::{KubectlArg, KubectlCall};

/// The shells: `-c STRING` runs STRING; otherwise they run a script file
/// or read commands from stdin, neither of which can be seen.
const SHELLS: [&str; 11] = ["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "posh", "rbash", "fish"];

/// Handles `program` if it runs another program; returns whether it did
/// (then it needs no risk check of its own).
pub(super) fn unwrap(a: &mut Analysis, program: &str, args: &[&Word], depth: usize) -> bool {
    let next = depth + 1;
    match program {
        p if SHELLS.contains(&p) => shell(a, args, next),
        "sudo" | "doas" => {
            a.facts.uses_sudo = true;
            let (short, long): (&str, &[&str]) = if program == "sudo" {
                (
                    "pRrTtUuCDgh",
                    &[
                        "user",
                        "group",
                        "prompt",
                        "role",
                        "type",
                        "other-user",
                        "close-from",
                        "chdir",
                        "chroot",
                        "host",
                        "command-timeout",
                    ],
                )
            } else {
                ("uC", &[])
            };
            let start = first_operand(args, short, long);
            let options = &args[..start.min(args.len())];
            // `sudo -e` edits files: its operands are not a command.
            if program == "sudo" && has_short(options, 'e') {
                return true;
            }
            let rest = skip_assignments(tail(args, start));
            if rest.is_empty() && (has_short(options, 's') || has_short(options, 'i')) {
                // An interactive root shell reading stdin.
                a.facts.unresolved = true;
            }
            a.argv(rest, false, next);
        }
        "su" | "runuser" => {
            a.facts.uses_sudo = true;
            if let Some(command) = command_option(args) {
                a.shell(command, next);
            } else if program == "runuser" && args.iter().any(|w| w.text == "-u" || w.text.starts_with("--user")) {
                let start =
                    first_operand(args, "ugGsw", &["user", "group", "supp-group", "shell", "whitelist-environment"]);
                a.argv(tail(args, start), false, next);
            } else {
                // A login shell reading stdin.
                a.facts.unresolved = true;
            }
        }
        "pkexec" => {
            a.facts.uses_sudo = true;
            let rest = tail(args, first_operand(args, "", &["user"]));
            if rest.is_empty() {
                a.facts.unresolved = true;
            }
            a.argv(rest, false, next);
        }
        "env" => env(a, args, next),
        "nohup" | "setsid" | "unbuffer" | "builtin" | "busybox" => {
            a.argv(tail(args, first_operand(args, "", &[])), false, next)
        }
        "exec" => a.argv(tail(args, first_operand(args, "a", &[])), false, next),
        "command" => {
            let start = first_operand(args, "", &[]);
            // `command -v rm` only looks `rm` up.
            if !(has_short(&args[..start.min(args.len())], 'v') || has_short(&args[..start.min(args.len())], 'V')) {
                a.argv(tail(args, start), false, next);
            }
        }
        "nice" => a.argv(tail(args, first_operand(args, "n", &["adjustment"])), false, next),
        "ionice" => {
            let start = first_operand(args, "cnpPu", &["class", "classdata", "pid", "pgid", "uid"]);
            let options = &args[..start.min(args.len())];
            // With -p/-P/-u it changes running processes and runs nothing.
            if !["p", "P", "u"].iter().any(|o| options.iter().any(|w| w.text.starts_with(&format!("-{o}")))) {
                a.argv(tail(args, start), false, next);
            }
        }
        "time" => a.argv(tail(args, first_operand(args, "fo", &["format", "output"])), false, next),
        "stdbuf" => a.argv(tail(args, first_operand(args, "ioe", &["input", "output", "error"])), false, next),
        "timeout" => {
            let start = first_operand(args, "sk", &["signal", "kill-after"]);
            a.argv(tail(args, start + 1), false, next);
        }
        "chroot" => {
            let start = first_operand(args, "", &["userspec", "groups"]);
            let rest = tail(args, start + 1);
            if rest.is_empty() {
                a.facts.unresolved = true;
            }
            a.argv(rest, false, next);
        }
        "xargs" => {
            let start = first_operand(
                args,
                "adEILnPs",
                &[
                    "arg-file",
                    "delimiter",
                    "eof",
                    "replace",
                    "max-lines",
                    "max-args",
                    "max-procs",
                    "max-chars",
                    "process-slot-var",
                ],
            );
            a.argv(tail(args, start), true, next);
        }
        "find" => find(a, args, next),
        "watch" => {
            let start = first_operand(args, "n", &["interval"]);
            let options = &args[..start.min(args.len())];
            let rest = tail(args, start);
            if has_short(options, 'x') || options.iter().any(|w| w.text == "--exec") {
                a.argv(rest, false, next);
            } else {
                a.shell(&join(rest), next);
            }
        }
        "flock" => {
            if let Some(command) = command_option(args) {
                a.shell(command, next);
            } else {
                let start = first_operand(args, "wE", &["timeout", "conflict-exit-code"]);
                a.argv(tail(args, start + 1), false, next);
            }
        }
        "ssh" => {
            let start = first_operand(args, "BbcDEeFIiJLlmOoPpQRSWw", &[]);
            let remote = tail(args, start + 1);
            if remote.is_empty() {
                // An interactive session: commands come from stdin.
                a.facts.unresolved = true;
            } else {
                // The remote shell parses the arguments joined by spaces.
                a.shell(&join(remote), next);
            }
        }
        "eval" => a.shell(&join(args), next),
        "alias" => {
            // `alias ls='rm -rf /'`: the value may run later in this shell.
            for value in args.iter().filter_map(|w| w.text.split_once('=').map(|(_, v)| v)) {
                a.shell(value, next);
            }
        }
        "trap" => {
            if let Some(action) = args.first().filter(|w| !w.text.starts_with('-')) {
                if action.dynamic {
                    a.facts.unresolved = true;
                } else {
                    a.shell(&action.text, next);
                }
            }
        }
        // A script file whose commands cannot be seen.
        "source" | "." => a.facts.unresolved = true,
        "awk" | "gawk" | "mawk" | "nawk" => awk(a, args),
        "kubectl" | "oc" => kubectl(a, args, next),
        "psql" => {
            for (text, dynamic) in option_values(args, 'c', "command") {
                a.sql.push(SqlText { text, dialect: "postgres", dynamic });
            }
        }
        "mysql" | "mariadb" => {
            for (text, dynamic) in option_values(args, 'e', "execute") {
                a.sql.push(SqlText { text, dialect: "mysql", dynamic });
            }
        }
        "sqlite3" => sqlite3(a, args),
        _ => return false,
    }
    true
}

/// `sh [options] [-c STRING | SCRIPT | (stdin)]`.
fn shell(a: &mut Analysis, args: &[&Word], depth: usize) {
    let mut i = 0;
    let mut command_flag = false;
    while let Some(arg) = args.get(i) {
        let t = arg.text.as_str();
        if arg.dynamic {
            a.facts.unresolved = true;
            return;
        }
        if t == "--" || t == "-" {
            i += 1;
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            i += 1;
            if long == "rcfile" || long == "init-file" {
                i += 1;
            }
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            i += 1;
            let cluster = &t[1..];
            command_flag |= cluster.contains('c');
            if cluster.contains('o') || cluster.contains('O') {
                i += 1;
            }
            continue;
        }
        break;
    }
    match (command_flag, args.get(i)) {
        (true, Some(command)) => {
            if command.dynamic {
                a.facts.unresolved = true;
            } else {
                a.shell(&command.text, depth);
            }
        }
        // `sh -c` without a string is an error in every shell.
        (true, None) => a.facts.parse_error = true,
        // A script file, or commands from stdin (`curl … | sh`).
        (false, _) => a.facts.unresolved = true,
    }
}

/// `env [options] [NAME=VALUE…] [COMMAND [ARG…]]`, including `-S STRING`
/// (the string is split into words like a command line).
fn env(a: &mut Analysis, args: &[&Word], depth: usize) {
    let mut i = 0;
    let mut split: Option<String> = None;
    while let Some(arg) = args.get(i) {
        let t = arg.text.as_str();
        if arg.dynamic {
            break;
        }
        if t == "--" {
            i += 1;
            break;
        }
        if t == "-" {
            i += 1;
            continue;
        }
        if let Some(long) = t.strip_prefix("--") {
            i += 1;
            match long.split_once('=') {
                Some(("split-string", value)) => split = Some(value.to_owned()),
                Some(_) => {}
                None => match long {
                    "split-string" => {
                        split = args.get(i).map(|w| w.text.clone());
                        i += 1;
                    }
                    "unset" | "chdir" => i += 1,
                    _ => {}
                },
            }
            continue;
        }
        if let Some(cluster) = t.strip_prefix('-') {
            i += 1;
            for (pos, c) in cluster.char_indices() {
                if matches!(c, 'S' | 'u' | 'C' | 'P') {
                    let attached = &cluster[pos + c.len_utf8()..];
                    let value = if attached.is_empty() {
                        i += 1;
                        args.get(i - 1).map(|w| w.text.clone())
                    } else {
                        Some(attached.to_owned())
                    };
                    if c == 'S' {
                        split = value;
                    }
                    break;
                }
            }
            continue;
        }
        // `env` reads any NAME=VALUE as an assignment, quoted or not.
        if t.contains('=') && !t.starts_with('=') {
            i += 1;
            continue;
        }
        break;
    }
    let rest = tail(args, i);
    match split {
        Some(text) => {
            let mut line = text;
            line.push(' ');
            line.push_str(&join(rest));
            a.shell(&line, depth);
        }
        None => a.argv(rest, false, depth),
    }
}

/// `find … -exec CMD {} ;|+`, `-execdir`, `-ok`, `-okdir`, `-delete`.
fn find(a: &mut Analysis, args: &[&Word], depth: usize) {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        match arg.text.as_str() {
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let start = i;
                while args.get(i).is_some_and(|w| w.text != ";" && w.text != "+") {
                    i += 1;
                }
                if i >= args.len() {
                    a.facts.parse_error = true;
                }
                a.argv(&args[start..i.min(args.len())], true, depth);
                i += 1;
            }
            "-delete" => a.destructive("find -delete".to_owned()),
            _ => {}
        }
    }
}

/// awk programs can run commands (`system(…)`, `print | "cmd"`,
/// `"cmd" | getline`); those commands are computed text.
fn awk(a: &mut Analysis, args: &[&Word]) {
    let start = first_operand(args, "fvF", &["file", "assign", "field-separator"]);
    let options = &args[..start.min(args.len())];
    if has_short(options, 'f') || options.iter().any(|w| w.text.starts_with("--file")) {
        // The program is in a file.
        a.facts.unresolved = true;
        return;
    }
    if let Some(program) = args.get(start) {
        if program.dynamic || program.text.contains("system") || program.text.contains('|') {
            a.facts.unresolved = true;
        }
    }
}

/// Notes the `kubectl` call; a command after `--` (`kubectl exec pod --
/// rm -rf /data`) runs in the cluster and is analysed too.
fn kubectl(a: &mut Analysis, args: &[&Word], depth: usize) {
    a.kubectl.push(KubectlCall {
        args: args.iter().map(|w| KubectlArg { text: w.text.clone(), dynamic: w.dynamic }).collect(),
    });
    if let Some(dashes) = args.iter().position(|w| w.text == "--" && !w.dynamic) {
        a.argv(&args[dashes + 1..], false, depth);
    }
}

/// Every value of a database client's SQL option: `-c SQL`, `-cSQL`,
/// `--command SQL` or `--command=SQL` (for `short` `c`, `long` `command`),
/// with whether it is computed.
fn option_values(args: &[&Word], short: char, long: &str) -> Vec<(String, bool)> {
    let mut values = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if let Some(rest) = t.strip_prefix("--") {
            match rest.split_once('=') {
                Some((name, value)) if name == long => values.push((value.to_owned(), arg.dynamic)),
                Some(_) => {}
                None if rest == long => {
                    if let Some(value) = args.get(i) {
                        values.push((value.text.clone(), value.dynamic));
                        i += 1;
                    }
                }
                None => {}
            }
        } else if let Some(rest) = t.strip_prefix('-').and_then(|r| r.strip_prefix(short)) {
            if rest.is_empty() {
                if let Some(value) = args.get(i) {
                    values.push((value.text.clone(), value.dynamic));
                    i += 1;
                }
            } else {
                values.push((rest.to_owned(), arg.dynamic));
            }
        }
    }
    values
}

/// `sqlite3 [OPTIONS] FILE [SQL…]`, where `-cmd SQL` runs SQL first.
fn sqlite3(a: &mut Analysis, args: &[&Word]) {
    const WITH_VALUE: [&str; 12] = [
        "-cmd",
        "-separator",
        "-nullvalue",
        "-newline",
        "-init",
        "-vfs",
        "-mmap",
        "-lookaside",
        "-pagecache",
        "-heap",
        "-maxsize",
        "-escape",
    ];
    let mut operands = 0;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if t.starts_with('-') && t.len() > 1 && !arg.dynamic {
            let name = if t.starts_with("--") { &t[1..] } else { t };
            if WITH_VALUE.contains(&name) {
                if let Some(value) = args.get(i) {
                    if name == "-cmd" {
                        a.sql.push(SqlText { text: value.text.clone(), dialect: "sqlite", dynamic: value.dynamic });
                    }
                    i += 1;
                }
            }
            continue;
        }
        operands += 1;
        // The first operand is the database file; the rest are SQL.
        if operands > 1 {
            a.sql.push(SqlText { text: arg.text.clone(), dialect: "sqlite", dynamic: arg.dynamic });
        }
    }
}

/// The value of `-c CMD`, `-lc CMD`, `--command CMD` or `--command=CMD`.
fn command_option<'w>(args: &[&'w Word]) -> Option<&'w str> {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let t = arg.text.as_str();
        i += 1;
        if t == "--" {
            return None;
        }
        if let Some(value) = t.strip_prefix("--command=") {
            return Some(value);
        }
        let short_c = t.starts_with('-') && !t.starts_with("--") && t.ends_with('c');
        if t == "--command" || short_c {
            return args.get(i).map(|w| w.text.as_str());
        }
    }
    None
}

/// The arguments joined by spaces, as a remote shell or `eval` sees them;
/// a computed word becomes a parameter, so it stays computed.
fn join(words: &[&Word]) -> String {
    let parts: Vec<&str> = words.iter().map(|w| if w.dynamic { "$_" } else { w.text.as_str() }).collect();
    parts.join(" ")
}

/// The index of the first operand after the options, where `short` lists
/// the one-letter options and `long` the long ones that take a value. A
/// `--` ends the options.
fn first_operand(args: &[&Word], short: &str, long: &[&str]) -> usize {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let t = arg.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if arg.dynamic || !t.starts_with('-') || t == "-" {
            return i;
        }
        i += 1;
        if let Some(name) = t.strip_prefix("--") {
            if !name.contains('=') && long.contains(&name) {
                i += 1;
            }
            continue;
        }
        let cluster = &t[1..];
        if let Some((pos, c)) = cluster.char_indices().find(|(_, c)| short.contains(*c)) {
            if pos + c.len_utf8() == cluster.len() {
                i += 1;
            }
        }
    }
    i
}

/// Whether a one-letter option appears among `options` (clusters included).
fn has_short(options: &[&Word], option: char) -> bool {
    options.iter().any(|w| w.text.starts_with('-') && !w.text.starts_with("--") && w.text[1..].contains(option))
}

/// `NAME=VALUE` operands before the command (`sudo FOO=1 rm`).
fn skip_assignments<'a, 'w>(mut words: &'a [&'w Word]) -> &'a [&'w Word] {
    while let Some((first, rest)) = words.split_first() {
        let is_assignment = !first.dynamic
            && first.text.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !is_assignment {
            break;
        }
        words = rest;
    }
    words
}

fn tail<'a, 'w>(args: &'a [&'w Word], start: usize) -> &'a [&'w Word] {
    args.get(start..).unwrap_or(&[])
}
