//! Running an approved command: exactly the program file that was bound
//! (no second `PATH` lookup), exactly the standard input that was bound
//! (or `/dev/null`), the environment as planned (see [`crate::bind`]);
//! stdout and stderr streamed through as they arrive (never buffered
//! whole), and a SHA-256 of stdout taken on the way for the outcome report.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;
use tokio::signal::unix::{signal, SignalKind};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The code to exit with: the command's, 128+N for signal N, 127 when
    /// it could not be started.
    pub exit_code: i32,
    /// `exit code N`, `killed by signal N` or `cannot start: …`.
    pub summary: String,
    /// Hex SHA-256 of everything the command wrote to stdout.
    pub stdout_sha256: String,
    pub started: bool,
}

impl Ran {
    pub fn succeeded(&self) -> bool {
        self.started && self.exit_code == 0
    }
}

/// What to start.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The program file, started as is: never looked up in `PATH` again.
    pub program: &'a Path,
    /// The argv; `argv[0]` is passed as the program's name.
    pub argv: &'a [String],
    pub cwd: Option<&'a Path>,
    /// Fed to the command's standard input, then closed; `None` gives it
    /// `/dev/null`.
    pub stdin: Option<&'a [u8]>,
    /// Variables removed from the environment.
    pub env_remove: &'a [String],
    /// Variables set in the environment.
    pub env_set: &'a [(String, String)],
}

/// Starts `launch`, streaming its output through.
pub async fn run(launch: Launch<'_>) -> Ran {
    let empty_digest = hex::encode(Sha256::digest(b""));
    let Some((name, args)) = launch.argv.split_first() else {
        return Ran {
            exit_code: 127,
            summary: "cannot start: empty command".to_owned(),
            stdout_sha256: empty_digest,
            started: false,
        };
    };
    let mut command = Command::new(launch.program);
    command.arg0(name).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if launch.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    if let Some(cwd) = launch.cwd {
        command.current_dir(cwd);
    }
    for name in launch.env_remove {
        command.env_remove(name);
    }
    for (name, value) in launch.env_set {
        command.env(name, value);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Ran {
                exit_code: 127,
                summary: format!("cannot start `{}`: {e}", launch.program.display()),
                stdout_sha256: empty_digest,
                started: false,
            }
        }
    };
    // Fed from a task so that a command writing much before it reads can
    // never deadlock against us; a command that stops reading early just
    // closes the pipe.
    let feeder = match (child.stdin.take(), launch.stdin) {
        (Some(mut pipe), Some(bytes)) => {
            let bytes = bytes.to_vec();
            Some(tokio::spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            }))
        }
        (Some(_) | None, None) | (None, Some(_)) => None,
    };
    let stdout = child.stdout.take().map(|out| tokio::spawn(pump(out, tokio::io::stdout(), true)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(pump(err, tokio::io::stderr(), false)));

    // The terminal delivers Ctrl-C to the command too (same process group),
    // so it is the command's to handle; SIGTERM sent to us alone is passed on.
    let mut term = signal(SignalKind::terminate()).ok();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(()) = recv(&mut term) => forward_term(&mut child).await,
        }
    };
    let digest = match stdout {
        Some(task) => task.await.ok().flatten().unwrap_or_else(|| empty_digest.clone()),
        None => empty_digest.clone(),
    };
    if let Some(task) = stderr {
        let _ = task.await;
    }
    if let Some(task) = feeder {
        // The command has ended; whatever it did not read is dropped.
        task.abort();
    }
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => {
                Ran { exit_code: code, summary: format!("exit code {code}"), stdout_sha256: digest, started: true }
            }
            (None, Some(sig)) => Ran {
                exit_code: 128 + sig,
                summary: format!("killed by signal {sig}"),
                stdout_sha256: digest,
                started: true,
            },
            (None, None) => {
                Ran { exit_code: 1, summary: "ended without a status".to_owned(), stdout_sha256: digest, started: true }
            }
        },
        Err(e) => Ran {
            exit_code: 1,
            summary: format!("cannot wait for the command: {e}"),
            stdout_sha256: digest,
            started: true,
        },
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn forward_term(child: &mut tokio::process::Child) {
    let Some(pid) = child.id() else { return };
    let forwarded = Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !forwarded {
        let _ = child.start_kill();
    }
}

/// Copies `from` to `to` chunk by chunk, flushing each so output appears as
/// it is produced. Returns the hex SHA-256 of what passed when `hash` is set.
/// A closed destination (our stdout piped into `head`, say) stops the copy
/// to it but keeps draining, so the command is never blocked on a full pipe.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, hash: bool) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sink_open = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = buf.get(..n).unwrap_or_default();
        if hash {
            hasher.update(chunk);
        }
        if sink_open && (to.write_all(chunk).await.is_err() || to.flush().await.is_err()) {
            sink_open = false;
        }
    }
    hash.then(|| hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch<'a>(argv: &'a [String], stdin: Option<&'a [u8]>) -> Launch<'a> {
        let program = Path::new(argv.first().map_or("", String::as_str));
        Launch { program, argv, cwd: None, stdin, env_remove: &[], env_set: &[] }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn reports_exit_codes_and_hashes_stdout() {
        let argv = sh("printf hi; exit 7");
        let ran = run(launch(&argv, None)).await;
        assert_eq!(ran.exit_code, 7);
        assert_eq!(ran.summary, "exit code 7");
        assert_eq!(ran.stdout_sha256, hex::encode(Sha256::digest(b"hi")));
        assert!(!ran.succeeded());
    }

    #[tokio::test]
    async fn signals_become_128_plus_n() {
        let argv = sh("kill -9 $$");
        let ran = run(launch(&argv, None)).await;
        assert_eq!(ran.exit_code, 137);
        assert_eq!(ran.summary, "killed by signal 9");
    }

    #[tokio::test]
    async fn a_missing_program_is_127() {
        let argv = ["/nonexistent/countersign-test".to_owned()];
        let ran = run(launch(&argv, None)).await;
        assert_eq!(ran.exit_code, 127);
        assert!(!ran.started);
        assert!(ran.summary.starts_with("cannot start"), "{}", ran.summary);
    }

    #[tokio::test]
    async fn stdin_is_exactly_the_bytes_given_or_nothing() {
        let argv = sh("cat");
        let ran = run(launch(&argv, Some(b"exact\x00bytes"))).await;
        assert_eq!(ran.stdout_sha256, hex::encode(Sha256::digest(b"exact\x00bytes")));
        let ran = run(launch(&argv, None)).await;
        assert_eq!(ran.stdout_sha256, hex::encode(Sha256::digest(b"")));
        // A command that never reads its input still ends.
        let argv = sh("exit 0");
        let big = vec![b'x'; 1 << 20];
        assert_eq!(run(launch(&argv, Some(&big))).await.exit_code, 0);
    }

    #[tokio::test]
    async fn the_bound_program_runs_with_its_argv0_and_planned_environment() {
        let argv = vec![
            "whatever-name".to_owned(),
            "-c".to_owned(),
            "printf '%s|%s|%s' \"$0\" \"$KEEP\" \"$HOME\"".to_owned(),
        ];
        assert!(std::env::var_os("HOME").is_some(), "the test needs HOME set to show that it is removed");
        let set = [("KEEP".to_owned(), "kept".to_owned())];
        let remove = ["HOME".to_owned()];
        let ran = run(Launch {
            program: Path::new("/bin/sh"),
            argv: &argv,
            cwd: None,
            stdin: None,
            env_remove: &remove,
            env_set: &set,
        })
        .await;
        assert_eq!(ran.exit_code, 0, "{}", ran.summary);
        assert_eq!(ran.stdout_sha256, hex::encode(Sha256::digest(b"whatever-name|kept|")));
    }
}
