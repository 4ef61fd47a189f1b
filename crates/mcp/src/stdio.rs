//! The stdio transport: an upstream MCP server run as a child process
//! (newline-delimited JSON-RPC on its stdin and stdout), and
//! `countersign mcp -- <server command>`, which an MCP client launches in
//! place of the server and which relays between its own stdin/stdout and
//! the child's.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use crate::approvals::Approvals;
use crate::error::McpError;
use crate::jsonrpc;
use crate::relay::{BadLine, Message, Options, Relay, ToClient};

/// How long a child may take to exit after its stdin closes, and again
/// after SIGTERM, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Where the child's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStderr {
    /// Straight through to ours (the stdio proxy: the client shows it).
    Inherit,
    /// Into the log, a line at a time (the gateway).
    Log,
}

/// Variables a gateway-spawned server gets: enough to find programs and
/// run, and none of the gateway's own settings or secrets.
const MINIMAL_ENV: [&str; 9] =
    ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT", "NODE_EXTRA_CA_CERTS"];

/// What environment the child gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnv {
    /// Ours, less every `COUNTERSIGN_*` variable: the agent key must not
    /// reach the server it is gating (the stdio proxy).
    InheritButOurs,
    /// Only [`MINIMAL_ENV`] (the gateway, whose environment may hold the
    /// database URL and channel secrets).
    Minimal,
}

/// A running upstream server process wired to a relay.
#[derive(Debug)]
pub struct Upstream {
    child: Arc<tokio::sync::Mutex<Child>>,
    stdin_closed: watch::Sender<bool>,
    /// Becomes `Some(description)` when the child has exited.
    pub exited: watch::Receiver<Option<String>>,
}

impl Upstream {
    /// Starts `command` and pumps messages between it and `relay`.
    pub fn spawn(
        command: &[String],
        relay: Arc<Relay>,
        to_upstream: mpsc::Receiver<Message>,
        stderr: ChildStderr,
        env: ChildEnv,
    ) -> Result<Self, McpError> {
        let Some((program, args)) = command.split_first() else {
            return Err(McpError::Spawn { command: String::new(), reason: "the command is empty".to_owned() });
        };
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true);
        match env {
            ChildEnv::InheritButOurs => {
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("COUNTERSIGN_") {
                        cmd.env_remove(key);
                    }
                }
            }
            ChildEnv::Minimal => {
                cmd.env_clear();
                for key in MINIMAL_ENV {
                    if let Some(value) = std::env::var_os(key) {
                        cmd.env(key, value);
                    }
                }
            }
        }
        cmd.stderr(match stderr {
            ChildStderr::Inherit => Stdio::inherit(),
            ChildStderr::Log => Stdio::piped(),
        });
        let mut child =
            cmd.spawn().map_err(|e| McpError::Spawn { command: command.join(" "), reason: e.to_string() })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(McpError::Spawn { command: command.join(" "), reason: "no pipes to the child".to_owned() });
        };
        if let Some(err) = child.stderr.take() {
            tokio::spawn(log_stderr(err, relay.upstream().to_owned()));
        }
        let child = Arc::new(tokio::sync::Mutex::new(child));
        let (stdin_closed, closed_rx) = watch::channel(false);
        let (exited_tx, exited) = watch::channel(None);
        tokio::spawn(write_child(stdin, to_upstream, closed_rx));
        let reader_child = child.clone();
        tokio::spawn(async move {
            read_lines(stdout, |message| {
                let relay = relay.clone();
                async move {
                    match message {
                        Ok(message) => relay.from_upstream(message).await,
                        Err(line) => relay.bad_upstream_line(line),
                    }
                }
            })
            .await;
            // Its stdout closed: it exited or is about to. Reap it to say how.
            let how = {
                let mut child = reader_child.lock().await;
                match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                    Ok(Ok(status)) => describe_exit(status),
                    Ok(Err(e)) => format!("could not be waited for: {e}"),
                    Err(_) => {
                        let _ = child.start_kill();
                        "closed its output and was stopped".to_owned()
                    }
                }
            };
            relay.upstream_gone(&how).await;
            let _ = exited_tx.send(Some(how));
        });
        Ok(Self { child, stdin_closed, exited })
    }

    /// Ends the child as the spec asks: close its stdin, wait, SIGTERM,
    /// wait, SIGKILL.
    pub async fn shutdown(&self) {
        let _ = self.stdin_closed.send(true);
        let mut exited = self.exited.clone();
        if tokio::time::timeout(EXIT_GRACE, exited.wait_for(Option::is_some)).await.is_ok() {
            return;
        }
        let pid = self.child.lock().await.id();
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-s", "TERM", &pid.to_string()]).status().await;
        }
        if tokio::time::timeout(EXIT_GRACE, exited.wait_for(Option::is_some)).await.is_ok() {
            return;
        }
        let _ = self.child.lock().await.start_kill();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited".to_owned(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "exited without a status".to_owned(),
    }
}

async fn write_child(mut stdin: ChildStdin, mut messages: mpsc::Receiver<Message>, mut closed: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { break };
                if write_line(&mut stdin, &message.text).await.is_err() {
                    // The child is gone; its stdout reader reports how.
                    break;
                }
            }
            changed = closed.changed() => {
                if changed.is_err() || *closed.borrow() {
                    break;
                }
            }
        }
    }
    let _ = stdin.shutdown().await;
}

/// Writes one message and a newline, and flushes.
pub async fn write_line(to: &mut (impl AsyncWrite + Unpin), text: &str) -> std::io::Result<()> {
    // A message must not contain a raw newline; JSON text never needs one,
    // but a pretty-printed message from a sloppy peer might.
    if text.contains('\n') {
        let compact = text.replace(['\n', '\r'], " ");
        to.write_all(compact.as_bytes()).await?;
    } else {
        to.write_all(text.as_bytes()).await?;
    }
    to.write_all(b"\n").await?;
    to.flush().await
}

/// One line as read: its text, or how long it was when it was too long to
/// keep.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text(Vec<u8>),
    TooLong(usize),
}

/// Reads one `\n`-terminated line of at most `max` bytes (the last line
/// may lack its `\n`). A longer line is read to its end and discarded, so
/// that memory stays bounded whatever the peer writes. `None` at EOF.
async fn next_line(from: &mut (impl AsyncBufRead + Unpin), max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut length = 0usize;
    let mut any = false;
    loop {
        let available = from.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (any, length > max) {
                (false, _) => None,
                (true, true) => Some(Line::TooLong(length)),
                (true, false) => Some(Line::Text(line)),
            });
        }
        any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], at + 1),
            None => (available, available.len()),
        };
        let ended = done > chunk.len();
        length = length.saturating_add(chunk.len());
        if length <= max {
            line.extend_from_slice(chunk);
        } else if !line.is_empty() {
            line = Vec::new();
        }
        from.consume(done);
        if ended {
            return Ok(Some(if length > max { Line::TooLong(length) } else { Line::Text(line) }));
        }
    }
}

/// Reads newline-delimited messages until EOF, each line at most
/// [`jsonrpc::MAX_MESSAGE_BYTES`]; what is not a message (not JSON, or
/// too long) goes to `handle` as a [`BadLine`].
async fn read_lines<F, Fut>(from: impl AsyncRead + Unpin, mut handle: F)
where
    F: FnMut(Result<Message, BadLine>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut reader = BufReader::with_capacity(64 * 1024, from);
    loop {
        match next_line(&mut reader, jsonrpc::MAX_MESSAGE_BYTES).await {
            Ok(Some(Line::Text(bytes))) => {
                let text = match std::str::from_utf8(&bytes) {
                    Ok(text) => text.trim_end_matches('\r'),
                    Err(_) => {
                        handle(Err(BadLine::NotJson(bytes))).await;
                        continue;
                    }
                };
                if text.trim().is_empty() {
                    continue;
                }
                match Message::parse(text) {
                    Ok(message) => handle(Ok(message)).await,
                    Err(_) => handle(Err(BadLine::NotJson(bytes))).await,
                }
            }
            Ok(Some(Line::TooLong(length))) => handle(Err(BadLine::TooLong(length))).await,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "reading messages failed");
                break;
            }
        }
    }
}

/// Logs the child's stderr a line at a time, each cut to a few KiB.
async fn log_stderr(from: impl AsyncRead + Unpin, name: String) {
    const SHOWN: usize = 4096;
    let mut reader = BufReader::new(from);
    loop {
        match next_line(&mut reader, SHOWN).await {
            Ok(Some(Line::Text(bytes))) => {
                tracing::info!(upstream = %name, "upstream stderr: {}", String::from_utf8_lossy(&bytes).trim_end());
            }
            Ok(Some(Line::TooLong(length))) => {
                tracing::info!(upstream = %name, "upstream stderr: (a line of {length} bytes, not shown)");
            }
            Ok(None) | Err(_) => break,
        }
    }
}

/// `countersign mcp -- <command>`: relays between this process's stdin and
/// stdout and the child's until either side ends. Returns the exit code:
/// 0 when the client closed the session, 1 when the server went away.
pub async fn run(
    command: &[String],
    upstream_name: &str,
    approvals: Arc<dyn Approvals>,
    options: Options,
) -> Result<i32, McpError> {
    let (relay, to_upstream, to_client) = Relay::new(upstream_name, "stdio", approvals, options);
    let upstream =
        Upstream::spawn(command, relay.clone(), to_upstream, ChildStderr::Inherit, ChildEnv::InheritButOurs)?;
    let writer = tokio::spawn(write_client(tokio::io::stdout(), to_client));

    let client_relay = relay.clone();
    let client_reader = read_lines(tokio::io::stdin(), move |message| {
        let relay = client_relay.clone();
        async move {
            match message {
                Ok(message) => relay.from_client(message).await,
                Err(line) => relay.bad_client_line(line).await,
            }
        }
    });
    let mut exited = upstream.exited.clone();
    let code = tokio::select! {
        () = client_reader => {
            // The client closed our stdin: the session is over. Calls still
            // waiting for approval are withdrawn, not left for someone to
            // approve what nobody will run.
            relay.abandon().await;
            upstream.shutdown().await;
            0
        }
        how = async { exited.wait_for(Option::is_some).await.map(|h| h.clone()).ok().flatten() } => {
            let how = how.unwrap_or_default();
            eprintln!("countersign: the upstream MCP server `{upstream_name}` {how}");
            1
        }
    };
    // Let the errors for open requests reach the client before leaving.
    drop(relay);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(code)
}

async fn write_client(mut out: impl AsyncWrite + Unpin, mut messages: mpsc::Receiver<ToClient>) {
    while let Some(to_client) = messages.recv().await {
        if write_line(&mut out, &to_client.message.text).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        while let Some(line) = next_line(&mut reader, max).await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn lines_longer_than_the_bound_are_measured_not_kept() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\neleven-char\nlast");
        let got = lines(&input, 10).await;
        assert_eq!(
            got,
            vec![Line::Text(b"short".to_vec()), Line::TooLong(100), Line::TooLong(11), Line::Text(b"last".to_vec()),]
        );
        assert_eq!(lines(b"0123456789\n", 10).await, vec![Line::Text(b"0123456789".to_vec())]);
        assert_eq!(lines(&[b'y'; 50], 10).await, vec![Line::TooLong(50)]);
        assert!(lines(b"", 10).await.is_empty());
    }
}
