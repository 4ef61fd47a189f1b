//! Which commands are destructive.
//!
//! The list is short on purpose, and by class: commands that destroy data
//! beyond easy recovery, take the whole system down, or lock everyone
//! out, recognised by their arguments as the program reads them (options
//! by [`super::opts`], so `rm --recur` is `rm -r`; paths normalised by
//! [`super::paths`], so `/dev//sda` is `/dev/sda`), never by text patterns:
//!
//! - recursive deletion: `rm -r`/`-R`/`--recursive` (any prefix),
//!   `rm --no-preserve-root`, `rm` whose options are computed (`rm $ARGS`
//!   may be `rm -rf /`), `rm` run in bulk by `xargs` or `find -exec`,
//!   `find -delete`, `rsync --delete…` into a system directory;
//! - overwriting disks and the kernel: `dd of=…`, any write (`>`, `tee`,
//!   `cp`) to a block device, `/dev/mem`, `/proc/sysrq-trigger`,
//!   `/proc/sys/kernel/…`; truncating writes (`>`, `tee`, `truncate`,
//!   `cp`/`mv` onto) to accounts, sudoers, fstab, `/boot`, binaries and
//!   libraries;
//! - formatting and partitioning: `mkfs*`, `mke2fs`, `mkswap`, `wipefs`,
//!   `shred`, `blkdiscard`, `fdisk`/`sfdisk`/`gdisk`/`sgdisk`/`parted`/
//!   `cfdisk` on a device (not listing), `lvremove`, `vgremove`,
//!   `pvremove`, `zpool destroy`, `zfs destroy`, `cryptsetup luksFormat`;
//! - recursive permission or owner changes on `/` or a top-level system
//!   directory (`chmod -R`, `chown -R`, `chgrp -R`), and `chmod -R` with a
//!   mode that lets others write (`777`, `o+w`);
//! - moving a system directory away (`mv /etc …`);
//! - signalling every process or init: `kill` of pid `-1` or `1`,
//!   `killall5`, `pkill`/`killall` with a pattern matching every name;
//!   a function that calls itself (`:(){ :|:& };:`, a fork bomb);
//! - removing every scheduled job or firewall rule: `crontab -r`,
//!   `iptables -F`/`-X`, `nft flush ruleset`;
//! - stopping the machine: `shutdown`, `reboot`, `halt`, `poweroff`,
//!   `systemctl reboot|poweroff|halt|kexec|emergency|rescue|isolate|suspend…`,
//!   `init 0|6`; taking the network down (`ip link set … down`, `ifdown`,
//!   `ifconfig … down`, `ip addr|route flush`);
//! - erasing drives: every `mk*fs`, `nvme format|sanitize`, `hdparm
//!   --security-erase…`, `sg_format`; emptying system files (`truncate -s 0`
//!   under `/etc`, `/usr`, `/var/lib`, …), `tar --remove-files`, `git clean`
//!   of ignored files (`-fx`, `-ffd`), `chattr -R`/`+i` on system directories;
//! - killing uncatchably or as root: `killall -9`, `pkill -u root`, `pkill
//!   -KILL -u USER`; locking accounts out: `userdel -r`, `passwd -d|-l root`,
//!   `usermod -L root`.
//!
//! GNU tools installed under a `g` prefix (`grm`, `gdd`) are their base
//! program.

use super::lex::Word;
use super::opts::{self, Arg, Spec};
use super::{paths, Analysis};

/// Programs that are destructive whatever their arguments.
const ALWAYS: [&str; 15] = [
    "sg_format",
    "sg_sanitize",
    "mke2fs",
    "mkswap",
    "wipefs",
    "shred",
    "blkdiscard",
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "mkfs",
    "killall5",
    "lvremove",
    "vgremove",
];

/// Programs [`check`] judges by their arguments.
pub(super) fn judges(program: &str) -> bool {
    const JUDGED: [&str; 33] = [
        "rm",
        "dd",
        "tee",
        "chmod",
        "chown",
        "chgrp",
        "kill",
        "pkill",
        "killall",
        "systemctl",
        "init",
        "telinit",
        "truncate",
        "mv",
        "cp",
        "install",
        "ln",
        "rsync",
        "crontab",
        "iptables",
        "ip6tables",
        "iptables-legacy",
        "iptables-nft",
        "nft",
        "fdisk",
        "sfdisk",
        "cfdisk",
        "gdisk",
        "sgdisk",
        "parted",
        "zpool",
        "zfs",
        "cryptsetup",
    ];
    ALWAYS.contains(&program)
        || makes_filesystem(program)
        || JUDGED.contains(&program)
        || program == "pvremove"
        || MORE_JUDGED.contains(&program)
}

/// More programs [`check`] judges by their arguments.
const MORE_JUDGED: [&str; 14] = [
    "nvme", "hdparm", "ip", "ifconfig", "git", "tar", "gtar", "bsdtar", "chattr", "userdel", "deluser", "passwd",
    "usermod", "ifdown",
];

/// `mkfs`, `mkfs.ext4`, `mke2fs`, `mkdosfs`, `mkntfs`, `mkexfatfs`,
/// `mkswap`: every program that writes a new file system (or swap area).
fn makes_filesystem(program: &str) -> bool {
    program.starts_with("mkfs")
        || program == "mkswap"
        || (program.starts_with("mk") && (program.ends_with("fs") || program.contains("fs.")))
}

/// Whether the path `word` names lies under a system directory whose
/// files the machine needs (`/etc`, `/usr`, `/boot`, `/var/lib`, …).
fn under_system_dir(a: &Analysis, word: &Word) -> bool {
    const DIRS: [&str; 10] =
        ["/etc", "/usr", "/boot", "/var/lib", "/bin", "/sbin", "/lib", "/lib64", "/root", "/var/spool"];
    if word.dynamic || word.glob {
        return word.glob && word.text.starts_with('/');
    }
    paths::candidates(&word.text, a.cwd()).iter().any(|p| {
        paths::is_system_root(p) || DIRS.iter().any(|d| p == d || p.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
    })
}

/// A signal option (`-9`, `-KILL`, `-SIGKILL`, `-s KILL`, `--signal=9`)
/// that cannot be caught: the processes die without cleaning up.
fn kills(args: &[&Word]) -> bool {
    let is_kill = |s: &str| {
        let s = s.trim_start_matches("SIG").trim_start_matches("sig");
        s == "9" || s.eq_ignore_ascii_case("kill")
    };
    args.iter().enumerate().any(|(i, w)| {
        let t = w.text.as_str();
        if let Some(v) = t.strip_prefix("--signal=") {
            return is_kill(v);
        }
        if t == "--signal" || t == "-s" || t == "-n" {
            return args.get(i + 1).is_some_and(|v| is_kill(&v.text));
        }
        if let Some(v) = t.strip_prefix("-s") {
            if is_kill(v) {
                return true;
            }
        }
        t.strip_prefix('-').is_some_and(|v| !v.starts_with('-') && is_kill(v))
    })
}

/// A user filter (`-u root`, `-U 0`, `--euid=root`) naming the superuser,
/// or any user filter at all when `any` is set.
fn user_filter(args: &[&Word], any: bool) -> bool {
    let is_root = |v: &str| any || v.split(',').any(|u| u == "root" || u == "0");
    args.iter().enumerate().any(|(i, w)| {
        let t = w.text.as_str();
        for long in ["--euid=", "--uid=", "--user="] {
            if let Some(v) = t.strip_prefix(long) {
                return is_root(v);
            }
        }
        if matches!(t, "-u" | "-U" | "--euid" | "--uid" | "--user") {
            return args.get(i + 1).is_some_and(|v| v.dynamic || is_root(&v.text));
        }
        match t.strip_prefix("-u").or_else(|| t.strip_prefix("-U")) {
            Some(v) if !v.is_empty() && !t.starts_with("--") => is_root(v),
            _ => false,
        }
    })
}

/// The operands (words not starting with `-`) of `args`.
fn words<'a>(args: &'a [&Word]) -> Vec<&'a str> {
    args.iter().map(|w| w.text.as_str()).filter(|t| !t.starts_with('-')).collect()
}

/// Whether short option `c` is in some `-xyz` cluster, or `--long` given.
fn flag(args: &[&Word], c: char, long: &str) -> bool {
    args.iter().any(|w| {
        let t = w.text.as_str();
        match t.strip_prefix("--") {
            Some(l) => !long.is_empty() && l.split('=').next() == Some(long),
            None => t.strip_prefix('-').is_some_and(|r| r.contains(c)),
        }
    })
}

/// Programs that change disks, users, the network or work trees in ways
/// that destroy data or lock people out (see the module header).
fn more(a: &mut Analysis, program: &str, args: &[&Word]) {
    let ws = words(args);
    match program {
        "nvme" if ws.first().is_some_and(|v| matches!(*v, "format" | "sanitize" | "write-zeroes")) => {
            a.destructive(format!("nvme {}", ws[0]));
        }
        "hdparm"
            if args.iter().any(|w| {
                w.text.starts_with("--security-erase")
                    || w.text.starts_with("--trim-sector-ranges")
                    || w.text.starts_with("--write-sector")
                    || w.text == "--make-bad-sector"
            }) =>
        {
            a.destructive("hdparm erase".to_owned());
        }
        "ip" => {
            let link = ws.first().is_some_and(|v| !v.is_empty() && "link".starts_with(v));
            if link && ws.contains(&"set") && ws.contains(&"down") {
                a.destructive("ip link set … down".to_owned());
            }
            let addr =
                ws.first().is_some_and(|v| !v.is_empty() && ("address".starts_with(v) || "route".starts_with(v)));
            if addr && ws.get(1).is_some_and(|v| !v.is_empty() && "flush".starts_with(v)) {
                a.destructive(format!("ip {} flush", ws[0]));
            }
        }
        "ifconfig" if ws.contains(&"down") => a.destructive("ifconfig … down".to_owned()),
        "ifdown" => a.destructive("ifdown".to_owned()),
        "git" => {
            let sub = ws.first().copied();
            if sub == Some("clean") {
                let forces = args.iter().filter(|w| w.text == "--force").count()
                    + args
                        .iter()
                        .filter_map(|w| w.text.strip_prefix('-').filter(|r| !r.starts_with('-')))
                        .map(|r| r.matches('f').count())
                        .sum::<usize>();
                let ignored = flag(args, 'x', "") || flag(args, 'X', "");
                if forces > 0 && (ignored || forces > 1) {
                    a.destructive("git clean -fx (deletes untracked and ignored files)".to_owned());
                }
            }
        }
        "tar" | "gtar" | "bsdtar" if args.iter().any(|w| w.text.starts_with("--remove-files")) => {
            a.destructive(format!("{program} --remove-files"));
        }
        "chattr" => {
            let recursive = args.iter().any(|w| w.text.starts_with('-') && w.text[1..].contains('R'));
            let immutable =
                args.iter().any(|w| w.text.starts_with('+') && (w.text.contains('i') || w.text.contains('a')));
            let targets: Vec<&&Word> = args
                .iter()
                .filter(|w| !w.text.starts_with('-') && !w.text.starts_with('+') && !w.text.starts_with('='))
                .collect();
            if (recursive || immutable) && targets.iter().any(|w| under_system_dir(a, w)) {
                a.destructive("chattr on a system directory".to_owned());
            }
        }
        "userdel" | "deluser"
            if flag(args, 'r', "remove")
                || flag(args, 'f', "force")
                || ws.contains(&"root")
                || args.iter().any(|w| w.text == "--remove-home" || w.text == "--remove-all-files") =>
        {
            a.destructive(format!("{program} (removes an account's files)"));
        }
        "passwd" => {
            let locks = flag(args, 'd', "delete") || flag(args, 'l', "lock") || flag(args, 'e', "expire");
            // No user named: the caller's own account (root under sudo).
            if locks && (ws.is_empty() || ws.contains(&"root")) {
                a.destructive("passwd locks or empties root's password".to_owned());
            }
        }
        "usermod" => {
            let locks = flag(args, 'L', "lock") || flag(args, 'e', "expiredate") || flag(args, 's', "shell");
            if locks && ws.last().is_some_and(|u| *u == "root") {
                a.destructive("usermod locks root".to_owned());
            }
        }
        _ => {}
    }
}

const RM: Spec = Spec::gnu(
    "fiIrRdv",
    "",
    &[
        ("force", Arg::No),
        ("interactive", Arg::Optional),
        ("one-file-system", Arg::No),
        ("no-preserve-root", Arg::No),
        ("preserve-root", Arg::Optional),
        ("recursive", Arg::No),
        ("dir", Arg::No),
        ("verbose", Arg::No),
        ("help", Arg::No),
        ("version", Arg::No),
    ],
);

const CHOWN: Spec = Spec::gnu(
    "cfvRHLPh",
    "",
    &[
        ("changes", Arg::No),
        ("silent", Arg::No),
        ("quiet", Arg::No),
        ("verbose", Arg::No),
        ("dereference", Arg::No),
        ("no-dereference", Arg::No),
        ("from", Arg::Required),
        ("no-preserve-root", Arg::No),
        ("preserve-root", Arg::No),
        ("reference", Arg::Required),
        ("recursive", Arg::No),
        ("help", Arg::No),
        ("version", Arg::No),
    ],
);

/// Checks one (unwrapped) command.
pub(super) fn check(a: &mut Analysis, program: &str, args: &[&Word], bulk: bool) {
    if ALWAYS.contains(&program) || makes_filesystem(program) || program == "pvremove" {
        a.destructive(program.to_owned());
        return;
    }
    if MORE_JUDGED.contains(&program) {
        more(a, program, args);
    }
    match program {
        "rm" => rm(a, args, bulk),
        "dd" => {
            for target in args.iter().filter_map(|w| w.text.strip_prefix("of=")) {
                let shown = if target.starts_with('/') { paths::normalise(target) } else { target.to_owned() };
                a.destructive(format!("dd of={shown}"));
            }
        }
        "tee" => {
            let p = opts::parse(
                args,
                &Spec::gnu(
                    "aip",
                    "",
                    &[
                        ("append", Arg::No),
                        ("ignore-interrupts", Arg::No),
                        ("output-error", Arg::Optional),
                        ("help", Arg::No),
                        ("version", Arg::No),
                    ],
                ),
            );
            let truncating = !p.has(Some('a'), Some("append"));
            for target in &p.operands {
                a.write_target(target, truncating);
            }
        }
        "truncate" => {
            let p = opts::parse(
                args,
                &Spec::gnu(
                    "co",
                    "rs",
                    &[
                        ("no-create", Arg::No),
                        ("io-blocks", Arg::No),
                        ("reference", Arg::Required),
                        ("size", Arg::Required),
                        ("help", Arg::No),
                        ("version", Arg::No),
                    ],
                ),
            );
            for target in &p.operands {
                a.write_target(target, true);
            }
            // `truncate -s 0 /var/lib/postgresql/…`: emptied, not removed.
            let shrinks = p.values(Some('s'), Some("size")).any(|o| {
                o.dynamic
                    || o.value.as_deref().is_some_and(|v| {
                        let v = v.trim_start_matches(['<', '%', '/']);
                        v.starts_with('-')
                            || v.trim_start_matches('0').is_empty()
                            || v.starts_with("0K")
                            || v.starts_with("0M")
                    })
            });
            if shrinks && p.operands.iter().any(|w| under_system_dir(a, w)) {
                a.destructive("truncate -s 0 in a system directory".to_owned());
            }
        }
        "cp" | "mv" | "install" | "ln" => copy(a, program, args),
        "chmod" => chmod(a, args),
        "chown" | "chgrp" => {
            let p = opts::parse(args, &CHOWN);
            if p.has(Some('R'), Some("recursive")) {
                // The first operand is the owner (unless `--reference`).
                let skip = usize::from(!p.has(None, Some("reference")));
                if p.operands.iter().skip(skip).any(|w| reaches_system_root(a, w)) {
                    a.destructive(format!("{program} -R on a system directory"));
                }
            }
        }
        "kill" => kill(a, args),
        "pkill" | "killall" => pkill(a, program, args),
        "systemctl" => {
            let verb = args.iter().find(|w| !w.text.starts_with('-'));
            if let Some(verb) = verb {
                if matches!(
                    verb.text.as_str(),
                    "reboot"
                        | "poweroff"
                        | "halt"
                        | "kexec"
                        | "emergency"
                        | "rescue"
                        | "soft-reboot"
                        | "isolate"
                        | "suspend"
                        | "hibernate"
                        | "hybrid-sleep"
                        | "suspend-then-hibernate"
                ) {
                    a.destructive(format!("systemctl {}", verb.text));
                }
            }
        }
        "init" | "telinit" => {
            if let Some(level) = args.first().filter(|w| w.text == "0" || w.text == "6") {
                a.destructive(format!("{program} {}", level.text));
            }
        }
        "crontab"
            if args.iter().any(|w| w.text.starts_with('-') && !w.text.starts_with("--") && w.text.contains('r')) =>
        {
            a.destructive("crontab -r".to_owned());
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" => {
            let flush = args.iter().any(|w| {
                let t = w.text.as_str();
                match t.strip_prefix("--") {
                    Some(long) => long.len() >= 3 && ("flush".starts_with(long) || "delete-chain".starts_with(long)),
                    None => t.starts_with('-') && (t[1..].contains('F') || t[1..].contains('X')),
                }
            });
            if flush {
                a.destructive(format!("{program} -F (flush every rule)"));
            }
            // `-P INPUT DROP`: a default policy that drops everything.
            let texts: Vec<&str> = args.iter().map(|w| w.text.as_str()).collect();
            let drops =
                texts.windows(3).any(|w| matches!(w[0], "-P" | "--policy") && matches!(w[2], "DROP" | "REJECT"));
            if drops {
                a.destructive(format!("{program} -P … DROP (default policy)"));
            }
        }
        "nft" => {
            let words: Vec<&str> = args.iter().map(|w| w.text.as_str()).filter(|t| !t.starts_with('-')).collect();
            if words.windows(2).any(|w| w == ["flush", "ruleset"]) {
                a.destructive("nft flush ruleset".to_owned());
            }
        }
        "fdisk" | "sfdisk" | "cfdisk" | "gdisk" | "sgdisk" | "parted" => partition(a, program, args),
        "curl" | "wget" => downloads(a, program, args),
        "sed" | "gsed" if sed_runs_commands(args) => a.facts.unresolved = true,
        "git" if git_runs_configured_commands(args) => a.facts.unresolved = true,
        "tar" | "gtar" | "bsdtar" => {
            // Options that run a program of the caller's choice.
            let runs = args.iter().any(|w| {
                let t = w.text.as_str();
                [
                    "--to-command",
                    "--use-compress-program",
                    "--checkpoint-action",
                    "--rsh-command",
                    "--info-script",
                    "--new-volume-script",
                ]
                .iter()
                .any(|o| t.starts_with(o))
                    || (t.starts_with('-') && !t.starts_with("--") && (t.contains('I') || t.contains('F')))
            });
            if runs {
                a.facts.unresolved = true;
            }
        }
        "rsync" => {
            // `rsync -e 'ssh -p 22'` is the usual; any other remote shell or
            // remote rsync path is a command of the caller's choice.
            let mut i = 0;
            while let Some(w) = args.get(i) {
                i += 1;
                let value = match w.text.split_once('=') {
                    Some((name, value)) if name == "--rsh" || name == "--rsync-path" => Some(value.to_owned()),
                    Some(_) => None,
                    None if w.text == "-e" || w.text == "--rsh" || w.text == "--rsync-path" => {
                        i += 1;
                        args.get(i - 1).map(|v| v.text.clone())
                    }
                    None => None,
                };
                if let Some(value) = value {
                    let first = value.split_whitespace().next().unwrap_or("");
                    if !matches!(super::basename(first), "ssh" | "rsync") {
                        a.facts.unresolved = true;
                    }
                }
            }
            rsync(a, args);
        }
        "zpool" | "zfs" if args.iter().any(|w| w.text == "destroy") => {
            a.destructive(format!("{program} destroy"));
        }
        "cryptsetup"
            if args.iter().any(|w| matches!(w.text.as_str(), "luksFormat" | "erase" | "luksErase" | "reencrypt")) =>
        {
            a.destructive("cryptsetup format/erase".to_owned());
        }
        _ => {}
    }
}

/// Whether `word` names `/`, a top-level directory, a main system
/// directory, or a glob over them (`/*`).
fn reaches_system_root(a: &Analysis, word: &Word) -> bool {
    if word.dynamic {
        return false;
    }
    if word.glob && paths::glob_reaches_system_root(&word.text) {
        return true;
    }
    paths::candidates(&word.text, a.cwd()).iter().any(|p| paths::is_system_root(p))
}

fn rm(a: &mut Analysis, args: &[&Word], bulk: bool) {
    let p = opts::parse(args, &RM);
    if p.unknown && args.iter().any(|w| w.dynamic) {
        // A word may expand to options: `rm $FLAGS /` can be `rm -rf /`.
        a.destructive("rm with computed arguments".to_owned());
    }
    if p.has(Some('r'), Some("recursive")) || p.has(Some('R'), None) {
        a.destructive("rm -r".to_owned());
    }
    if p.has(None, Some("no-preserve-root")) {
        a.destructive("rm --no-preserve-root".to_owned());
    }
    if bulk {
        a.destructive("rm over many files (xargs / find -exec)".to_owned());
    }
}

/// `cp`/`mv`/`install`/`ln` onto a device or a critical file, or `mv` of
/// a system directory.
fn copy(a: &mut Analysis, program: &str, args: &[&Word]) {
    let p = opts::parse(
        args,
        &Spec::gnu(
            "abdfHiLlnPpRrsTuvxZDCcgmo",
            "StgmoB",
            &[
                ("target-directory", Arg::Required),
                ("no-target-directory", Arg::No),
                ("suffix", Arg::Required),
                ("backup", Arg::Optional),
                ("reflink", Arg::Optional),
                ("sparse", Arg::Required),
                ("preserve", Arg::Optional),
                ("no-preserve", Arg::Required),
                ("context", Arg::Optional),
                ("mode", Arg::Required),
                ("owner", Arg::Required),
                ("group", Arg::Required),
                ("strip-program", Arg::Required),
                ("update", Arg::Optional),
                ("force", Arg::No),
                ("recursive", Arg::No),
                ("verbose", Arg::No),
                ("archive", Arg::No),
                ("interactive", Arg::No),
                ("no-clobber", Arg::No),
                ("help", Arg::No),
                ("version", Arg::No),
            ],
        )
        .loose(),
    );
    let target_dir: Vec<String> =
        p.values(Some('t'), Some("target-directory")).filter_map(|o| o.value.clone()).collect();
    let (sources, destination): (&[&Word], Option<&Word>) = if target_dir.is_empty() {
        match p.operands.split_last() {
            Some((last, rest)) if !rest.is_empty() => (rest, Some(*last)),
            Some(_) | None => (&[], None),
        }
    } else {
        (&p.operands, None)
    };
    if let Some(destination) = destination {
        a.write_target(destination, true);
    }
    if program == "mv" && sources.iter().any(|w| reaches_system_root(a, w)) {
        a.destructive("mv of a system directory".to_owned());
    }
}

fn rsync(a: &mut Analysis, args: &[&Word]) {
    let deletes = args.iter().any(|w| w.text.starts_with("--del") || w.text == "--remove-source-files");
    let destination = args.iter().rev().find(|w| !w.text.starts_with('-'));
    if let Some(destination) = destination {
        if deletes && !destination.text.contains(':') && reaches_system_root(a, destination) {
            a.destructive("rsync --delete into a system directory".to_owned());
        }
    }
}

fn chmod(a: &mut Analysis, args: &[&Word]) {
    // Symbolic modes may start with `-` (`-w`): a word is an option only
    // if every letter is one of chmod's.
    let mut recursive = false;
    let mut operands: Vec<&Word> = Vec::new();
    let mut reference = false;
    let mut options_done = false;
    for w in args {
        let t = w.text.as_str();
        if options_done {
            operands.push(w);
            continue;
        }
        if t == "--" {
            options_done = true;
        } else if let Some(long) = t.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            recursive |= name.len() >= 3 && "recursive".starts_with(name);
            reference |= name.len() >= 3 && "reference".starts_with(name);
        } else if t.len() > 1 && t.starts_with('-') && t[1..].chars().all(|c| "Rvcf".contains(c)) {
            recursive |= t.contains('R');
        } else {
            operands.push(w);
        }
    }
    if !recursive {
        return;
    }
    let (mode, targets) = if reference {
        (None, &operands[..])
    } else {
        match operands.split_first() {
            Some((mode, targets)) => (Some(*mode), targets),
            None => return,
        }
    };
    if let Some(mode) = mode {
        if mode.dynamic || others_may_write(&mode.text) {
            a.destructive(format!("chmod -R {}", mode.text));
        }
    }
    if targets.iter().any(|w| reaches_system_root(a, w)) {
        a.destructive("chmod -R on a system directory".to_owned());
    }
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

/// A pid as `kill` reads it (`-1`, `-01`, `+1`, `1`).
fn pid(text: &str) -> Option<i64> {
    text.parse::<i64>().ok()
}

fn kill(a: &mut Analysis, args: &[&Word]) {
    let mut i = 0;
    let mut signal_given = false;
    // The first option is the signal (`-9`, `-KILL`, `-s KILL`), so a
    // leading `-1` is SIGHUP, not "every process".
    while let Some(arg) = args.get(i) {
        let t = arg.text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if t == "-l" || t == "-L" || t.starts_with("--list") || t.starts_with("--table") {
            return;
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        if signal_given && pid(t).is_some() {
            break;
        }
        i += 1;
        if t == "-s" || t == "-n" || t == "-q" || t == "--signal" || t == "--queue" {
            i += 1;
        }
        signal_given = true;
    }
    for arg in args.iter().skip(i) {
        if arg.dynamic {
            continue;
        }
        match pid(&arg.text) {
            Some(1) => a.destructive("kill 1 (init)".to_owned()),
            Some(-1) => a.destructive("kill -1 (every process)".to_owned()),
            _ => {}
        }
    }
}

/// `pkill`/`killall` with a pattern that every process name matches.
fn pkill(a: &mut Analysis, program: &str, args: &[&Word]) {
    // `killall -9 x`, `pkill -KILL -u root`: uncatchable, or every process
    // of the superuser.
    if (program == "killall" && kills(args)) || user_filter(args, false) || (kills(args) && user_filter(args, true)) {
        a.destructive(format!("{program} -KILL / of root's processes"));
    }
    let regex = program == "pkill" || args.iter().any(|w| w.text == "-r" || w.text == "--regexp");
    let patterns = args.iter().filter(|w| !w.text.starts_with('-') && !w.dynamic);
    for pattern in patterns {
        let t = pattern.text.as_str();
        let everything = if regex {
            t.is_empty() || t.chars().all(|c| ".^$*+?()|[]{}".contains(c))
        } else {
            matches!(t, "init" | "systemd")
        };
        if everything || matches!(t, "init" | "systemd" | "^init$" | "^systemd$") {
            a.destructive(format!("{program} {t} (every process)"));
        }
    }
}

/// Partitioning tools: destructive on a device unless only listing.
fn partition(a: &mut Analysis, program: &str, args: &[&Word]) {
    let lists = args.iter().any(|w| {
        matches!(
            w.text.as_str(),
            "-l" | "--list" | "-p" | "--print" | "print" | "-v" | "--verify" | "--version" | "-h" | "--help" | "-V"
        ) || (program == "sfdisk"
            && matches!(w.text.as_str(), "-d" | "--dump" | "-J" | "--json" | "-s" | "--show-size"))
            || (program == "parted" && w.text.starts_with("-l"))
    });
    if !lists {
        a.destructive(format!("{program} (partitioning)"));
    }
}

/// Files `curl`/`wget` save, so running one later on the line is known to
/// run downloaded code.
fn downloads(a: &mut Analysis, program: &str, args: &[&Word]) {
    let (short, long, remote_name) =
        if program == "curl" { ('o', "output", true) } else { ('O', "output-document", false) };
    let mut remote = !remote_name;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if let Some(option) = t.strip_prefix("--") {
            let (name, inline) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (option, None),
            };
            if name == long {
                match inline {
                    Some(value) => a.downloaded(value),
                    None => {
                        if let Some(value) = args.get(i) {
                            a.downloaded(&value.text);
                            i += 1;
                        }
                    }
                }
            }
            remote |= remote_name && name.starts_with("remote-name");
            continue;
        }
        if let Some(cluster) = t.strip_prefix('-').filter(|c| !c.is_empty()) {
            if let Some(pos) = cluster.find(short) {
                let attached = &cluster[pos + 1..];
                if attached.is_empty() {
                    if let Some(value) = args.get(i) {
                        a.downloaded(&value.text);
                        i += 1;
                    }
                } else {
                    a.downloaded(attached);
                }
                continue;
            }
            remote |= remote_name && cluster.contains('O');
            continue;
        }
        if remote && t.contains("://") {
            let path = t.split(['?', '#']).next().unwrap_or(t);
            a.downloaded(path);
        }
    }
}

/// GNU `sed` runs commands with `e` (`1e rm -rf /`) and the `s///e` flag;
/// a script in a file (`-f`) cannot be seen.
fn sed_runs_commands(args: &[&Word]) -> bool {
    let mut scripts: Vec<&str> = Vec::new();
    let mut explicit = false;
    let mut first_operand = None;
    let mut i = 0;
    while let Some(w) = args.get(i) {
        i += 1;
        let t = w.text.as_str();
        if w.dynamic {
            return true;
        }
        if t == "-f" || t.starts_with("--file") || (t.starts_with('-') && !t.starts_with("--") && t.contains('f')) {
            return true;
        }
        if t == "-e" || t == "--expression" {
            explicit = true;
            if let Some(v) = args.get(i) {
                scripts.push(v.text.as_str());
                i += 1;
            }
        } else if let Some(v) = t.strip_prefix("--expression=") {
            explicit = true;
            scripts.push(v);
        } else if let Some(v) = t.strip_prefix("-e").filter(|v| !v.is_empty()) {
            explicit = true;
            scripts.push(v);
        } else if !t.starts_with('-') && first_operand.is_none() {
            first_operand = Some(t);
        }
    }
    if !explicit {
        scripts.extend(first_operand);
    }
    scripts.iter().any(|script| {
        script.split([';', '\n']).any(|command| {
            let command = command.trim_start().trim_start_matches(|c: char| c.is_ascii_digit() || ",$!~ ".contains(c));
            let mut chars = command.chars();
            match chars.next() {
                Some('e') => chars.next().is_none_or(char::is_whitespace),
                Some('s') => chars.next().is_some_and(|delimiter| {
                    let parts: Vec<&str> = command[1 + delimiter.len_utf8()..].split(delimiter).collect();
                    parts.len() >= 3 && parts[2].contains('e')
                }),
                Some(_) | None => false,
            }
        })
    })
}

/// `git -c KEY=VALUE` can name programs git runs: aliases starting with
/// `!`, pagers, editors, ssh commands, hooks, filters, helpers.
fn git_runs_configured_commands(args: &[&Word]) -> bool {
    const RUNS: [&str; 14] = [
        "pager",
        "sshcommand",
        "editor",
        "hookspath",
        "external",
        "textconv",
        "helper",
        "fsmonitor",
        "clean",
        "smudge",
        "process",
        "askpass",
        "command",
        "program",
    ];
    let mut i = 0;
    while let Some(w) = args.get(i) {
        i += 1;
        let config = match w.text.as_str() {
            "-c" | "--config-env" => {
                i += 1;
                args.get(i - 1).map(|v| (v.text.as_str(), v.dynamic))
            }
            t if t.starts_with("--exec-path=") => return true,
            t if !t.starts_with('-') => break,
            _ => None,
        };
        if let Some((config, dynamic)) = config {
            let (key, value) = config.split_once('=').unwrap_or((config, ""));
            let key = key.to_ascii_lowercase();
            if dynamic || value.starts_with('!') || RUNS.iter().any(|r| key.ends_with(r)) {
                return true;
            }
        }
    }
    false
}
