//! What the analysis knows about a program, and the rule for the ones it
//! does not know.
//!
//! Every program that runs falls in one of these classes:
//!
//! - **wrappers** run another program given in their arguments (`sudo`,
//!   `env`, `nice`, `timeout`, `taskset`, `xargs`, `sh -c`, …): they are
//!   unwrapped with their own option grammar ([`super::wrappers`]); one
//!   that cannot be unwrapped (an option it does not have, a computed
//!   word) makes the command `unresolved`;
//! - **interpreters** run code (`python`, `perl`, `node`, `ruby`, `php`,
//!   `gdb`, …): code inline (`-c`, `-e`), in a script file or on stdin is
//!   not read, so any use other than `--version`/`--help` is `unresolved`;
//! - **destructive** programs are judged by their arguments
//!   ([`super::risk`]);
//! - **known leaves** ([`KNOWN`]) run nothing they are given on their
//!   command line (`ls`, `cat`, `echo`, `grep`, `git`, `systemctl`, …);
//! - **unknown** programs may be anything. An unknown program is taken to
//!   run its arguments — `unresolved` — when an argument looks like a
//!   command: its first word (also after `--opt=`) names a known program
//!   (`foo rm -rf /`, `foo --exec='rm -rf /'`, `foo /bin/sh`) or a script
//!   (`foo deploy.sh`). Otherwise (`mytool restart web`) it stays
//!   resolved: the program is named in `programs` for policies to judge.
//!
//! A program run by a path outside the system's program directories
//! (`./deploy.sh`, `/tmp/x`, `scripts/run`) is a script or a downloaded
//! file whose contents cannot be seen: `unresolved`. So is a program
//! whose file an earlier command on the line downloaded (`curl -o x …;
//! x`).

use super::basename;
use super::paths;

/// Programs that run nothing given on their command line. (Some run code
/// from project files, like `make` or `npm test`; that code is the
/// project's, not the request's.)
pub(super) const KNOWN: &[&str] = &[
    // Files and text.
    "ls",
    "cat",
    "tac",
    "echo",
    "printf",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "ag",
    "head",
    "tail",
    "less",
    "more",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "sed",
    "jq",
    "yq",
    "column",
    "paste",
    "join",
    "comm",
    "diff",
    "cmp",
    "patch",
    "nl",
    "fold",
    "fmt",
    "expand",
    "unexpand",
    "od",
    "hexdump",
    "xxd",
    "strings",
    "base64",
    "base32",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "cksum",
    "b2sum",
    "file",
    "stat",
    "touch",
    "mkdir",
    "rmdir",
    "cp",
    "mv",
    "ln",
    "install",
    "realpath",
    "readlink",
    "basename",
    "dirname",
    "pwd",
    "cd",
    "pushd",
    "popd",
    "tree",
    "du",
    "df",
    "tee",
    "split",
    "csplit",
    "tar",
    "gzip",
    "gunzip",
    "zcat",
    "bzip2",
    "bunzip2",
    "xz",
    "unxz",
    "zstd",
    "unzip",
    "zip",
    "7z",
    "rsync",
    "scp",
    "sftp",
    "iconv",
    "envsubst",
    "mktemp",
    "sync",
    "true",
    "false",
    ":",
    "test",
    "[",
    "[[",
    "seq",
    "yes",
    "sleep",
    "date",
    "cal",
    "bc",
    "expr",
    "numfmt",
    "shuf",
    "look",
    "truncate",
    "dd",
    "rm",
    "chmod",
    "chown",
    "chgrp",
    "chattr",
    "lsattr",
    "setfacl",
    "getfacl",
    "umask",
    // System and processes.
    "ps",
    "top",
    "htop",
    "pgrep",
    "pidof",
    "kill",
    "pkill",
    "killall",
    "killall5",
    "uptime",
    "free",
    "vmstat",
    "iostat",
    "mpstat",
    "sar",
    "lsof",
    "whoami",
    "who",
    "w",
    "id",
    "groups",
    "hostname",
    "hostnamectl",
    "uname",
    "lsb_release",
    "arch",
    "nproc",
    "lscpu",
    "lsblk",
    "blkid",
    "lsusb",
    "lspci",
    "lsmod",
    "dmesg",
    "journalctl",
    "systemctl",
    "service",
    "loginctl",
    "timedatectl",
    "localectl",
    "mount",
    "umount",
    "findmnt",
    "swapon",
    "swapoff",
    "sysctl",
    "ulimit",
    "which",
    "whereis",
    "type",
    "hash",
    "getent",
    "locale",
    "tput",
    "clear",
    "reset",
    "stty",
    "tty",
    "history",
    "jobs",
    "fg",
    "bg",
    "wait",
    "disown",
    "export",
    "unset",
    "set",
    "shopt",
    "declare",
    "typeset",
    "local",
    "readonly",
    "read",
    "shift",
    "getopts",
    "return",
    "exit",
    "break",
    "continue",
    "logger",
    "crontab",
    "at",
    "useradd",
    "userdel",
    "usermod",
    "groupadd",
    "groupdel",
    "passwd",
    "chpasswd",
    "visudo",
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "init",
    "telinit",
    "modprobe",
    "insmod",
    "rmmod",
    // Network.
    "curl",
    "wget",
    "ping",
    "ping6",
    "traceroute",
    "tracepath",
    "mtr",
    "dig",
    "nslookup",
    "host",
    "whois",
    "ss",
    "netstat",
    "ip",
    "ifconfig",
    "route",
    "arp",
    "iptables",
    "ip6tables",
    "nft",
    "ufw",
    "firewall-cmd",
    "nc",
    "ncat",
    "netcat",
    "telnet",
    "openssl",
    "ssh-keygen",
    "ssh-keyscan",
    "ssh-add",
    "nmap",
    "tcpdump",
    "ethtool",
    // Disks.
    "fdisk",
    "sfdisk",
    "cfdisk",
    "gdisk",
    "sgdisk",
    "parted",
    "partprobe",
    "mkfs",
    "mke2fs",
    "mkswap",
    "wipefs",
    "shred",
    "blkdiscard",
    "fsck",
    "e2fsck",
    "resize2fs",
    "tune2fs",
    "lvremove",
    "vgremove",
    "pvremove",
    "lvs",
    "vgs",
    "pvs",
    "lvcreate",
    "lvextend",
    "mdadm",
    "cryptsetup",
    "zpool",
    "zfs",
    "hdparm",
    "smartctl",
    // Development and operations tools.
    "git",
    "svn",
    "hg",
    "make",
    "cmake",
    "ninja",
    "gcc",
    "g++",
    "cc",
    "clang",
    "ld",
    "cargo",
    "rustc",
    "rustup",
    "go",
    "javac",
    "mvn",
    "gradle",
    "npm",
    "yarn",
    "pnpm",
    "pip",
    "pip3",
    "pipx",
    "poetry",
    "uv",
    "gem",
    "bundle",
    "composer",
    "apt",
    "apt-get",
    "apt-cache",
    "dpkg",
    "yum",
    "dnf",
    "rpm",
    "apk",
    "pacman",
    "zypper",
    "brew",
    "snap",
    "flatpak",
    "docker",
    "podman",
    "buildah",
    "skopeo",
    "crictl",
    "ctr",
    "nerdctl",
    "helm",
    "kustomize",
    "terraform",
    "tofu",
    "terragrunt",
    "packer",
    "vault",
    "consul",
    "nomad",
    "ansible",
    "ansible-playbook",
    "aws",
    "gcloud",
    "gsutil",
    "az",
    "doctl",
    "gh",
    "glab",
    "psql",
    "pg_dump",
    "pg_restore",
    "pg_dumpall",
    "createdb",
    "dropdb",
    "mysql",
    "mariadb",
    "mysqldump",
    "sqlite3",
    "redis-cli",
    "mongosh",
    "mongo",
    "mongodump",
    "etcdctl",
    "kubectl",
    "oc",
    "kubeadm",
    "k9s",
    "minikube",
    "kind",
    "istioctl",
    "argocd",
    "flux",
    "stern",
    "jps",
    "jstack",
    "nginx",
    "apachectl",
    "certbot",
    "htpasswd",
    "vim",
    "vi",
    "nano",
    "emacs",
    "code",
    "man",
    "info",
    "help",
    "ssh",
];

/// Program names that are also everyday words of other tools' command
/// lines (`mytool test`, `app init`, `cli set x`): an unknown program
/// given one of them is not taken to run it.
pub(super) const WORDS: &[&str] = &[
    "test", "at", "w", "id", "help", "info", "host", "date", "file", "type", "set", "read", "local", "export",
    "install", "init", "make", "go", "time", "top", "sync", "service", "split", "join", "look", "reset", "clear",
    "wait", "R", "ex", "cc", ":", "[", "true", "false", "yes", "history", "jobs", "fg", "bg", "hash", "man", "free",
    "who", "groups", "arch", "locale", "more", "less", "head", "tail", "sort", "cut", "paste", "patch", "diff",
    "expand", "fold", "fmt", "comm", "column", "link", "tree", "status", "log", "show", "list", "stat", "touch",
    "apply", "plan", "build", "run", "start", "stop", "restart", "reload", "get", "describe", "version", "exit",
    "return", "break", "continue", "shift", "umask", "ulimit", "unset", "declare", "alias", "sleep", "seq",
];

/// Programs that run code that is not on the command line in a form the
/// analysis reads.
pub(super) const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "perl",
    "perl5",
    "ruby",
    "irb",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "lua",
    "luajit",
    "tclsh",
    "wish",
    "expect",
    "Rscript",
    "R",
    "julia",
    "osascript",
    "pwsh",
    "powershell",
    "groovy",
    "jshell",
    "java",
    "scala",
    "kotlin",
    "ghci",
    "runghc",
    "guile",
    "racket",
    "sbcl",
    "clisp",
    "elixir",
    "erl",
    "escript",
    "dotnet",
    "gdb",
    "lldb",
    "npx",
    "bunx",
    "pnpx",
    "uvx",
    "pipx",
    "go-run",
    "ts-node",
    "tsx",
    "busybox-sh",
    "vimscript",
    "ex",
    // Database clients that run queries or commands from their arguments
    // or stdin in a language (or dialect) not read here.
    "clickhouse-client",
    "clickhouse",
    "cockroach",
    "sqlcmd",
    "osql",
    "isql",
    "iusql",
    "duckdb",
    "pgcli",
    "mycli",
    "litecli",
    "usql",
    "snowsql",
    "bq",
    "sqlplus",
    "sqlcl",
    "sql",
    "beeline",
    "hive",
    "spark-sql",
    "trino",
    "presto",
    "cqlsh",
    "influx",
    "impala-shell",
    "vsql",
    "db2",
    "sqlline",
    "mongosh",
    "mongo",
    "redis-cli",
    "valkey-cli",
];

/// The program a GNU tool installed under a `g` prefix is (`grm` → `rm`,
/// `gtimeout` → `timeout`); any other name as it is.
pub(super) fn gnu_base(program: &str) -> &str {
    const PREFIXED: [&str; 36] = [
        "rm", "dd", "shred", "chmod", "chown", "chgrp", "cp", "mv", "ln", "install", "truncate", "tee", "kill", "env",
        "xargs", "find", "timeout", "nice", "nohup", "stdbuf", "chroot", "sed", "tar", "awk", "split", "rmdir",
        "unlink", "mktemp", "touch", "cat", "date", "ls", "stat", "head", "tail", "runcon",
    ];
    match program.strip_prefix('g') {
        Some(base) if PREFIXED.contains(&base) => base,
        Some(_) | None => program,
    }
}

/// Options of an interpreter that only report and run no code.
pub(super) fn interpreter_reports_only(args: &[&str]) -> bool {
    !args.is_empty() && args.iter().all(|a| matches!(*a, "--version" | "-V" | "-v" | "--help" | "-h" | "-version"))
}

/// The directories system programs live in: a program run by a path in
/// one of them is that program; anywhere else it is a file of unknown
/// contents.
pub(super) fn in_program_dir(path: &str) -> bool {
    let normalised = paths::normalise(path);
    let dir = match normalised.rfind('/') {
        Some(0) => "/",
        Some(slash) => &normalised[..slash],
        None => return false,
    };
    const DIRS: [&str; 12] = [
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/opt/homebrew/bin",
        "/snap/bin",
        "/usr/libexec",
        "/usr/lib/postgresql",
        "/run/current-system/sw/bin",
        "/nix/var/nix/profiles/default/bin",
    ];
    path.starts_with('/') && DIRS.contains(&dir)
}

/// Whether a word names a script file by its extension.
pub(super) fn looks_like_script(word: &str) -> bool {
    const EXTENSIONS: [&str; 12] =
        [".sh", ".bash", ".zsh", ".ksh", ".py", ".pl", ".rb", ".js", ".mjs", ".php", ".ps1", ".lua"];
    let name = basename(word);
    EXTENSIONS.iter().any(|e| name.len() > e.len() && name.ends_with(e))
}

/// Whether an argument of an unknown program looks like a command it
/// might run: its first word (after an `--option=` prefix) names a known
/// program, wrapper, shell or interpreter, or a script.
pub(super) fn looks_like_command(arg: &str, is_known: impl Fn(&str) -> bool) -> bool {
    let text = match arg.strip_prefix('-') {
        Some(option) => match option.split_once('=') {
            Some((_, value)) => value,
            None => return false,
        },
        None => arg,
    };
    let Some(first) = text.split_whitespace().next() else {
        return false;
    };
    if looks_like_script(first) {
        return true;
    }
    let name = basename(first);
    (!first.contains('/') || first.starts_with('/')) && !name.is_empty() && is_known(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_dirs() {
        assert!(
            in_program_dir("/usr/bin/rm") && in_program_dir("/bin//rm") && in_program_dir("/usr/local/bin/kubectl")
        );
        assert!(!in_program_dir("./deploy.sh") && !in_program_dir("/tmp/x") && !in_program_dir("scripts/run"));
        assert!(!in_program_dir("/usr/bin/../../tmp/x"));
    }

    #[test]
    fn commands_in_arguments() {
        let known = |p: &str| KNOWN.contains(&p);
        assert!(looks_like_command("rm", known));
        assert!(looks_like_command("rm -rf /", known));
        assert!(looks_like_command("--exec=rm -rf /", known));
        assert!(looks_like_command("/bin/rm", known));
        assert!(looks_like_command("deploy.sh", known));
        assert!(!looks_like_command("restart", known));
        assert!(!looks_like_command("web", known));
        assert!(!looks_like_command("--force", known));
    }
}
