//! Which commands are destructive.
//!
//! The list is short on purpose: commands that destroy data beyond easy
//! recovery or take the whole system down, recognised by their arguments
//! as the program reads them (not by text patterns):
//!
//! - recursive deletion: `rm -r`/`-R`/`--recursive`, `rm` whose options
//!   are computed (`rm $ARGS` may be `rm -rf /`), `rm` run in bulk by
//!   `xargs` or `find -exec`, `find -delete`;
//! - overwriting disks: `dd of=…`, any write (`>`, `tee`) to a block
//!   device or `/dev/mem`, `mkfs*`, `mke2fs`, `mkswap`, `wipefs`, `shred`,
//!   `blkdiscard`;
//! - opening everything to everyone: `chmod -R` with a mode that lets
//!   others write (`777`, `o+w`, `a=rwx`);
//! - killing init or every process: `kill` of pid `1` or `-1`;
//! - stopping the machine: `shutdown`, `reboot`, `halt`, `poweroff`,
//!   `systemctl reboot|poweroff|halt|kexec`, `init 0|6`.

use super::lex::Word;
use super::Analysis;

/// Programs that are destructive whatever their arguments.
const ALWAYS: [&str; 10] =
    ["mke2fs", "mkswap", "wipefs", "shred", "blkdiscard", "shutdown", "reboot", "halt", "poweroff", "mkfs"];

/// Checks one (unwrapped) command.
pub(super) fn check(a: &mut Analysis, program: &str, args: &[&Word], bulk: bool) {
    if ALWAYS.contains(&program) || program.starts_with("mkfs.") {
        a.destructive(program.to_owned());
        return;
    }
    match program {
        "rm" => rm(a, args, bulk),
        "dd" => {
            for target in args.iter().filter_map(|w| w.text.strip_prefix("of=")) {
                a.destructive(format!("dd of={target}"));
            }
        }
        "tee" => {
            for target in operands(args).filter(|w| !w.dynamic && is_device(&w.text)) {
                a.destructive(format!("write to {}", target.text));
            }
        }
        "chmod" => chmod(a, args),
        "kill" => kill(a, args),
        "systemctl" => {
            if let Some(verb) = operands(args).next() {
                if matches!(verb.text.as_str(), "reboot" | "poweroff" | "halt" | "kexec") {
                    a.destructive(format!("systemctl {}", verb.text));
                }
            }
        }
        "init" | "telinit" => {
            if let Some(level) = args.first().filter(|w| w.text == "0" || w.text == "6") {
                a.destructive(format!("{program} {}", level.text));
            }
        }
        _ => {}
    }
}

/// Whether writing to `path` overwrites a disk or memory.
pub(super) fn is_device(path: &str) -> bool {
    let Some(device) = path.strip_prefix("/dev/") else {
        return false;
    };
    const PREFIXES: [&str; 11] = ["sd", "hd", "vd", "xvd", "nvme", "mmcblk", "disk/", "mapper/", "dm-", "md", "nbd"];
    PREFIXES.iter().any(|p| device.starts_with(p)) || matches!(device, "mem" | "kmem" | "port")
}

/// The operands (non-option words) up to and after `--`.
fn operands<'a, 'w>(args: &'a [&'w Word]) -> impl Iterator<Item = &'w Word> + 'a {
    let mut options_done = false;
    args.iter().copied().filter(move |w| {
        if options_done {
            return true;
        }
        if w.text == "--" {
            options_done = true;
            return false;
        }
        !(w.text.starts_with('-') && w.text.len() > 1)
    })
}

fn rm(a: &mut Analysis, args: &[&Word], bulk: bool) {
    for arg in args {
        let t = arg.text.as_str();
        if t == "--" {
            break;
        }
        if arg.dynamic {
            // The word may expand to options: `rm $FLAGS /` can be `rm -rf /`.
            a.destructive("rm with computed arguments".to_owned());
            continue;
        }
        match t.strip_prefix("--") {
            Some("recursive") => a.destructive("rm -r".to_owned()),
            Some("no-preserve-root") => a.destructive("rm --no-preserve-root".to_owned()),
            Some(_) => {}
            None => {
                if t.starts_with('-') && (t.contains('r') || t.contains('R')) {
                    a.destructive("rm -r".to_owned());
                }
            }
        }
    }
    if bulk {
        a.destructive("rm over many files (xargs / find -exec)".to_owned());
    }
}

fn chmod(a: &mut Analysis, args: &[&Word]) {
    let recursive = args.iter().any(|w| {
        w.text == "--recursive" || (w.text.starts_with('-') && !w.text.starts_with("--") && w.text.contains('R'))
    });
    if !recursive {
        return;
    }
    // Symbolic modes may start with `-` (`-w`), so only known option
    // words are skipped.
    let mode = args.iter().find(|w| !is_chmod_option(&w.text));
    if let Some(mode) = mode {
        if mode.dynamic || others_may_write(&mode.text) {
            a.destructive(format!("chmod -R {}", mode.text));
        }
    }
}

fn is_chmod_option(t: &str) -> bool {
    let known_long = ["--recursive", "--verbose", "--changes", "--silent", "--quiet"];
    let short_flags = t.strip_prefix('-').is_some_and(|f| !f.is_empty() && f.chars().all(|c| "Rvcf".contains(c)));
    known_long.contains(&t) || short_flags || t.starts_with("--reference")
}

/// Whether a `chmod` mode gives write permission to others.
fn others_may_write(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_digit(8)) {
        let others = mode.chars().last().and_then(|c| c.to_digit(8)).unwrap_or(0);
        return others & 2 != 0;
    }
    mode.split(',').any(|clause| {
        let Some(op) = clause.find(['+', '=']) else {
            return false;
        };
        let who = &clause[..op];
        let perms = &clause[op + 1..];
        // No `who` means all (less the umask, which cannot be known here).
        let reaches_others = who.is_empty() || who.contains('o') || who.contains('a');
        reaches_others && perms.contains('w')
    })
}

fn kill(a: &mut Analysis, args: &[&Word]) {
    let mut i = 0;
    // The first option is the signal (`-9`, `-KILL`, `-s KILL`), so a
    // leading `-1` is SIGHUP, not "every process".
    if let Some(first) = args.first() {
        let t = first.text.as_str();
        if t == "-l" || t == "-L" {
            return;
        }
        if t == "-s" || t == "-n" {
            i = 2;
        } else if t.starts_with('-') && t != "--" {
            i = 1;
        }
    }
    for arg in args.iter().skip(i) {
        match arg.text.as_str() {
            "--" => {}
            "1" => a.destructive("kill 1 (init)".to_owned()),
            "-1" => a.destructive("kill -1 (every process)".to_owned()),
            _ => {}
        }
    }
}
