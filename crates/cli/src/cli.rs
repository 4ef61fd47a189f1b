//! The command line, as clap derive types. Every command and flag is
//! documented here, so `--help` is the reference.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Output;

const LONG_ABOUT: &str = "\
countersign is a gateway for action-level approvals. Agents and scripts submit the privileged actions they want to take; a Cedar policy allows them, denies them, or holds them until a human who is not the requester approves. Every step is recorded in a hash-chained audit log.

Start the gateway with `countersign serve`; it prints how to add a user and an agent and how to try an action.";

/// The `countersign` command line.
#[derive(Debug, Parser)]
#[command(name = "countersign", version, about = "A gateway for action-level approvals", long_about = LONG_ABOUT)]
#[command(after_long_help = crate::exit::EXIT_CODES_HELP, propagate_version = true)]
pub struct Cli {
    /// Output format, for commands whose output a script may read.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the gateway.
    #[command(
        long_about = "Start the gateway: open the SQLite store in the data directory, load the policies, and serve the HTTP API.\n\nSettings come from the config file, overridden by COUNTERSIGN_<SECTION>_<KEY> environment variables, overridden by these flags. SIGHUP reloads the policies (a failed reload keeps the current set); SIGINT and SIGTERM shut down gracefully."
    )]
    Serve(ServeArgs),
    /// Manage users: humans who approve and deny.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage agents: automated actors that submit actions.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Check and test Cedar policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Verify and export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Validate configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a command once the gateway allows it (waiting for approval if needed).
    #[command(long_about = EXEC_LONG_ABOUT, after_long_help = crate::exit::EXIT_CODES_HELP)]
    Exec(ExecArgs),
    /// List the requests you can approve or deny.
    Pending(PendingArgs),
    /// Approve a pending request.
    Approve(VoteArgs),
    /// Deny a pending request (final).
    Deny(VoteArgs),
    /// Show one request with its approvals, denials and comments.
    Show(ShowArgs),
    /// Put the approval loop in front of an MCP server (stdio): `countersign mcp -- <server command>`.
    #[command(long_about = MCP_LONG_ABOUT)]
    Mcp(McpArgs),
    /// Print a kubeconfig that reaches a `[[kubernetes]]` cluster through the gateway.
    #[command(long_about = KUBECONFIG_LONG_ABOUT)]
    Kubeconfig(KubeconfigArgs),
    /// Agent hooks that ask the gateway before a tool runs: `countersign hook claude-code`.
    #[command(subcommand)]
    Hook(HookCommand),
}

const KUBECONFIG_LONG_ABOUT: &str = "\
Print a kubeconfig (JSON, which kubectl reads as YAML) whose server is <gateway>/k8s/<cluster> and whose token is your countersign key: every kubectl request then goes through the gateway's policy. The gateway URL and key come from --server/--token or COUNTERSIGN_SERVER/COUNTERSIGN_TOKEN; with --ca-file the gateway's CA is embedded. Save it and use it with `KUBECONFIG=file kubectl ...`.";

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// The cluster's `name` in the gateway's `[[kubernetes]]` config.
    #[arg(value_name = "CLUSTER")]
    pub cluster: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// A Claude Code PreToolUse/PostToolUse hook: reads the hook JSON on stdin, answers with a permission decision.
    #[command(long_about = HOOK_LONG_ABOUT)]
    ClaudeCode(ClaudeCodeHookArgs),
}

const HOOK_LONG_ABOUT: &str = "\
A Claude Code hook. Configure it for PreToolUse and PostToolUse (see the README's Agents section). On PreToolUse it maps the tool call to an action (Bash: shell.exec; Write/Edit/MultiEdit/NotebookEdit: file.write with a bounded diff; WebFetch: http.request on the URL's host; mcp__SERVER__TOOL: mcp.tool_call on SERVER/TOOL; anything else: claude_code.tool_call), asks the gateway, and prints hookSpecificOutput.permissionDecision: allow, or deny with a reason for the model. A pending call is waited on up to --wait seconds, then denied with `pending approval ID, ask again after it is approved`; the same call asked again finds the approval and goes through once. On PostToolUse it reports the outcome. When no decision can be had (gateway unreachable, bad input) it exits 2, which blocks the call.";

#[derive(Debug, Args)]
pub struct ClaudeCodeHookArgs {
    /// The resource for shell commands, file writes and other local tools (lowercase ASCII).
    #[arg(long, default_value = "claude-code", value_parser = parse_resource)]
    pub resource: String,
    /// Seconds to wait for a pending call before denying it as pending (keep below the hook's `timeout`).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub wait: u64,
    /// Where a call's request id is kept until its PostToolUse [default: $XDG_STATE_HOME or ~/.local/state, /countersign/claude-code].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

const MCP_LONG_ABOUT: &str = "\
Run an MCP server behind the approval loop. An MCP client (Claude Desktop, Claude Code, Cursor, an SDK) launches `countersign mcp -- <server command>` in place of the server: countersign starts the server as a child process and relays every message unchanged, except that each `tools/call` is first decided by the gateway as an action of kind `mcp.tool_call` on resource `<upstream>/<tool>` with the call's arguments as payload.

Allowed calls go through at once; denied ones get a tool result with isError naming the policy; pending ones wait for approval (with progress notifications when the client asked for them). The server and the agent key come from --server/--token or COUNTERSIGN_SERVER/COUNTERSIGN_TOKEN. The child's stderr passes through.";

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The name policies see in `<upstream>/<tool>` [default: the server program's name].
    #[arg(long, value_name = "NAME")]
    pub upstream_name: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// The MCP server command, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

const EXEC_LONG_ABOUT: &str = "\
Submit a command to the gateway as an action and run it only when it is allowed or approved.

The action's payload binds what decides what runs: the argv, the working directory (`cwd`), the program file that argv[0] resolves to through PATH (`program`, started as is after the approval, with no second lookup), PATH and any variable passed with --env (`env`), and with --stdin the standard input (`stdin`, `stdin_sha256`). Without --stdin the command reads /dev/null. Variables that make a shell, the dynamic linker or an interpreter run other code (BASH_ENV, ENV, LD_*, PYTHON*, PERL5*, RUBY*, NODE_OPTIONS, GIT_*, PAGER, EDITOR, PSQLRC, PS4, SHELLOPTS, IFS, …) are removed from its environment unless --env names them. Not bound: the contents of files, including the program file itself, scripts and files named on the command line, and rc files found through HOME.

While the request is pending, shows who was asked and a live status line; Ctrl-C cancels the request. Once running, the command's stdout and stderr stream through, a SHA-256 of its stdout is taken, and the outcome (exit code, digest) is reported to the gateway. Only exactly what was approved is ever run: the released request's payload must equal the submitted one.

The server and token come from --server/--token or COUNTERSIGN_SERVER/COUNTERSIGN_TOKEN; the token is an agent key (or a user token).";

/// Where the store and config live, for commands that work on the data
/// directory directly.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Data directory holding the SQLite store [default: ./countersign-data, or the config's server.data_dir].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: postgres://user:password@host:5432/dbname [or the config's database.url, or COUNTERSIGN_DATABASE_URL].
    #[arg(long, value_name = "URL", hide_default_value = true)]
    pub database: Option<String>,
}

/// How client commands reach the gateway.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Gateway URL.
    #[arg(long, env = "COUNTERSIGN_SERVER", default_value = "http://127.0.0.1:8470", value_name = "URL")]
    pub server: String,
    /// API token: an agent key (csa_…) or a personal user token (csu_…).
    #[arg(long, env = "COUNTERSIGN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// PEM CA certificate(s) that alone are trusted for an https gateway [default: the system's roots].
    #[arg(long, env = "COUNTERSIGN_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8470]; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory for the SQLite store [default: ./countersign-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of `.cedar` policy files [default: <data-dir>/policies, created with a starter policy].
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: postgres://user:password@host:5432/dbname [or the config's database.url, or COUNTERSIGN_DATABASE_URL].
    #[arg(long, value_name = "URL", hide_default_value = true)]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print their personal API token (shown once).
    Add {
        /// User name: letters, digits, `.`, `_`, `-`, `@`; at most 64 characters.
        name: String,
        /// Email address; identities with the same email are one person.
        #[arg(long)]
        email: String,
        /// Group membership (repeatable), e.g. `--group sre --group dba`.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a user's token at once, and their open requests.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create an agent and print its API key (shown once).
    Add {
        /// Agent name: letters, digits, `.`, `_`, `-`, `@`; at most 64 characters.
        name: String,
        /// The user responsible for the agent (must exist); they may not approve its requests.
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// Group membership (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List agents.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an agent's key at once; its open requests become `revoked`.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a directory of `.cedar` files (and optional schema).
    #[command(
        long_about = "Validate a directory of `.cedar` files (and its optional schema). Prints `ok: N policies, hash sha256:…`, or each problem as `file:line:col: message` and exits 1."
    )]
    Check {
        /// Policy directory.
        dir: PathBuf,
    },
    /// Run sample requests against a policy directory and check their expectations.
    #[command(
        long_about = "Run the cases in CASES (a JSON file of sample requests with expectations) against the policies in DIR. Prints each case's outcome with its determining policies and exits 1 when any case does not match its `expect`."
    )]
    Test {
        /// Policy directory.
        dir: PathBuf,
        /// JSON file of test cases.
        cases: PathBuf,
    },
    /// Replay the actions the audit log recorded against a candidate policy directory and report what would change.
    #[command(long_about = SIMULATE_LONG_ABOUT, after_long_help = SIMULATE_EXIT_CODES)]
    Simulate {
        /// Candidate policy directory.
        dir: PathBuf,
        /// Replay actions submitted since this long ago (`30d`, `12h`) or since this time (RFC 3339).
        #[arg(long, value_name = "AGE|TIME", default_value = "30d", value_parser = parse_since)]
        since: Since,
        #[command(flatten)]
        store: StoreArgs,
    },
}

const SIMULATE_LONG_ABOUT: &str = "\
Replay the actions the audit log recorded against the candidate policies in DIR, and report what would change: allowed, pending or denied becoming another of them, or other approver groups or quorum. The report counts changes by kind and by policy (the policies that determine one decision and not the other, or both with other approvers) and shows the first few examples of each kind (request id, kind, resource, principal, the start of the payload).

Each action is decided as the gateway decides it: facts are derived again from the recorded payload (SQL in the dialect configured for the resource), and the principal has the groups, owner and email the log's identity events gave it at that point (or, for identities the log never describes, what the store holds now). The whole log is read; only actions submitted since --since are replayed. Events that do not read are reported and skipped. An invalid candidate set is reported as `policy check` reports it (`file:line:col: message`).

The store is the one `audit verify` reads: the data directory, or PostgreSQL with --database. --output json prints the whole report as one JSON object.";

const SIMULATE_EXIT_CODES: &str = "\
Exit codes:
  0  no recorded decision would change
  1  error (the candidate policies do not load, the store cannot be read)
  2  usage error
  5  some recorded decisions would change (see the report)";

/// Where a simulation starts: an age back from now, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Ago(std::time::Duration),
    At(countersign_core::Timestamp),
}

fn parse_since(text: &str) -> Result<Since, String> {
    if let Ok(age) = countersign_core::parse_duration(text) {
        return Ok(Since::Ago(age));
    }
    countersign_core::Timestamp::parse_rfc3339(text)
        .map(Since::At)
        .map_err(|_| format!("`{text}` is neither an age such as `30d` nor an RFC 3339 time"))
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole hash chain; names the first bad sequence number.
    /// With --since-checkpoint, also prove the log extends a checkpoint
    /// saved earlier (detects truncation and rewritten history).
    Verify {
        /// A signed checkpoint saved earlier (from `GET /v1/audit/checkpoint`).
        #[arg(long, value_name = "FILE")]
        since_checkpoint: Option<PathBuf>,
        /// The verifier key (vkey) that signed it [default: the configured key].
        #[arg(long, value_name = "VKEY", requires = "since_checkpoint")]
        key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the verifier key (C2SP vkey) of the audit checkpoints.
    Key {
        /// Instead, print a new private key named NAME (the log's origin) for
        /// `[audit] key_file` or COUNTERSIGN_AUDIT_KEY; its vkey goes to stderr.
        #[arg(long, value_name = "NAME")]
        generate: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a self-contained proof (C2SP tlog-proof) of a request's events:
    /// the events, their inclusion proofs and the latest signed checkpoint.
    Prove {
        /// The request id.
        id: String,
        /// The file to write [default: <id>.tlog-proof; `-` for stdout].
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a proof file offline, with no gateway and no store.
    VerifyProof {
        /// The file `audit prove` wrote.
        file: PathBuf,
        /// The log's verifier key (from `countersign audit key`).
        #[arg(long, value_name = "VKEY")]
        key: String,
    },
    /// Write audit events to stdout.
    Export {
        /// Only events at or after this time (RFC 3339, e.g. 2026-01-02T03:04:05Z).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<countersign_core::Timestamp>,
        /// Only events before this time (RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<countersign_core::Timestamp>,
        /// jsonl: one JSON event per line; csv: seq,time,actor,type,body,prev_hash,hash.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write an evidence pack for auditors covering a period.
    #[command(
        long_about = "Write an evidence pack for a period: every privileged action with its requester, on-behalf-of, approvers, times, policy set hash and outcome; refused attempts counted; time to decision; expiries and revocations; policy changes; the log's verification; and the SOC 2, ISO 27001 and NIST 800-53 controls each piece of evidence answers. The whole log is verified; only events in the period are reported. Exits 1 when the log does not verify (the pack is still written, saying so)."
    )]
    Report {
        /// Only events at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<countersign_core::Timestamp>,
        /// Only events before this time (RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<countersign_core::Timestamp>,
        /// html: one self-contained, printable page; json: the same facts as data.
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Write the pack to FILE instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration (file plus COUNTERSIGN_* variables) without starting the server.
    Check {
        /// TOML config file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Action kind, e.g. `shell.exec`: lowercase `family.verb`. Whatever the
    /// kind, the command's facts are read from it; kinds the policy does not
    /// list as routine wait for approval.
    #[arg(long, default_value = "shell.exec", value_parser = parse_kind)]
    pub kind: String,
    /// Where the action lands, e.g. `prod-web` (lowercase ASCII).
    #[arg(long, value_parser = parse_resource)]
    pub resource: String,
    /// Why this needs doing; shown to approvers.
    #[arg(long, value_name = "TEXT")]
    pub justification: Option<String>,
    /// Label for policies to match on (repeatable), e.g. `--label pii`.
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// The user this action is done for (who then may not approve it).
    #[arg(long, value_name = "USER", value_parser = parse_identity)]
    pub on_behalf_of: Option<String>,
    /// Extra context for policies, a JSON object, e.g. '{"ticket": "OPS-42"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub context_json: Option<serde_json::Map<String, serde_json::Value>>,
    /// Read standard input whole first (at most 256 KiB), put it (and its SHA-256) in the action for the policy and the approvers, and feed exactly those bytes to the command. Without it the command's standard input is /dev/null.
    #[arg(long)]
    pub stdin: bool,
    /// Pass this environment variable, which is otherwise kept from the command because it changes what runs (BASH_ENV, LD_PRELOAD, PYTHONPATH, GIT_*, PAGER, …), and show its value in the action (repeatable).
    #[arg(long = "env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PendingArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct VoteArgs {
    /// Request id.
    pub id: String,
    /// A note recorded with the vote.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Request id.
    pub id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn parse_time(text: &str) -> Result<countersign_core::Timestamp, String> {
    countersign_core::Timestamp::parse_rfc3339(text).map_err(|e| e.to_string())
}

/// The gateway's own rules for the names an action claims, checked here
/// too so that a bad one is a usage error before anything is submitted.
fn parse_kind(text: &str) -> Result<String, String> {
    countersign_core::names::check_kind(text).map(|()| text.to_owned()).map_err(|e| e.to_string())
}

fn parse_resource(text: &str) -> Result<String, String> {
    countersign_core::names::check_resource(text).map(|()| text.to_owned()).map_err(|e| e.to_string())
}

fn parse_identity(text: &str) -> Result<String, String> {
    countersign_core::names::check_identity("on_behalf_of", text).map(|()| text.to_owned()).map_err(|e| e.to_string())
}

fn parse_json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("expected a JSON object such as '{\"ticket\": \"OPS-42\"}'".to_owned()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_needs_the_command_after_dashes() {
        let cli = Cli::try_parse_from(["countersign", "exec", "--resource", "r", "--", "ls", "-l"]).unwrap();
        match cli.command {
            Command::Exec(args) => assert_eq!(args.command, ["ls", "-l"]),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["countersign", "exec", "--resource", "r"]).is_err());
    }

    #[test]
    fn exec_refuses_lookalike_names_before_submitting() {
        let parse = |flag: &str, value: &str| {
            let resource = if flag == "--resource" { value } else { "staging-web" };
            let mut args = vec!["countersign", "exec", "--resource", resource];
            if flag != "--resource" {
                args.extend([flag, value]);
            }
            args.extend(["--", "ls"]);
            Cli::try_parse_from(args)
        };
        assert!(parse("--kind", "run").is_ok());
        assert!(parse("--resource", "prod-web").is_ok());
        assert!(parse("--on-behalf-of", "carol").is_ok());
        for (flag, value) in [
            ("--kind", "Shell.exec"),
            ("--kind", "shell.exec\u{200b}"),
            ("--resource", "PROD-web"),
            ("--resource", " prod-web"),
            ("--resource", "prod\u{200b}-web"),
            ("--resource", "ｐrod-web"),
            ("--on-behalf-of", "carol "),
            ("--on-behalf-of", "carol\u{200b}"),
        ] {
            assert!(parse(flag, value).is_err(), "{flag} {value:?}");
        }
    }

    #[test]
    fn since_is_an_age_or_a_time() {
        assert_eq!(parse_since("30d"), Ok(Since::Ago(std::time::Duration::from_secs(30 * 86_400))));
        assert_eq!(
            parse_since("2026-01-02T03:04:05Z"),
            Ok(Since::At(countersign_core::Timestamp::parse_rfc3339("2026-01-02T03:04:05Z").unwrap()))
        );
        assert!(parse_since("yesterday").is_err());
        let cli = Cli::try_parse_from(["countersign", "policy", "simulate", "p", "--data-dir", "d"]).unwrap();
        match cli.command {
            Command::Policy(PolicyCommand::Simulate { since, store, .. }) => {
                assert_eq!(since, Since::Ago(std::time::Duration::from_secs(30 * 86_400)));
                assert_eq!(store.data_dir.as_deref(), Some(std::path::Path::new("d")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn context_must_be_an_object() {
        assert!(parse_json_object("{\"a\": 1}").is_ok());
        assert!(parse_json_object("[1]").is_err());
        assert!(parse_json_object("{").is_err());
    }
}
