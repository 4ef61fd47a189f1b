//! `countersign exec`: submit a command as an action, wait for the verdict
//! (showing who was asked and a live status line), run it when allowed or
//! approved, and report the outcome.
//!
//! What runs is always what this process submitted: the argv, the program
//! file it resolved to, the standard input it read (or none), and the
//! environment that changes what runs (see [`crate::bind`]); the released
//! request's payload is checked against it first, so an approval can never
//! be stretched to cover something else.

use std::io::Write as _;
use std::time::{Duration, Instant};

use countersign_core::Timestamp;
use serde_json::{json, Map, Value};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::bind::{plan_env, read_stdin, resolve_program, BindError, EnvPlan, Stdin};
use crate::cli::ExecArgs;
use crate::client::Client;
use crate::exit::Exit;
use crate::output::{print_error, print_warning, short_duration, stderr_tty, Style};
use crate::review::path_segment;
use crate::run::{run, Launch, Ran};
use crate::view::{parse_time, progress, until, RequestView, RequirementView, Submitted};

/// Seconds each long poll asks the gateway to hold the answer.
const WAIT_SECS: u64 = 30;
/// How long past the deadline an unreachable gateway is retried before
/// giving up (its clock and ours may differ a little).
const DEADLINE_GRACE: Duration = Duration::from_secs(30);

pub async fn exec(args: ExecArgs) -> anyhow::Result<Exit> {
    let client = Client::new(&args.client)?;
    let style = Style::stderr();
    // Registered before anything else so that Ctrl-C never kills this
    // process mid-request; while pending it cancels the request.
    let mut interrupt = Interrupts::new()?;

    let cwd = std::env::current_dir().map_err(|e| anyhow::anyhow!("cannot read the working directory: {e}"))?;
    let bound = bind(&args, &cwd)?;
    let payload = bound.payload.clone();
    let mut body = json!({
        "kind": args.kind,
        "resource": args.resource,
        "payload": payload,
        "labels": args.labels,
        "context": args.context_json.clone().unwrap_or_default(),
    });
    if let Some(obo) = &args.on_behalf_of {
        body["on_behalf_of"] = json!(obo);
    }
    if let Some(j) = &args.justification {
        body["justification"] = json!(j);
    }

    let submitted: Submitted = serde_json::from_value(client.post("/v1/actions", &body, None).await?)?;
    let id = submitted.id.clone();
    if !bound.env.removed.is_empty() {
        print_warning(&format!(
            "not passing {} to the command: they change what runs (--env NAME passes one and shows it to approvers)",
            bound.env.removed.join(", ")
        ));
    }
    // A Ctrl-C during submission is honoured now that the id is known.
    let interrupted = interrupt.already_received().await;
    let view = match submitted.status.as_str() {
        "allowed" if interrupted => {
            eprintln!("{} request {id} was allowed, but nothing was run", style.yellow("interrupted:"));
            return Ok(Exit::CLOSED);
        }
        "pending" if interrupted => return cancel(&client, &id, style).await,
        "allowed" => None,
        "denied" => {
            let reason = submitted.reason.as_deref().unwrap_or("denied by policy");
            eprintln!("{} {} on {}: {reason}", style.red("denied:"), args.kind, args.resource);
            if !submitted.policies.is_empty() {
                eprintln!("  policies: {}", submitted.policies.join(", "));
            }
            eprintln!("  request {id}");
            return Ok(Exit::DENIED);
        }
        "pending" => {
            announce(&submitted, &args, &client, style);
            let decided = match wait_for_decision(&client, &submitted, &mut interrupt, style).await? {
                Waited::Decided(view) => view,
                Waited::Interrupted => return cancel(&client, &id, style).await,
                Waited::TokenRevoked(detail) => {
                    eprintln!("{} request {id}: this token is no longer accepted ({detail})", style.red("revoked:"));
                    return Ok(Exit::CLOSED);
                }
            };
            match decided.status.as_str() {
                "approved" => {
                    eprintln!("{} {}", style.green("approved:"), approvers(&decided));
                    Some(release(&client, &id, style).await?)
                }
                other => return Ok(closed(&decided, other, style)),
            }
        }
        other => {
            anyhow::bail!("the gateway answered with unexpected status `{other}` for request {id}")
        }
    };
    if let Some(view) = &view {
        check_payload(view, &payload, submitted.fingerprint.as_deref())?;
    }

    let env_set: Vec<(String, String)> = bound.env.bound.clone().into_iter().collect();
    let ran = run(Launch {
        program: &bound.program,
        argv: &args.command,
        cwd: Some(cwd.as_path()),
        stdin: bound.stdin.as_ref().map(|s| s.bytes.as_slice()),
        env_remove: &bound.env.removed,
        env_set: &env_set,
    })
    .await;
    if !ran.started {
        print_error(&ran.summary);
    }
    report_outcome(&client, &id, &ran).await;
    Ok(Exit(u8::try_from(ran.exit_code.clamp(0, 255)).unwrap_or(1)))
}

/// What is submitted and, once allowed or approved, run.
struct Bound {
    payload: Value,
    program: std::path::PathBuf,
    stdin: Option<Stdin>,
    env: EnvPlan,
}

/// Resolves the program, reads standard input when asked, plans the
/// environment, and puts all of it in the payload. Nothing is submitted
/// when any of it fails.
fn bind(args: &ExecArgs, cwd: &std::path::Path) -> anyhow::Result<Bound> {
    let failed = |e: BindError| {
        let exit = match e {
            BindError::NotFound(_) | BindError::NotExecutable(_) | BindError::Empty => Exit(127),
            BindError::Stdin(_)
            | BindError::StdinTooLarge { .. }
            | BindError::EnvUnset(_)
            | BindError::EnvNotUtf8(_)
            | BindError::EnvName(_) => Exit::ERROR,
        };
        anyhow::Error::new(crate::exit::Failure { exit, message: format!("{e}; nothing was submitted") })
    };
    let env = plan_env(std::env::vars_os(), &args.pass_env).map_err(failed)?;
    let argv0 = args.command.first().map_or("", String::as_str);
    // The same PATH the command gets (and the payload shows).
    let path = env.bound.get("PATH").map(std::ffi::OsStr::new);
    let program = resolve_program(argv0, path, cwd).map_err(failed)?;
    let shown = |p: &std::path::Path, what: &str| {
        p.to_str().map(str::to_owned).ok_or_else(|| {
            anyhow::Error::new(crate::exit::Failure {
                exit: Exit::ERROR,
                message: format!(
                    "the {what} `{}` is not valid UTF-8, so it cannot be shown to approvers; nothing was submitted",
                    p.display()
                ),
            })
        })
    };
    let mut payload = Map::new();
    payload.insert("argv".to_owned(), json!(args.command));
    payload.insert("cwd".to_owned(), json!(shown(cwd, "working directory")?));
    payload.insert("program".to_owned(), json!(shown(&program, "program path")?));
    payload.insert("env".to_owned(), json!(env.bound));
    let stdin = if args.stdin { Some(read_stdin(std::io::stdin().lock()).map_err(failed)?) } else { None };
    if let Some(stdin) = &stdin {
        stdin.payload_fields(&mut payload);
    }
    Ok(Bound { payload: Value::Object(payload), program, stdin, env })
}

/// Tells the requester who was asked, and until when.
fn announce(submitted: &Submitted, args: &ExecArgs, client: &Client, style: Style) {
    let approval = submitted.approval.clone().unwrap_or_default();
    eprintln!(
        "{} {} on {} needs approval (request {})",
        style.yellow("pending:"),
        args.kind,
        args.resource,
        submitted.id
    );
    for requirement in &approval.requirements {
        eprintln!("  {}", asked(requirement));
    }
    if let Some(deadline) = parse_time(approval.expires_at.as_deref()) {
        eprintln!("  deadline {deadline} (in {})", short_duration(until(deadline, Timestamp::now())));
    }
    let server = if client.server() == "http://127.0.0.1:8470" {
        String::new()
    } else {
        format!(" --server {}", client.server())
    };
    eprintln!("  an approver runs: countersign approve {}{server}", submitted.id);
}

fn asked(r: &RequirementView) -> String {
    let quorum = r.quorum.max(1);
    let who = if quorum == 1 { "1 approval".to_owned() } else { format!("{quorum} approvals from distinct people") };
    format!("policy {} asks for {who} from group {}", r.policy, r.groups.join(" or "))
}

fn approvers(view: &RequestView) -> String {
    let names: Vec<String> = view.approvals.iter().map(|a| a.who()).collect();
    if names.is_empty() {
        format!("request {}", view.id)
    } else {
        format!("request {} by {}", view.id, names.join(", "))
    }
}

enum Waited {
    Decided(Box<RequestView>),
    Interrupted,
    TokenRevoked(String),
}

/// Long-polls until the request leaves `pending`, keeping a status line
/// up to date, and retrying through gateway restarts until the deadline.
async fn wait_for_decision(
    client: &Client,
    submitted: &Submitted,
    interrupt: &mut Interrupts,
    style: Style,
) -> anyhow::Result<Waited> {
    let path = format!("/v1/actions/{}?wait={WAIT_SECS}", path_segment(&submitted.id));
    let approval = submitted.approval.clone().unwrap_or_default();
    let mut deadline = parse_time(approval.expires_at.as_deref());
    let mut counted = progress(&approval.requirements);
    let mut line = StatusLine::new(style);
    let mut backoff = Duration::from_millis(250);
    let mut unreachable_since: Option<(Instant, String)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let polled_at = Instant::now();
        let poll = client.get(&path, Some(Duration::from_secs(WAIT_SECS + 15)));
        tokio::pin!(poll);
        let answer = loop {
            tokio::select! {
                answer = &mut poll => break answer,
                _ = tick.tick() => line.show(&status_text(counted, deadline, unreachable_since.as_ref())),
                () = interrupt.recv() => {
                    line.finish();
                    return Ok(Waited::Interrupted);
                }
            }
        };
        match answer {
            Ok(value) => {
                let view: RequestView = serde_json::from_value(value)?;
                unreachable_since = None;
                backoff = Duration::from_millis(250);
                if view.status != "pending" {
                    line.finish();
                    return Ok(Waited::Decided(Box::new(view)));
                }
                counted = view.progress();
                deadline = parse_time(view.expires_at.as_deref()).or(deadline);
                line.show(&status_text(counted, deadline, None));
                // A gateway that answers "still pending" without holding
                // the call must not turn this loop into a busy poll.
                let floor = Duration::from_secs(1).saturating_sub(polled_at.elapsed());
                if !floor.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(floor) => {}
                        () = interrupt.recv() => {
                            line.finish();
                            return Ok(Waited::Interrupted);
                        }
                    }
                }
            }
            Err(e) if e.is_retryable() => {
                let past_deadline = deadline.is_some_and(|d| until(d, Timestamp::now()).is_zero());
                let since = unreachable_since.get_or_insert_with(|| (Instant::now(), String::new()));
                if past_deadline && since.0.elapsed() >= DEADLINE_GRACE {
                    line.finish();
                    return Err(anyhow::anyhow!(
                        "gave up waiting for request {}: its deadline has passed and {e}",
                        submitted.id
                    ));
                }
                since.1 = e.to_string();
                line.show(&status_text(counted, deadline, unreachable_since.as_ref()));
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = interrupt.recv() => {
                        line.finish();
                        return Ok(Waited::Interrupted);
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) if e.status() == Some(401) => {
                // The token worked when the request was submitted; refused
                // now, it was revoked, and its open requests with it.
                line.finish();
                return Ok(Waited::TokenRevoked(e.to_string()));
            }
            Err(e) => {
                line.finish();
                return Err(e.into());
            }
        }
    }
}

fn status_text(progress: (u64, u64), deadline: Option<Timestamp>, unreachable: Option<&(Instant, String)>) -> String {
    let left = deadline.map_or_else(String::new, |d| format!(" · {} left", short_duration(until(d, Timestamp::now()))));
    let mut text = format!("waiting for approval: {}/{} approvals{left}", progress.0, progress.1);
    if let Some((since, error)) = unreachable {
        text.push_str(&format!(" · retrying for {}: {error}", short_duration(since.elapsed())));
    }
    text
}

/// Takes the single-use release of an approved request.
async fn release(client: &Client, id: &str, style: Style) -> anyhow::Result<RequestView> {
    let path = format!("/v1/actions/{}/release", path_segment(id));
    let mut backoff = Duration::from_millis(250);
    let started = Instant::now();
    loop {
        match client.post(&path, &json!({}), None).await {
            Ok(value) => return Ok(serde_json::from_value(value)?),
            Err(e) if e.is_retryable() && started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                let closed = matches!(e.code(), Some("expired" | "revoked" | "cancelled"));
                if closed {
                    eprintln!("{} request {id} could not be released: {e}", style.red("not run:"));
                    return Err(anyhow::Error::new(crate::exit::Failure {
                        exit: Exit::CLOSED,
                        message: e.to_string(),
                    }));
                }
                return Err(e.into());
            }
        }
    }
}

/// Refuses to run anything but what was submitted.
fn check_payload(view: &RequestView, payload: &Value, fingerprint: Option<&str>) -> anyhow::Result<()> {
    if view.status != "released" {
        anyhow::bail!("request {} is `{}` after release, not `released`; not running", view.id, view.status);
    }
    // Everything that decides what runs is in the payload: the argv, the
    // program file, the environment, the standard input. An answer that
    // leaves it out cannot be checked, so nothing runs.
    if &view.payload != payload {
        anyhow::bail!("the released request {} does not carry the submitted command; not running", view.id);
    }
    match (view.fingerprint.as_deref(), fingerprint) {
        (Some(released), Some(submitted)) if released == submitted => Ok(()),
        (Some(_), Some(_)) => anyhow::bail!(
            "the released request {} has another fingerprint than the submitted one; not running",
            view.id
        ),
        (None, _) | (_, None) => {
            anyhow::bail!("the gateway did not show the fingerprint of request {}; not running", view.id)
        }
    }
}

fn closed(view: &RequestView, status: &str, style: Style) -> Exit {
    let reason = view.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    match status {
        "denied" => {
            let by: Vec<String> = view
                .denials
                .iter()
                .map(|d| {
                    let note = d.note().map(|n| format!(" ({n})")).unwrap_or_default();
                    format!("{}{note}", d.who())
                })
                .collect();
            let by = if by.is_empty() { String::new() } else { format!(" by {}", by.join(", ")) };
            eprintln!("{} request {}{by}{reason}", style.red("denied:"), view.id);
            Exit::DENIED
        }
        "expired" | "revoked" | "cancelled" => {
            eprintln!("{} request {}{reason}", style.red(&format!("{status}:")), view.id);
            Exit::CLOSED
        }
        other => {
            print_error(&format!("request {} ended in unexpected status `{other}`; not running", view.id));
            Exit::ERROR
        }
    }
}

async fn cancel(client: &Client, id: &str, style: Style) -> anyhow::Result<Exit> {
    let path = format!("/v1/actions/{}/cancel", path_segment(id));
    match client.post(&path, &json!({}), Some(Duration::from_secs(10))).await {
        Ok(_) => eprintln!("{} request {id} (interrupted)", style.yellow("cancelled:")),
        Err(e) => print_warning(&format!("interrupted, but cancelling request {id} failed: {e}")),
    }
    Ok(Exit::CLOSED)
}

async fn report_outcome(client: &Client, id: &str, ran: &Ran) {
    let body = json!({
        "status": if ran.succeeded() { "succeeded" } else { "failed" },
        "exit_code": ran.exit_code,
        "summary": ran.summary,
        "output_sha256": ran.stdout_sha256,
    });
    let path = format!("/v1/actions/{}/outcome", path_segment(id));
    let mut last = None;
    for attempt in 0..3u32 {
        match client.post(&path, &body, Some(Duration::from_secs(10))).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt + 1))).await;
            }
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    if let Some(e) = last {
        print_warning(&format!("the outcome of request {id} was not recorded: {e}"));
    }
}

/// Ctrl-C and SIGTERM, as a stream.
struct Interrupts {
    int: Signal,
    term: Signal,
}

impl Interrupts {
    fn new() -> anyhow::Result<Self> {
        let int = signal(SignalKind::interrupt()).map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))?;
        let term = signal(SignalKind::terminate()).map_err(|e| anyhow::anyhow!("cannot handle SIGTERM: {e}"))?;
        Ok(Self { int, term })
    }

    /// True when a signal arrived earlier and has not been handled yet.
    async fn already_received(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.recv() => true,
            () = std::future::ready(()) => false,
        }
    }

    async fn recv(&mut self) {
        tokio::select! {
            Some(()) = self.int.recv() => {}
            Some(()) = self.term.recv() => {}
            else => std::future::pending::<()>().await,
        }
    }
}

/// The live status line on stderr: rewritten in place on a terminal, a
/// plain line every ten seconds otherwise (logs, CI).
struct StatusLine {
    tty: bool,
    style: Style,
    width: usize,
    last_plain: Option<Instant>,
}

impl StatusLine {
    fn new(style: Style) -> Self {
        Self { tty: stderr_tty(), style, width: 0, last_plain: None }
    }

    fn show(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let len = text.chars().count();
            let pad = " ".repeat(self.width.saturating_sub(len));
            self.width = len;
            let _ = write!(err, "\r{}{pad}", self.style.dim(text));
        } else if self.last_plain.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            self.last_plain = Some(Instant::now());
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.tty && self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(self.width));
            self.width = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(payload: Value, fingerprint: Option<&str>) -> RequestView {
        RequestView {
            id: "r1".into(),
            status: "released".into(),
            payload,
            fingerprint: fingerprint.map(str::to_owned),
            ..RequestView::default()
        }
    }

    #[test]
    fn only_the_submitted_payload_and_fingerprint_run() {
        let payload = json!({"argv": ["sh"], "program": "/bin/sh", "stdin": "echo hi\n"});
        assert!(check_payload(&released(payload.clone(), Some("sha256:a")), &payload, Some("sha256:a")).is_ok());
        // Another stdin, a missing payload, another or a missing fingerprint: nothing runs.
        let other = json!({"argv": ["sh"], "program": "/bin/sh", "stdin": "rm -rf /\n"});
        assert!(check_payload(&released(other, Some("sha256:a")), &payload, Some("sha256:a")).is_err());
        assert!(check_payload(&released(Value::Null, Some("sha256:a")), &payload, Some("sha256:a")).is_err());
        assert!(check_payload(&released(payload.clone(), Some("sha256:b")), &payload, Some("sha256:a")).is_err());
        assert!(check_payload(&released(payload.clone(), None), &payload, Some("sha256:a")).is_err());
        let mut approved = released(payload.clone(), Some("sha256:a"));
        approved.status = "approved".into();
        assert!(check_payload(&approved, &payload, Some("sha256:a")).is_err());
    }
}
