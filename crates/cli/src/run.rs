//! Running an approved command: stdin inherited, stdout and stderr streamed
//! through as they arrive (never buffered whole), and a SHA-256 of stdout
//! taken on the way for the outcome report.

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

/// Runs `argv` in `cwd`, streaming its output through.
pub async fn run(argv: &[String], cwd: Option<&Path>) -> Ran {
    let empty_digest = hex::encode(Sha256::digest(b""));
    let Some((program, args)) = argv.split_first() else {
        return Ran {
            exit_code: 127,
            summary: "cannot start: empty command".to_owned(),
            stdout_sha256: empty_digest,
            started: false,
        };
    };
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::inherit()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Ran {
                exit_code: 127,
                summary: format!("cannot start `{program}`: {e}"),
                stdout_sha256: empty_digest,
                started: false,
            }
        }
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

    #[tokio::test]
    async fn reports_exit_codes_and_hashes_stdout() {
        let ran = run(&["sh".into(), "-c".into(), "printf hi; exit 7".into()], None).await;
        assert_eq!(ran.exit_code, 7);
        assert_eq!(ran.summary, "exit code 7");
        assert_eq!(ran.stdout_sha256, hex::encode(Sha256::digest(b"hi")));
        assert!(!ran.succeeded());
    }

    #[tokio::test]
    async fn signals_become_128_plus_n() {
        let ran = run(&["sh".into(), "-c".into(), "kill -9 $$".into()], None).await;
        assert_eq!(ran.exit_code, 137);
        assert_eq!(ran.summary, "killed by signal 9");
    }

    #[tokio::test]
    async fn a_missing_program_is_127() {
        let ran = run(&["/nonexistent/countersign-test".into()], None).await;
        assert_eq!(ran.exit_code, 127);
        assert!(!ran.started);
        assert!(ran.summary.starts_with("cannot start"), "{}", ran.summary);
    }
}
