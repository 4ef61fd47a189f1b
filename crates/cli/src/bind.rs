//! What `countersign exec` binds into the action besides the argv, so
//! that what runs after an approval is exactly what the approver saw:
//!
//! - **the program**: `argv[0]` is resolved through `PATH` before the
//!   request is submitted (as `which` does), the absolute path goes into
//!   the payload as `program`, and exactly that file is started after the
//!   approval — no second `PATH` lookup;
//! - **standard input**: not passed at all unless `--stdin` is given (the
//!   command reads `/dev/null`); with `--stdin` it is read whole first
//!   (at most [`MAX_STDIN_BYTES`]), its SHA-256 goes into the payload as
//!   `stdin_sha256` and its text as `stdin`, and exactly those bytes are
//!   fed to the command. Input that is not text (not UTF-8, or control
//!   characters other than tab, newline and carriage return) is not
//!   copied: the payload carries `stdin_binary: true`, its size and a short
//!   escaped excerpt, and no `stdin`, so the gateway cannot read it and
//!   fails closed;
//! - **the environment that changes what runs**: variables that make a
//!   shell, the dynamic linker or an interpreter run other code
//!   (`BASH_ENV`, `LD_PRELOAD`, `PYTHONPATH`, `GIT_*`, `PAGER`, …, see
//!   [`stripped`]) are removed from the command's environment; `--env NAME`
//!   passes one through, and then its value is in the payload's `env`.
//!   `PATH` is always passed and always in `env`, since it decides which
//!   programs a script runs.
//!
//! Not bound: the contents of files (the program file itself, scripts and
//! files named on the command line, rc files such as `~/.psqlrc` found
//! through `HOME`), and the variables not listed in [`stripped`] (they are
//! passed unchanged). The working directory is bound (`cwd`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The most standard input `--stdin` reads; the same as the most text the
/// gateway analyses, so that everything sent can also be judged.
pub const MAX_STDIN_BYTES: usize = 256 * 1024;
/// How much of a binary standard input is shown, escaped.
const EXCERPT_BYTES: usize = 512;
/// `PATH` when none is set, as `execvp` assumes.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Why the command could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("no command given")]
    Empty,
    #[error("cannot find `{0}` in PATH")]
    NotFound(String),
    #[error("`{0}` is not an executable file")]
    NotExecutable(String),
    #[error("cannot read standard input: {0}")]
    Stdin(std::io::Error),
    #[error("standard input is larger than {limit} bytes; pass it in a file the command names instead")]
    StdinTooLarge { limit: usize },
    #[error("`--env {0}`: no such variable is set")]
    EnvUnset(String),
    #[error("`--env {0}`: the value is not valid UTF-8")]
    EnvNotUtf8(String),
    #[error("`--env {0}`: not a variable name")]
    EnvName(String),
}

/// The standard input to feed the command, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stdin {
    pub bytes: Vec<u8>,
}

/// Reads all of `input`, up to [`MAX_STDIN_BYTES`].
pub fn read_stdin(input: impl Read) -> Result<Stdin, BindError> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_STDIN_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    input.take(limit).read_to_end(&mut bytes).map_err(BindError::Stdin)?;
    if bytes.len() > MAX_STDIN_BYTES {
        return Err(BindError::StdinTooLarge { limit: MAX_STDIN_BYTES });
    }
    Ok(Stdin { bytes })
}

impl Stdin {
    /// The payload fields that describe this input.
    pub fn payload_fields(&self, payload: &mut Map<String, Value>) {
        payload.insert("stdin_sha256".to_owned(), json!(hex::encode(Sha256::digest(&self.bytes))));
        match text(&self.bytes) {
            Some(text) => {
                payload.insert("stdin".to_owned(), json!(text));
            }
            None => {
                payload.insert("stdin_binary".to_owned(), json!(true));
                payload.insert("stdin_bytes".to_owned(), json!(self.bytes.len()));
                let head = self.bytes.get(..EXCERPT_BYTES).unwrap_or(&self.bytes);
                payload.insert("stdin_excerpt".to_owned(), json!(head.escape_ascii().to_string()));
            }
        }
    }
}

/// The input as text, when it is text a reader can see whole.
fn text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).then_some(text)
}

/// Resolves `argv0` the way `execvp` would, against `path` (the value of
/// `PATH`) and `cwd`, to an absolute path of an executable file.
pub fn resolve_program(argv0: &str, path: Option<&OsStr>, cwd: &Path) -> Result<PathBuf, BindError> {
    if argv0.is_empty() {
        return Err(BindError::Empty);
    }
    if argv0.contains('/') {
        let candidate = absolute(Path::new(argv0), cwd);
        return if executable(&candidate) {
            Ok(candidate)
        } else if candidate.exists() {
            Err(BindError::NotExecutable(argv0.to_owned()))
        } else {
            Err(BindError::NotFound(argv0.to_owned()))
        };
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    for dir in std::env::split_paths(path) {
        // An empty entry means the working directory, as for `execvp`.
        let dir = if dir.as_os_str().is_empty() { cwd.to_path_buf() } else { dir };
        let candidate = absolute(&dir.join(argv0), cwd);
        if executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(BindError::NotFound(argv0.to_owned()))
}

/// `path` made absolute against `cwd`, with `.` components dropped (`..`
/// is kept: through a symlink it does not mean the parent).
fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { cwd.join(path) };
    joined.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the variable `name` is kept from the command unless `--env`
/// names it: it makes a shell, the dynamic linker, an interpreter or a
/// tool run code or files other than those on the command line.
pub fn stripped(name: &str) -> bool {
    const EXACT: &[&str] = &[
        // Shells: startup files, options, prompts evaluated with `-x`,
        // word splitting, function search paths.
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS1",
        "PS2",
        "PS3",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "CDPATH",
        "GLOBIGNORE",
        "BASH_XTRACEFD",
        "INPUTRC",
        "ZDOTDIR",
        "FPATH",
        "HISTFILE",
        // The C library: character set converters and locale data are
        // shared objects it loads.
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
        "MALLOC_CONF",
        // Interpreters and runtimes.
        "PERLLIB",
        "PERLDB_OPTS",
        "NODE_OPTIONS",
        "NODE_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "TCLLIBPATH",
        "PHPRC",
        "PHP_INI_SCAN_DIR",
        "R_PROFILE",
        "R_PROFILE_USER",
        "R_ENVIRON",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        // Programs other tools start: pagers, editors, password prompts.
        "PAGER",
        "MANPAGER",
        "SYSTEMD_PAGER",
        "EDITOR",
        "VISUAL",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "KUBE_EDITOR",
        "KUBECTL_EXTERNAL_DIFF",
        // Database clients: startup files and server-side options.
        "PSQLRC",
        "PSQL_PAGER",
        "PSQL_EDITOR",
        "PGOPTIONS",
        "SQLITE_HISTORY",
        "MYSQL_HISTFILE",
    ];
    const PREFIXES: &[&str] =
        &["LD_", "DYLD_", "BASH_FUNC_", "PYTHON", "PERL5", "RUBY", "GEM_", "BUNDLE_", "LUA_", "GIT_", "NODE_"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What the command's environment will be, relative to this process's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPlan {
    /// Removed from the command's environment.
    pub removed: Vec<String>,
    /// Passed and bound: name → value (always `PATH` when set, plus `--env`).
    pub bound: BTreeMap<String, String>,
}

/// Plans the command's environment from `vars` (this process's) and the
/// names given with `--env`.
pub fn plan_env(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    pass: &[String],
) -> Result<EnvPlan, BindError> {
    let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = vars.into_iter().collect();
    let mut plan = EnvPlan::default();
    for name in pass {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(BindError::EnvName(name.clone()));
        }
        let value = vars
            .iter()
            .find(|(k, _)| k.as_os_str() == OsStr::new(name))
            .map(|(_, v)| v)
            .ok_or_else(|| BindError::EnvUnset(name.clone()))?;
        let value = value.to_str().ok_or_else(|| BindError::EnvNotUtf8(name.clone()))?;
        plan.bound.insert(name.clone(), value.to_owned());
    }
    for (name, value) in &vars {
        match name.to_str() {
            Some("PATH") => {
                // Not valid UTF-8 cannot be shown, so it cannot be passed.
                match value.to_str() {
                    Some(value) => {
                        plan.bound.insert("PATH".to_owned(), value.to_owned());
                    }
                    None => plan.removed.push("PATH".to_owned()),
                }
            }
            Some(name) if plan.bound.contains_key(name) => {}
            Some(name) if stripped(name) => plan.removed.push(name.to_owned()),
            Some(_) => {}
            // A name that is not UTF-8 cannot be shown; it is not passed.
            None => plan.removed.push(name.to_string_lossy().into_owned()),
        }
    }
    plan.removed.sort();
    plan.removed.dedup();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn stdin_is_bounded_and_binary_is_not_copied() {
        let read = read_stdin(&b"DROP TABLE users;\n"[..]).unwrap();
        let mut fields = Map::new();
        read.payload_fields(&mut fields);
        assert_eq!(fields["stdin"], "DROP TABLE users;\n");
        assert_eq!(fields["stdin_sha256"], hex::encode(Sha256::digest(b"DROP TABLE users;\n")));
        assert!(!fields.contains_key("stdin_binary"));

        let big = vec![b'a'; MAX_STDIN_BYTES + 1];
        assert!(matches!(read_stdin(&big[..]), Err(BindError::StdinTooLarge { .. })));
        assert_eq!(read_stdin(&big[..MAX_STDIN_BYTES]).unwrap().bytes.len(), MAX_STDIN_BYTES);

        for binary in [&b"\xff\xfe rm -rf /"[..], b"echo hi\x00", b"\x1b[2Jrm -rf /"] {
            let mut fields = Map::new();
            read_stdin(binary).unwrap().payload_fields(&mut fields);
            assert!(!fields.contains_key("stdin"), "{binary:?}");
            assert_eq!(fields["stdin_binary"], true);
            assert_eq!(fields["stdin_bytes"], binary.len());
            assert!(fields["stdin_excerpt"].as_str().unwrap().is_ascii());
        }
    }

    #[test]
    fn programs_resolve_like_execvp() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = bin.join("plain");
        std::fs::write(&plain, "").unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), bin.as_path()]).unwrap();

        assert_eq!(resolve_program("tool", Some(&path), Path::new("/")).unwrap(), tool);
        assert!(matches!(resolve_program("plain", Some(&path), Path::new("/")), Err(BindError::NotFound(_))));
        assert!(matches!(resolve_program("nope", Some(&path), Path::new("/")), Err(BindError::NotFound(_))));
        assert_eq!(resolve_program("./bin/./tool", Some(&path), dir.path()).unwrap(), tool);
        assert!(matches!(resolve_program("bin/plain", None, dir.path()), Err(BindError::NotExecutable(_))));
        assert!(matches!(resolve_program("", None, dir.path()), Err(BindError::Empty)));
        // An empty PATH entry is the working directory.
        assert_eq!(resolve_program("tool", Some(OsStr::new(":")), &bin).unwrap(), tool);
    }

    #[test]
    fn the_environment_that_changes_what_runs_is_stripped_or_bound() {
        let vars = [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/root"),
            ("BASH_ENV", "/tmp/evil"),
            ("LD_PRELOAD", "/tmp/evil.so"),
            ("BASH_FUNC_ls%%", "() { rm -rf /; }"),
            ("GIT_SSH_COMMAND", "sh /tmp/evil"),
            ("PYTHONSTARTUP", "/tmp/evil.py"),
            ("PSQLRC", "/tmp/evil"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let plan = plan_env(vars.clone(), &["PSQLRC".to_owned()]).unwrap();
        assert_eq!(plan.removed, ["BASH_ENV", "BASH_FUNC_ls%%", "GIT_SSH_COMMAND", "LD_PRELOAD", "PYTHONSTARTUP"]);
        assert_eq!(plan.bound.get("PSQLRC").map(String::as_str), Some("/tmp/evil"));
        assert_eq!(plan.bound.get("PATH").map(String::as_str), Some("/usr/bin:/bin"));
        assert!(!plan.bound.contains_key("HOME"));
        assert!(matches!(plan_env(vars.clone(), &["NOPE".to_owned()]), Err(BindError::EnvUnset(_))));
        assert!(matches!(plan_env(vars, &["A=B".to_owned()]), Err(BindError::EnvName(_))));
        for name in ["ENV", "PS4", "SHELLOPTS", "IFS", "PERL5OPT", "NODE_OPTIONS", "RUBYOPT", "LD_AUDIT", "PAGER"] {
            assert!(stripped(name), "{name}");
        }
        for name in ["HOME", "USER", "LANG", "TERM", "KUBECONFIG", "PGHOST"] {
            assert!(!stripped(name), "{name}");
        }
    }
}
