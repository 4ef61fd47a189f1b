//! Programs that run other programs: `sudo rm` runs `rm`, `sh -c 'a; b'`
//! runs `a` and `b`, `find -exec rm {} +` runs `rm`, `taskset -c 0 rm`
//! runs `rm`. Each is unwrapped with its own option grammar ([`Spec`]:
//! so `sudo -u root rm` runs `rm`, not `root`, and `sudo --us root rm`
//! is `--user`), and the wrapped command is analysed like any other. A
//! wrapper given an option it does not have, or a computed option word,
//! cannot be unwrapped with certainty: the command is `unresolved`
//! (and the words after the options are still analysed as the command).

use super::lex::Word;
use super::opts::{self, Arg, Name, Parsed, Spec};
use super::{Analysis, SqlText};
use crate::kubectl::{KubectlArg, KubectlCall};

/// The shells: `-c STRING` runs STRING; otherwise they run a script file
/// or read commands from stdin.
pub(super) const SHELLS: [&str; 12] =
    ["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "posh", "rbash", "fish", "tcsh"];

/// What a wrapper runs when it is given no command.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Empty {
    /// Nothing (or it fails).
    Nothing,
    /// An interactive shell, reading its commands from stdin.
    Shell,
}

/// A wrapper of the plain form `NAME [OPTIONS] [SKIP OPERANDS] COMMAND…`.
struct Plain {
    spec: Spec,
    /// Operands before the command (`timeout DURATION`, `chroot ROOT`).
    skip: usize,
    /// Options after which it runs nothing new (`ionice -p PID`).
    inert: &'static [Name],
    empty: Empty,
    /// It runs the command as another user.
    as_user: bool,
}

const fn plain(spec: Spec) -> Plain {
    Plain { spec, skip: 0, inert: &[], empty: Empty::Nothing, as_user: false }
}

const SUDO_LONG: &[(&str, Arg)] = &[
    ("askpass", Arg::No),
    ("background", Arg::No),
    ("bell", Arg::No),
    ("close-from", Arg::Required),
    ("chdir", Arg::Required),
    ("preserve-env", Arg::Optional),
    ("edit", Arg::No),
    ("group", Arg::Required),
    ("set-home", Arg::No),
    ("help", Arg::No),
    ("host", Arg::Required),
    ("login", Arg::No),
    ("remove-timestamp", Arg::No),
    ("reset-timestamp", Arg::No),
    ("list", Arg::No),
    ("non-interactive", Arg::No),
    ("preserve-groups", Arg::No),
    ("prompt", Arg::Required),
    ("chroot", Arg::Required),
    ("role", Arg::Required),
    ("stdin", Arg::No),
    ("shell", Arg::No),
    ("type", Arg::Required),
    ("command-timeout", Arg::Required),
    ("other-user", Arg::Required),
    ("user", Arg::Required),
    ("version", Arg::No),
    ("validate", Arg::No),
];

const SU_LONG: &[(&str, Arg)] = &[
    ("command", Arg::Required),
    ("session-command", Arg::Required),
    ("fast", Arg::No),
    ("group", Arg::Required),
    ("supp-group", Arg::Required),
    ("login", Arg::No),
    ("preserve-environment", Arg::No),
    ("pty", Arg::No),
    ("shell", Arg::Required),
    ("whitelist-environment", Arg::Required),
    ("user", Arg::Required),
    ("help", Arg::No),
    ("version", Arg::No),
];

const ENV_LONG: &[(&str, Arg)] = &[
    ("ignore-environment", Arg::No),
    ("null", Arg::No),
    ("unset", Arg::Required),
    ("chdir", Arg::Required),
    ("split-string", Arg::Required),
    ("block-signal", Arg::Optional),
    ("default-signal", Arg::Optional),
    ("ignore-signal", Arg::Optional),
    ("list-signal-handling", Arg::No),
    ("debug", Arg::No),
    ("argv0", Arg::Required),
    ("help", Arg::No),
    ("version", Arg::No),
];

const XARGS_LONG: &[(&str, Arg)] = &[
    ("null", Arg::No),
    ("arg-file", Arg::Required),
    ("delimiter", Arg::Required),
    ("eof", Arg::Optional),
    ("replace", Arg::Optional),
    ("max-lines", Arg::Optional),
    ("max-args", Arg::Required),
    ("max-procs", Arg::Required),
    ("max-chars", Arg::Required),
    ("interactive", Arg::No),
    ("no-run-if-empty", Arg::No),
    ("open-tty", Arg::No),
    ("verbose", Arg::No),
    ("exit", Arg::No),
    ("process-slot-var", Arg::Required),
    ("show-limits", Arg::No),
    ("help", Arg::No),
    ("version", Arg::No),
];

const SYSTEMD_RUN_LONG: &[(&str, Arg)] = &[
    ("unit", Arg::Required),
    ("property", Arg::Required),
    ("description", Arg::Required),
    ("slice", Arg::Required),
    ("slice-inherit", Arg::No),
    ("uid", Arg::Required),
    ("gid", Arg::Required),
    ("nice", Arg::Required),
    ("working-directory", Arg::Required),
    ("same-dir", Arg::No),
    ("setenv", Arg::Required),
    ("on-active", Arg::Required),
    ("on-boot", Arg::Required),
    ("on-startup", Arg::Required),
    ("on-unit-active", Arg::Required),
    ("on-unit-inactive", Arg::Required),
    ("on-calendar", Arg::Required),
    ("on-timezone-change", Arg::No),
    ("on-clock-change", Arg::No),
    ("timer-property", Arg::Required),
    ("path-property", Arg::Required),
    ("socket-property", Arg::Required),
    ("service-type", Arg::Required),
    ("machine", Arg::Required),
    ("host", Arg::Required),
    ("capsule", Arg::Required),
    ("expand-environment", Arg::Required),
    ("user", Arg::No),
    ("system", Arg::No),
    ("scope", Arg::No),
    ("remain-after-exit", Arg::No),
    ("send-sighup", Arg::No),
    ("pty", Arg::No),
    ("pipe", Arg::No),
    ("quiet", Arg::No),
    ("wait", Arg::No),
    ("collect", Arg::No),
    ("no-block", Arg::No),
    ("no-ask-password", Arg::No),
    ("verbose", Arg::No),
    ("shell", Arg::No),
    ("json", Arg::Required),
    ("help", Arg::No),
    ("version", Arg::No),
];

const UNSHARE_LONG: &[(&str, Arg)] = &[
    ("mount", Arg::Optional),
    ("uts", Arg::Optional),
    ("ipc", Arg::Optional),
    ("net", Arg::Optional),
    ("pid", Arg::Optional),
    ("user", Arg::Optional),
    ("cgroup", Arg::Optional),
    ("time", Arg::Optional),
    ("fork", Arg::No),
    ("kill-child", Arg::Optional),
    ("mount-proc", Arg::Optional),
    ("mount-binfmt", Arg::Optional),
    ("map-root-user", Arg::No),
    ("map-current-user", Arg::No),
    ("map-auto", Arg::No),
    ("map-user", Arg::Required),
    ("map-group", Arg::Required),
    ("map-users", Arg::Required),
    ("map-groups", Arg::Required),
    ("owner", Arg::Required),
    ("propagation", Arg::Required),
    ("setgroups", Arg::Required),
    ("keep-caps", Arg::No),
    ("setuid", Arg::Required),
    ("setgid", Arg::Required),
    ("root", Arg::Required),
    ("wd", Arg::Required),
    ("load-interp", Arg::Required),
    ("monotonic", Arg::Required),
    ("boottime", Arg::Required),
    ("help", Arg::No),
    ("version", Arg::No),
];

const NSENTER_LONG: &[(&str, Arg)] = &[
    ("all", Arg::No),
    ("target", Arg::Required),
    ("mount", Arg::Optional),
    ("uts", Arg::Optional),
    ("ipc", Arg::Optional),
    ("net", Arg::Optional),
    ("pid", Arg::Optional),
    ("user", Arg::Optional),
    ("cgroup", Arg::Optional),
    ("time", Arg::Optional),
    ("setuid", Arg::Required),
    ("setgid", Arg::Required),
    ("preserve-credentials", Arg::No),
    ("keep-caps", Arg::No),
    ("root", Arg::Optional),
    ("wd", Arg::Optional),
    ("wdns", Arg::Required),
    ("env", Arg::No),
    ("no-fork", Arg::No),
    ("follow-context", Arg::No),
    ("join-cgroup", Arg::No),
    ("help", Arg::No),
    ("version", Arg::No),
];

/// The plain wrappers and their grammars.
fn plain_wrapper(program: &str) -> Option<Plain> {
    let w = match program {
        "nohup" | "catchsegv" | "builtin" => plain(Spec::wrapper("", "", &[("help", Arg::No), ("version", Arg::No)])),
        "setsid" => plain(Spec::wrapper(
            "cfwhV",
            "",
            &[("ctty", Arg::No), ("fork", Arg::No), ("wait", Arg::No), ("help", Arg::No), ("version", Arg::No)],
        )),
        "unbuffer" => plain(Spec::wrapper("p", "", &[])),
        "exec" => Plain { inert: &[], ..plain(Spec::wrapper("cl", "a", &[])) },
        "command" => Plain { inert: &[Name::Short('v'), Name::Short('V')], ..plain(Spec::wrapper("pvV", "", &[])) },
        "nice" => plain(Spec::wrapper(
            "0123456789",
            "n",
            &[("adjustment", Arg::Required), ("help", Arg::No), ("version", Arg::No)],
        )),
        "ionice" => Plain {
            inert: &[
                Name::Short('p'),
                Name::Short('P'),
                Name::Short('u'),
                Name::Long("pid"),
                Name::Long("pgid"),
                Name::Long("uid"),
            ],
            ..plain(Spec::wrapper(
                "tpPuhV",
                "cn",
                &[
                    ("class", Arg::Required),
                    ("classdata", Arg::Required),
                    ("pid", Arg::No),
                    ("pgid", Arg::No),
                    ("uid", Arg::No),
                    ("ignore", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "time" => plain(Spec::wrapper(
            "apqvV",
            "fo",
            &[
                ("append", Arg::No),
                ("format", Arg::Required),
                ("output", Arg::Required),
                ("portability", Arg::No),
                ("quiet", Arg::No),
                ("verbose", Arg::No),
                ("help", Arg::No),
                ("version", Arg::No),
            ],
        )),
        "stdbuf" => plain(Spec::wrapper(
            "",
            "ioe",
            &[
                ("input", Arg::Required),
                ("output", Arg::Required),
                ("error", Arg::Required),
                ("help", Arg::No),
                ("version", Arg::No),
            ],
        )),
        "timeout" => Plain {
            skip: 1,
            ..plain(Spec::wrapper(
                "fpv",
                "sk",
                &[
                    ("signal", Arg::Required),
                    ("kill-after", Arg::Required),
                    ("preserve-status", Arg::No),
                    ("foreground", Arg::No),
                    ("verbose", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "chroot" => Plain {
            skip: 1,
            empty: Empty::Shell,
            ..plain(Spec::wrapper(
                "",
                "",
                &[
                    ("userspec", Arg::Required),
                    ("groups", Arg::Required),
                    ("skip-chdir", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "taskset" => Plain {
            skip: 1,
            inert: &[Name::Short('p'), Name::Long("pid")],
            ..plain(Spec::wrapper(
                "acphV",
                "",
                &[
                    ("all-tasks", Arg::No),
                    ("pid", Arg::No),
                    ("cpu-list", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "chrt" => Plain {
            skip: 1,
            inert: &[Name::Short('p'), Name::Short('m'), Name::Long("pid"), Name::Long("max")],
            ..plain(Spec::wrapper(
                "abdfiomrRepvhV",
                "TPD",
                &[
                    ("all-tasks", Arg::No),
                    ("batch", Arg::No),
                    ("deadline", Arg::No),
                    ("fifo", Arg::No),
                    ("idle", Arg::No),
                    ("other", Arg::No),
                    ("rr", Arg::No),
                    ("ext", Arg::No),
                    ("reset-on-fork", Arg::No),
                    ("sched-runtime", Arg::Required),
                    ("sched-period", Arg::Required),
                    ("sched-deadline", Arg::Required),
                    ("max", Arg::No),
                    ("pid", Arg::No),
                    ("verbose", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "numactl" => Plain {
            inert: &[Name::Short('s'), Name::Short('H'), Name::Long("show"), Name::Long("hardware")],
            ..plain(Spec::wrapper(
                "alsHhVdSt",
                "iNmCpPw",
                &[
                    ("interleave", Arg::Required),
                    ("preferred", Arg::Required),
                    ("preferred-many", Arg::Required),
                    ("weighted-interleave", Arg::Required),
                    ("membind", Arg::Required),
                    ("cpunodebind", Arg::Required),
                    ("physcpubind", Arg::Required),
                    ("localalloc", Arg::No),
                    ("show", Arg::No),
                    ("hardware", Arg::No),
                    ("all", Arg::No),
                    ("balancing", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "cpulimit" => Plain {
            inert: &[
                Name::Short('p'),
                Name::Short('e'),
                Name::Short('P'),
                Name::Long("pid"),
                Name::Long("exe"),
                Name::Long("path"),
            ],
            ..plain(Spec::wrapper(
                "zikrvqbfmh",
                "lpePcs",
                &[
                    ("limit", Arg::Required),
                    ("pid", Arg::Required),
                    ("exe", Arg::Required),
                    ("path", Arg::Required),
                    ("cpu", Arg::Required),
                    ("signal", Arg::Required),
                    ("lazy", Arg::No),
                    ("include-children", Arg::No),
                    ("kill", Arg::No),
                    ("restore", Arg::No),
                    ("verbose", Arg::No),
                    ("quiet", Arg::No),
                    ("background", Arg::No),
                    ("foreground", Arg::No),
                    ("monitor-forks", Arg::No),
                    ("help", Arg::No),
                ],
            ))
        },
        "caffeinate" => plain(Spec::wrapper("dimsu", "tw", &[])),
        "valgrind" => plain(Spec::wrapper("qvhd", "", &[]).loose()),
        "firejail" => Plain { empty: Empty::Shell, ..plain(Spec::wrapper("h", "", &[]).loose()) },
        "setpriv" => plain(Spec::wrapper("dhV", "", &[]).loose()),
        "prlimit" => Plain {
            inert: &[Name::Short('p'), Name::Long("pid")],
            ..plain(Spec::wrapper("hVv", "p", &[]).loose().with_optional("bcdefilmnqrstuxyo"))
        },
        "systemd-run" => Plain {
            inert: &[Name::Short('S'), Name::Long("shell")],
            ..plain(Spec::wrapper("rtPqGdhS", "upEMHC", SYSTEMD_RUN_LONG))
        },
        "unshare" => Plain { empty: Empty::Shell, ..plain(Spec::wrapper("muinpUCTfrchV", "SGRwl", UNSHARE_LONG)) },
        "nsenter" => Plain {
            empty: Empty::Shell,
            ..plain(Spec::wrapper("aFZehV", "tSG", NSENTER_LONG).with_optional("muinpCUTrwW"))
        },
        "proot" => Plain {
            empty: Empty::Shell,
            ..plain(Spec::wrapper(
                "0SRhV",
                "rbmwvqk",
                &[
                    ("rootfs", Arg::Required),
                    ("bind", Arg::Required),
                    ("mount", Arg::Required),
                    ("cwd", Arg::Required),
                    ("pwd", Arg::Required),
                    ("verbose", Arg::Required),
                    ("qemu", Arg::Required),
                    ("kernel-release", Arg::Required),
                    ("kill-on-exit", Arg::No),
                    ("root-id", Arg::No),
                    ("link2symlink", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "faketime" => Plain {
            skip: 1,
            ..plain(Spec::wrapper(
                "mf",
                "p",
                &[("exclude-monotonic", Arg::No), ("help", Arg::No), ("version", Arg::No)],
            ))
        },
        "strace" | "ltrace" => {
            Plain { inert: &[], ..plain(Spec::wrapper("cCdDfFhiknqrtTvVwxyYzZbSL", "abeEIOopPsuXUAn", &[]).loose()) }
        }
        "busybox" | "toybox" => plain(Spec::wrapper(
            "",
            "",
            &[("list", Arg::No), ("list-full", Arg::No), ("install", Arg::No), ("help", Arg::No)],
        )),
        "doas" => Plain { empty: Empty::Shell, as_user: true, ..plain(Spec::wrapper("nLs", "uaC", &[])) },
        "pkexec" => Plain {
            empty: Empty::Shell,
            as_user: true,
            ..plain(Spec::wrapper(
                "",
                "",
                &[
                    ("user", Arg::Required),
                    ("disable-internal-agent", Arg::No),
                    ("keep-cwd", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            ))
        },
        "runcon" => plain(Spec::wrapper(
            "ch",
            "urtl",
            &[
                ("compute", Arg::No),
                ("user", Arg::Required),
                ("role", Arg::Required),
                ("type", Arg::Required),
                ("range", Arg::Required),
                ("help", Arg::No),
                ("version", Arg::No),
            ],
        )),
        _ => return None,
    };
    Some(w)
}

/// Handles `program` if it runs another program; returns whether it did
/// (then it needs no risk check of its own).
pub(super) fn unwrap(a: &mut Analysis, program: &str, args: &[&Word], depth: usize) -> bool {
    let next = depth + 1;
    match program {
        p if SHELLS.contains(&p) => shell(a, args, next),
        "sudo" => sudo(a, args, next),
        "sudoedit" => a.facts.uses_sudo = true,
        "su" | "runuser" => su(a, program, args, next),
        "env" => env(a, args, next),
        "xargs" => {
            let p = opts::parse(args, &Spec::wrapper("0prtxo", "adEILnPs", XARGS_LONG).with_optional("eil"));
            unresolved_if(a, &p);
            a.argv(p.rest, true, next);
        }
        "find" => find(a, args, next),
        "watch" => {
            let spec = Spec::wrapper(
                "bcCegprtwxhv",
                "nqs",
                &[
                    ("interval", Arg::Required),
                    ("differences", Arg::Optional),
                    ("beep", Arg::No),
                    ("color", Arg::No),
                    ("no-color", Arg::No),
                    ("errexit", Arg::No),
                    ("chgexit", Arg::No),
                    ("equexit", Arg::Required),
                    ("precise", Arg::No),
                    ("no-rerun", Arg::No),
                    ("shotsdir", Arg::Required),
                    ("no-title", Arg::No),
                    ("no-wrap", Arg::No),
                    ("no-linewrap", Arg::No),
                    ("exec", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            )
            .with_optional("d");
            let p = opts::parse(args, &spec);
            unresolved_if(a, &p);
            if p.has(Some('x'), Some("exec")) {
                a.argv(p.rest, false, next);
            } else {
                a.shell(&join(p.rest), next);
            }
        }
        "flock" => {
            let spec = Spec::wrapper(
                "sexnuoFhV",
                "wE",
                &[
                    ("shared", Arg::No),
                    ("exclusive", Arg::No),
                    ("unlock", Arg::No),
                    ("nonblock", Arg::No),
                    ("nb", Arg::No),
                    ("timeout", Arg::Required),
                    ("wait", Arg::Required),
                    ("conflict-exit-code", Arg::Required),
                    ("close", Arg::No),
                    ("fcntl", Arg::No),
                    ("no-fork", Arg::No),
                    ("verbose", Arg::No),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            );
            let p = opts::parse(args, &spec);
            unresolved_if(a, &p);
            let rest = tail(p.rest, 1);
            match rest.first().map(|w| w.text.as_str()) {
                Some("-c" | "--command") => match rest.get(1) {
                    Some(command) => shell_text(a, command, next),
                    None => a.facts.parse_error = true,
                },
                Some(_) | None => a.argv(rest, false, next),
            }
        }
        "script" => {
            let spec = Spec::wrapper(
                "aefqhV",
                "cTBIOmEo",
                &[
                    ("append", Arg::No),
                    ("command", Arg::Required),
                    ("return", Arg::No),
                    ("flush", Arg::No),
                    ("force", Arg::No),
                    ("quiet", Arg::No),
                    ("timing", Arg::Optional),
                    ("log-in", Arg::Required),
                    ("log-out", Arg::Required),
                    ("log-io", Arg::Required),
                    ("log-timing", Arg::Required),
                    ("logging-format", Arg::Required),
                    ("echo", Arg::Required),
                    ("output-limit", Arg::Required),
                    ("help", Arg::No),
                    ("version", Arg::No),
                ],
            )
            .with_optional("t");
            let mut spec = spec;
            spec.permute = true;
            let p = opts::parse(args, &spec);
            unresolved_if(a, &p);
            let commands: Vec<&opts::Opt> = p.values(Some('c'), Some("command")).collect();
            if commands.is_empty() {
                // An interactive shell.
                a.facts.unresolved = true;
            }
            for c in commands {
                option_text(a, c, next);
            }
        }
        "entr" => {
            let p = opts::parse(args, &Spec::wrapper("acdnprsz", "", &[]));
            unresolved_if(a, &p);
            if p.has(Some('s'), None) {
                match p.rest.first() {
                    Some(command) => shell_text(a, command, next),
                    None => a.facts.parse_error = true,
                }
            } else {
                a.argv(p.rest, false, next);
            }
        }
        "sg" => {
            // `sg GROUP [-c] COMMAND`: the command is run by `sh -c`.
            let rest = tail(args, 1);
            let rest = if rest.first().is_some_and(|w| w.text == "-c") { tail(rest, 1) } else { rest };
            if rest.is_empty() {
                a.facts.unresolved = true;
            } else {
                a.shell(&join(rest), next);
            }
        }
        "parallel" => {
            let p = opts::parse(args, &Spec::wrapper("0kquvtXrmxeph", "jSdIEaNLnPs", &[]).loose());
            unresolved_if(a, &p);
            let template: Vec<&Word> =
                p.rest.iter().copied().take_while(|w| !w.text.starts_with(":::") && w.text != "::::").collect();
            if template.is_empty() {
                // The commands come from the input.
                a.facts.unresolved = true;
            } else {
                // GNU parallel runs the template through a shell, once per input.
                a.bulk_shell(&join(&template), next);
            }
        }
        "ip" => {
            // `ip netns exec NAME COMMAND…` (options like `-n NS` first).
            let at = args.iter().position(|w| !w.text.starts_with('-'));
            let ops = at.map_or(&[][..], |i| &args[i..]);
            if ops.len() >= 2 && "netns".starts_with(ops[0].text.as_str()) && ops[1].text == "exec" {
                a.argv(tail(ops, 3), false, next);
            } else if ops.first().is_some_and(|w| w.dynamic) {
                a.facts.unresolved = true;
            } else {
                return false;
            }
        }
        "docker" | "podman" | "nerdctl" => return container(a, args, next),
        "ssh" => {
            let p = opts::parse(args, &Spec::wrapper("46AaCfGgKkMNnqsTtVvXxYy", "BbcDEeFIiJLlmOoPpQRSWw", &[]));
            unresolved_if(a, &p);
            let remote = tail(p.rest, 1);
            if remote.is_empty() {
                // An interactive session: commands come from stdin.
                a.facts.unresolved = true;
            } else {
                // The remote shell parses the arguments joined by spaces.
                a.shell(&join(remote), next);
            }
        }
        "at" | "batch" => at(a, args, next),
        "export" | "declare" | "typeset" | "readonly" | "local" => {
            // `export LD_PRELOAD=/tmp/x.so`: the variable changes what the
            // next programs run.
            // `export $NAME=…` may name any of them.
            let computed_name = |w: &Word| w.dynamic && w.text.split_once('=').is_none_or(|(n, _)| n.contains('$'));
            if args.iter().any(|w| computed_name(w) || loads_code(&w.text)) {
                a.facts.unresolved = true;
            }
        }
        "eval" => a.shell(&join(args), next),
        "alias" => {
            // `alias ls='rm -rf /'`: the value may run later in this shell,
            // and `alias x=rm; x -rf /` runs it under another name: what a
            // later word runs cannot be told, so any definition is
            // unresolved.
            for value in args.iter().filter_map(|w| w.text.split_once('=').map(|(_, v)| v)) {
                a.facts.unresolved = true;
                a.shell(value, next);
            }
            if args.iter().any(|w| w.dynamic) {
                a.facts.unresolved = true;
            }
        }
        "trap" => {
            if let Some(action) = args.first().filter(|w| !w.text.starts_with('-')) {
                shell_text(a, action, next);
            }
        }
        // A script file whose commands cannot be seen.
        "source" | "." => a.facts.unresolved = true,
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => awk(a, args),
        "kubectl" | "oc" => kubectl(a, args, next),
        "psql" => {
            let p = opts::parse(args, &PSQL);
            unresolved_if(a, &p);
            let texts = sql_values(&p, 'c', "command");
            let file = p.has(Some('f'), Some("file"));
            database(a, texts, "postgres", file);
        }
        "mysql" | "mariadb" => {
            let p = opts::parse(args, &MYSQL);
            unresolved_if(a, &p);
            let mut texts = sql_values(&p, 'e', "execute");
            texts.extend(sql_values(&p, '\0', "init-command"));
            let file = p.opts.iter().any(|o| {
                matches!(
                    o.name,
                    Name::Long("defaults-file" | "defaults-extra-file" | "login-path" | "init-command-add")
                )
            });
            // The server's `NO_BACKSLASH_ESCAPES` mode decides where its
            // strings end, and the command line does not say it.
            database_claimed(a, texts, "mysql", file);
        }
        "sqlite3" => sqlite3(a, args),
        other => match plain_wrapper(other) {
            Some(w) => run_plain(a, args, &w, next),
            None => return false,
        },
    }
    true
}

fn unresolved_if(a: &mut Analysis, parsed: &Parsed<'_, '_>) {
    if parsed.unknown {
        a.facts.unresolved = true;
    }
}

fn run_plain(a: &mut Analysis, args: &[&Word], w: &Plain, depth: usize) {
    if w.as_user {
        a.facts.uses_sudo = true;
    }
    let p = opts::parse(args, &w.spec);
    unresolved_if(a, &p);
    if p.opts.iter().any(|o| w.inert.contains(&o.name)) {
        return;
    }
    if p.rest.len() < w.skip {
        // `timeout 5` alone: an error, nothing runs.
        return;
    }
    let rest = tail(p.rest, w.skip);
    if rest.is_empty() {
        match w.empty {
            Empty::Nothing => {}
            Empty::Shell => a.stdin_shell(depth),
        }
        return;
    }
    let rest = skip_assignments(a, rest);
    a.argv(rest, false, depth);
}

/// `sudo [options] [NAME=VALUE…] [COMMAND…]`.
fn sudo(a: &mut Analysis, args: &[&Word], depth: usize) {
    a.facts.uses_sudo = true;
    let p = opts::parse(args, &Spec::wrapper("AbEeHhiKklnPSsVv", "CDghpRrTtUu", SUDO_LONG));
    unresolved_if(a, &p);
    // `sudo -e` edits files: its operands are not a command.
    if p.has(Some('e'), Some("edit")) {
        return;
    }
    let rest = skip_assignments(a, p.rest);
    if rest.is_empty() {
        if p.has(Some('s'), Some("shell")) || p.has(Some('i'), Some("login")) {
            // A root shell reading stdin.
            a.stdin_shell(depth);
        }
        return;
    }
    if p.has(Some('l'), Some("list")) {
        // `sudo -l COMMAND` says whether COMMAND may run; it runs nothing.
        return;
    }
    a.argv(rest, false, depth);
}

/// `su [options] [-] [USER [ARG…]]` and `runuser`, including `-c
/// COMMAND` and `runuser -u USER COMMAND…`.
fn su(a: &mut Analysis, program: &str, args: &[&Word], depth: usize) {
    a.facts.uses_sudo = true;
    let p = opts::parse(args, &Spec::gnu("flmpPhV", "cCgGswu", SU_LONG));
    unresolved_if(a, &p);
    if let Some(shell) = p.values(Some('s'), Some("shell")).next() {
        let known = shell.value.as_deref().is_some_and(|s| SHELLS.contains(&super::basename(s)));
        if !known {
            a.facts.unresolved = true;
        }
    }
    let commands: Vec<&opts::Opt> =
        p.values(Some('c'), Some("command")).chain(p.values(Some('C'), Some("session-command"))).collect();
    let operands: Vec<&Word> = p.operands.iter().copied().filter(|w| w.text != "-").collect();
    if !commands.is_empty() {
        for c in commands {
            option_text(a, c, depth);
        }
        return;
    }
    if program == "runuser" && p.has(Some('u'), Some("user")) {
        if operands.is_empty() {
            a.stdin_shell(depth);
        } else {
            a.argv(&operands, false, depth);
        }
        return;
    }
    if operands.len() > 1 {
        // Arguments after the user go to the shell: a script or options.
        a.facts.unresolved = true;
    } else {
        // A login shell reading stdin.
        a.stdin_shell(depth);
    }
}

/// `sh [options] [-c STRING | SCRIPT | (stdin)]`.
fn shell(a: &mut Analysis, args: &[&Word], depth: usize) {
    let mut i = 0;
    let mut command_flag = false;
    let mut stdin_flag = false;
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
            if ["rcfile", "init-file"].iter().any(|o| long.len() >= 2 && o.starts_with(long)) {
                // The file's commands run first.
                a.facts.unresolved = true;
                i += 1;
            }
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            i += 1;
            let cluster = &t[1..];
            command_flag |= cluster.contains('c');
            stdin_flag |= cluster.contains('s');
            if cluster.contains('o') || cluster.contains('O') {
                i += 1;
            }
            continue;
        }
        break;
    }
    match (command_flag, args.get(i)) {
        (true, Some(command)) => shell_text(a, command, depth),
        // `sh -c` without a string is an error in every shell.
        (true, None) => a.facts.parse_error = true,
        (false, None) => a.stdin_shell(depth),
        (false, Some(_)) if stdin_flag => a.stdin_shell(depth),
        // A script file.
        (false, Some(_)) => a.facts.unresolved = true,
    }
}

/// A word that a shell will parse as a command line.
fn shell_text(a: &mut Analysis, word: &Word, depth: usize) {
    if word.dynamic {
        a.facts.unresolved = true;
    } else {
        a.shell(&word.text, depth);
    }
}

/// An option's value that a shell will parse as a command line.
fn option_text(a: &mut Analysis, opt: &opts::Opt, depth: usize) {
    match &opt.value {
        Some(text) if !opt.dynamic => a.shell(text, depth),
        Some(_) => a.facts.unresolved = true,
        None => a.facts.parse_error = true,
    }
}

/// `env [options] [NAME=VALUE…] [COMMAND [ARG…]]`, including `-S STRING`
/// (the string is split into words like a command line).
fn env(a: &mut Analysis, args: &[&Word], depth: usize) {
    let p = opts::parse(args, &Spec::wrapper("i0v", "uCSaP", ENV_LONG));
    unresolved_if(a, &p);
    let mut rest = p.rest;
    while rest.first().is_some_and(|w| w.text == "-" && !w.dynamic) {
        rest = &rest[1..];
    }
    // `env` reads any NAME=VALUE as an assignment, quoted or not.
    while rest.first().is_some_and(|w| !w.dynamic && w.text.contains('=') && !w.text.starts_with('=')) {
        if loads_code(&rest[0].text) {
            a.facts.unresolved = true;
        }
        rest = &rest[1..];
    }
    let split: Vec<&opts::Opt> = p.values(Some('S'), Some("split-string")).collect();
    match split.last() {
        Some(opt) => {
            if opt.dynamic {
                a.facts.unresolved = true;
            }
            let mut line = opt.value.clone().unwrap_or_default();
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
        if arg.dynamic {
            // `find / $ACTION`: could be `-delete` or `-exec …`.
            a.facts.unresolved = true;
            continue;
        }
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
            "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
                if let Some(target) = args.get(i) {
                    a.write_target(target, true);
                }
            }
            _ => {}
        }
    }
}

/// awk programs can run commands (`system(…)`, `print | "cmd"`,
/// `"cmd" | getline`); those commands are computed text.
fn awk(a: &mut Analysis, args: &[&Word]) {
    let p = opts::parse(
        args,
        &Spec::wrapper(
            "bcCdDghiLMnNOpPrsStVY",
            "fvFEeilo",
            &[
                ("file", Arg::Required),
                ("assign", Arg::Required),
                ("field-separator", Arg::Required),
                ("source", Arg::Required),
                ("exec", Arg::Required),
                ("include", Arg::Required),
                ("load", Arg::Required),
            ],
        )
        .loose(),
    );
    unresolved_if(a, &p);
    if p.has(Some('f'), Some("file"))
        || p.has(Some('E'), Some("exec"))
        || p.has(Some('i'), Some("include"))
        || p.has(Some('l'), Some("load"))
    {
        // The program is in a file.
        a.facts.unresolved = true;
        return;
    }
    let sources = p.values(Some('e'), Some("source")).filter_map(|o| o.value.as_deref()).any(awk_runs_commands);
    if sources {
        a.facts.unresolved = true;
    }
    if let Some(program) = p.rest.first() {
        if program.dynamic || awk_runs_commands(&program.text) {
            a.facts.unresolved = true;
        }
    }
}

fn awk_runs_commands(program: &str) -> bool {
    program.contains("system") || program.contains('|') || program.contains("getline")
}

/// Notes the `kubectl` call; a command after `--` (`kubectl exec pod --
/// rm -rf /data`) runs in the cluster and is analysed too.
fn kubectl(a: &mut Analysis, args: &[&Word], depth: usize) {
    a.kubectl.push(KubectlCall {
        args: args.iter().map(|w| KubectlArg { text: w.text.clone(), dynamic: w.dynamic }).collect(),
    });
    let dashes = args.iter().position(|w| w.text == "--" && !w.dynamic);
    if let Some(dashes) = dashes {
        a.argv(&args[dashes + 1..], false, depth);
    }
    let call =
        KubectlCall { args: args.iter().map(|w| KubectlArg { text: w.text.clone(), dynamic: w.dynamic }).collect() };
    match crate::kubectl::subcommand(&call) {
        // No verb: the kubectl facts say it.
        None => {}
        Some((verb, operands)) => {
            let runs = match verb.as_str() {
                // `kubectl exec POD CMD…` (the old form without `--`).
                "exec" => dashes.is_none() && operands > 1,
                v => !crate::kubectl::is_builtin_verb(v) && !OC_VERBS.contains(&v),
            };
            if runs {
                // A plugin (`kubectl-NAME` on the PATH, krew's) or a
                // subcommand not known here: what it runs cannot be seen.
                a.facts.unresolved = true;
            }
        }
    }
}

/// `oc`'s subcommands that run nothing given on their command line.
const OC_VERBS: [&str; 15] = [
    "login",
    "logout",
    "project",
    "projects",
    "new-project",
    "new-app",
    "new-build",
    "start-build",
    "cancel-build",
    "status",
    "whoami",
    "process",
    "tag",
    "import-image",
    "idle",
];

/// [`database`] for a client whose server's settings decide how the
/// text is read (`mysql`): judged as a claimed dialect.
fn database_claimed(a: &mut Analysis, texts: Vec<(String, bool)>, dialect: &'static str, file: bool) {
    let from = a.sql.len();
    database(a, texts, dialect, file);
    for text in a.sql.iter_mut().skip(from) {
        text.claimed = true;
    }
}

/// A database client's SQL: given on its command line, or else read from
/// stdin (the payload's `stdin` when it is the program's input) or a file.
fn database(a: &mut Analysis, texts: Vec<(String, bool)>, dialect: &'static str, file: bool) {
    if file {
        // `psql -f x.sql`: a script whose statements cannot be seen.
        a.facts.unresolved = true;
    }
    if texts.is_empty() && !file {
        match a.take_stdin() {
            Some(super::Stdin::Text(text)) => a.sql.push(SqlText { text, dialect, dynamic: false, claimed: false }),
            Some(super::Stdin::Unseen) => {
                a.facts.unresolved = true;
                a.sql.push(SqlText { text: String::new(), dialect, dynamic: true, claimed: false });
            }
            None => {
                if a.stdin_is_data() {
                    // Statements from a pipe or a redirection.
                    a.facts.unresolved = true;
                }
            }
        }
    }
    for (text, dynamic) in texts {
        a.sql.push(SqlText { text, dialect, dynamic, claimed: false });
    }
}

/// `psql`'s options, as its `getopt_long` reads them: `-Xc SQL` is `-X`
/// then `-c SQL`.
const PSQL: Spec = Spec::gnu(
    "aAbeEHlnqsStVwWxXz01?",
    "cdfFhLopPRTUv",
    &[
        ("echo-all", Arg::No),
        ("no-align", Arg::No),
        ("command", Arg::Required),
        ("dbname", Arg::Required),
        ("echo-queries", Arg::No),
        ("echo-errors", Arg::No),
        ("echo-hidden", Arg::No),
        ("file", Arg::Required),
        ("field-separator", Arg::Required),
        ("host", Arg::Required),
        ("html", Arg::No),
        ("list", Arg::No),
        ("log-file", Arg::Required),
        ("no-readline", Arg::No),
        ("output", Arg::Required),
        ("port", Arg::Required),
        ("pset", Arg::Required),
        ("quiet", Arg::No),
        ("record-separator", Arg::Required),
        ("single-step", Arg::No),
        ("single-line", Arg::No),
        ("tuples-only", Arg::No),
        ("table-attr", Arg::Required),
        ("username", Arg::Required),
        ("set", Arg::Required),
        ("variable", Arg::Required),
        ("version", Arg::No),
        ("no-password", Arg::No),
        ("password", Arg::No),
        ("expanded", Arg::No),
        ("no-psqlrc", Arg::No),
        ("field-separator-zero", Arg::No),
        ("record-separator-zero", Arg::No),
        ("single-transaction", Arg::No),
        ("help", Arg::Optional),
        ("csv", Arg::No),
    ],
);

/// `mysql`/`mariadb` options: the short ones as listed, long ones that
/// matter by name, any other `--name[=value]` taken as a flag.
const MYSQL: Spec = Spec {
    flags: "?ABCEGHKLMNXVWabcfijmnoqrstvwxyzT",
    values: "DehuPSOF",
    optional: "p#",
    long: &[
        ("execute", Arg::Required),
        ("database", Arg::Required),
        ("host", Arg::Required),
        ("user", Arg::Required),
        ("port", Arg::Required),
        ("socket", Arg::Required),
        ("password", Arg::Optional),
        ("init-command", Arg::Required),
        ("init-command-add", Arg::Required),
        ("defaults-file", Arg::Required),
        ("defaults-extra-file", Arg::Required),
        ("defaults-group-suffix", Arg::Required),
        ("login-path", Arg::Required),
        ("default-character-set", Arg::Required),
        ("pager", Arg::Optional),
        ("tee", Arg::Required),
        ("prompt", Arg::Required),
        ("protocol", Arg::Required),
    ],
    permute: true,
    loose_long: true,
};

/// The SQL values of option `-short`/`--long`, with whether each is computed.
fn sql_values(p: &Parsed<'_, '_>, short: char, long: &str) -> Vec<(String, bool)> {
    p.values(Some(short), Some(long))
        .map(|o| match &o.value {
            Some(v) => (v.clone(), o.dynamic),
            // A missing value: nothing the parser can read.
            None => (String::new(), true),
        })
        .collect()
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
    let mut texts = Vec::new();
    let mut file = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if t.starts_with('-') && t.len() > 1 && !arg.dynamic {
            let name = if t.starts_with("--") { &t[1..] } else { t };
            if WITH_VALUE.contains(&name) {
                if let Some(value) = args.get(i) {
                    if name == "-cmd" {
                        texts.push((value.text.clone(), value.dynamic));
                    }
                    // `-init FILE` runs the file's statements.
                    file |= name == "-init";
                    i += 1;
                }
            }
            continue;
        }
        operands += 1;
        // The first operand is the database file; the rest are SQL.
        if operands > 1 {
            texts.push((arg.text.clone(), arg.dynamic));
        }
    }
    let given_sql = operands > 1;
    if given_sql {
        for (text, dynamic) in texts {
            a.sql.push(SqlText { text, dialect: "sqlite", dynamic, claimed: false });
        }
    } else {
        // `-cmd` runs before the statements read from stdin.
        let mut texts = texts;
        let before = std::mem::take(&mut texts);
        for (text, dynamic) in before {
            a.sql.push(SqlText { text, dialect: "sqlite", dynamic, claimed: false });
        }
        database(a, Vec::new(), "sqlite", file);
    }
}

/// The arguments joined by spaces, as a remote shell or `eval` sees them;
/// a computed word becomes a parameter, so it stays computed.
fn join(words: &[&Word]) -> String {
    let parts: Vec<&str> = words.iter().map(|w| if w.dynamic { "$_" } else { w.text.as_str() }).collect();
    parts.join(" ")
}

/// `at [options] [TIME]` and `batch`: a shell script read from stdin
/// (or `-f FILE`) runs later; `-l`, `-r`/`-d`, `-c` only list, remove or
/// print jobs.
fn at(a: &mut Analysis, args: &[&Word], depth: usize) {
    let p = opts::parse(args, &Spec::gnu("VlrdcbmMv", "fqt", &[]));
    unresolved_if(a, &p);
    if p.has(Some('l'), None) || p.has(Some('r'), None) || p.has(Some('d'), None) || p.has(Some('c'), None) {
        return;
    }
    if p.has(Some('f'), None) {
        a.facts.unresolved = true;
        return;
    }
    a.stdin_shell(depth);
}

/// Environment variables that make a program load or run other code
/// (`BASH_ENV=/tmp/x bash -c true`, `LD_PRELOAD=`, `PAGER=`), given as
/// `NAME=VALUE`.
pub(super) fn loads_code(assignment: &str) -> bool {
    const NAMES: [&str; 48] = [
        "BASH_ENV",
        "ENV",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "LD_DEBUG_OUTPUT",
        "PYTHONSTARTUP",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "PERL5DB",
        "RUBYOPT",
        "RUBYLIB",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PROMPT_COMMAND",
        "PS0",
        "PS1",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "IFS",
        "PATH",
        "GIT_SSH_COMMAND",
        "GIT_SSH",
        "GIT_EXEC_PATH",
        "GIT_PAGER",
        "GIT_EDITOR",
        "GIT_ASKPASS",
        "GIT_EXTERNAL_DIFF",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_PARAMETERS",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "PAGER",
        "MANPAGER",
        "EDITOR",
        "VISUAL",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "GCONV_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "DYLD_INSERT_LIBRARIES",
    ];
    let name = assignment.split_once('=').map_or(assignment, |(name, _)| name);
    let name = name.strip_suffix('+').unwrap_or(name);
    NAMES.contains(&name)
        || name.starts_with("BASH_FUNC_")
        || name.starts_with("GIT_CONFIG_KEY_")
        || name.starts_with("GIT_CONFIG_VALUE_")
        || name.starts_with("LD_")
        || name.starts_with("DYLD_")
}

/// `NAME=VALUE` operands before the command (`sudo FOO=1 rm`).
fn skip_assignments<'a, 'w>(a: &mut Analysis, mut words: &'a [&'w Word]) -> &'a [&'w Word] {
    while let Some((first, rest)) = words.split_first() {
        let is_assignment = !first.dynamic
            && first.text.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !is_assignment {
            break;
        }
        if loads_code(&first.text) {
            a.facts.unresolved = true;
        }
        words = rest;
    }
    words
}

fn tail<'a, 'w>(args: &'a [&'w Word], start: usize) -> &'a [&'w Word] {
    args.get(start..).unwrap_or(&[])
}

/// Whether `program` is one the wrappers know.
pub(super) fn is_wrapper(program: &str) -> bool {
    const SPECIAL: [&str; 36] = [
        "sudo", "sudoedit", "su", "runuser", "env", "xargs", "find", "watch", "flock", "script", "entr", "sg",
        "parallel", "ssh", "eval", "alias", "trap", "source", ".", "awk", "gawk", "mawk", "nawk", "kubectl", "oc",
        "psql", "mysql", "mariadb", "sqlite3", "doas", "pkexec", "exec", "command", "time", "at", "batch",
    ];
    SHELLS.contains(&program) || SPECIAL.contains(&program) || plain_wrapper(program).is_some()
}

/// `docker exec [OPTIONS] CONTAINER COMMAND…` and `docker run [OPTIONS]
/// IMAGE [COMMAND…]` (also `podman`, `nerdctl`, `docker container …`): the
/// command runs in the container and is analysed like any other. Other
/// subcommands are left to the risk check. Long options take a value
/// unless they are among the known booleans (as in the Docker CLI).
fn container(a: &mut Analysis, args: &[&Word], depth: usize) -> bool {
    const GLOBAL_VALUES: &str = "Hlc";
    const BOOLS: [&str; 22] = [
        "rm",
        "privileged",
        "init",
        "interactive",
        "tty",
        "detach",
        "read-only",
        "sig-proxy",
        "no-healthcheck",
        "oom-kill-disable",
        "publish-all",
        "quiet",
        "help",
        "debug",
        "tls",
        "tlsverify",
        "disable-content-trust",
        "no-stdin",
        "replace",
        "pull-always",
        "userns-remap",
        "privileged-mode",
    ];
    const SHORT_BOOLS: &str = "ditPqD";
    let mut i = 0;
    let mut sub: Vec<&str> = Vec::new();
    let mut operands: Vec<&Word> = Vec::new();
    let mut unknown = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if arg.dynamic && operands.is_empty() {
            unknown = true;
        }
        let in_command = matches!(sub.last(), Some(&"exec" | &"run"));
        if in_command && !operands.is_empty() {
            // Everything after the container or image is the command.
            operands.push(arg);
            continue;
        }
        if t == "--" {
            continue;
        }
        if let Some(long) = t.strip_prefix("--") {
            if !long.contains('=') && !BOOLS.contains(&long) {
                i += 1;
            }
            continue;
        }
        if let Some(cluster) = t.strip_prefix('-').filter(|c| !c.is_empty()) {
            let values = if sub.is_empty() { GLOBAL_VALUES } else { "" };
            for (pos, c) in cluster.char_indices() {
                if values.contains(c) || !SHORT_BOOLS.contains(c) {
                    if pos + c.len_utf8() == cluster.len() {
                        i += 1;
                    }
                    break;
                }
            }
            continue;
        }
        if in_command {
            operands.push(arg);
        } else if sub.is_empty() || sub == ["container"] {
            sub.push(t);
        } else {
            break;
        }
    }
    if !matches!(sub.last(), Some(&"exec" | &"run")) {
        return false;
    }
    if unknown {
        a.facts.unresolved = true;
    }
    let command = operands.get(1..).unwrap_or(&[]);
    a.argv(command, false, depth);
    true
}
