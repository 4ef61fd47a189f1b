//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` into a
//! temporary directory, `pg_ctl start` on a free loopback port (and a Unix
//! socket in the same directory), trust authentication, and a clean stop.
//!
//! `initdb` refuses to run as root, so as root every PostgreSQL command
//! runs as `nobody` (through `runuser`), in a directory handed to it.
//!
//! [`TempCluster::shared`] gives one cluster per test process, with a
//! watchdog process that stops it and removes its files as soon as the
//! test process exits, however it exits. Tests take a fresh database each
//! with [`TempCluster::create_database`].

#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The statement behind `Store::open_requests_by_fingerprint`
/// (`$1` fingerprint, `$2` and `$3` the requester's kind and name, `$4`
/// now in milliseconds, `$5` the limit), for tests that check its plan.
pub const OPEN_BY_FINGERPRINT: &str = crate::requests::OPEN_BY_FINGERPRINT;

/// Why a cluster could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found; install PostgreSQL 15 \
         (scripts/setup-test-deps does) or set TEST_PG_BIN to their directory"
    )]
    NotInstalled,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("cannot prepare the cluster directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot create a database: {0}")]
    Database(String),
}

/// How the throwaway server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`: for tests, where a machine crash loses nothing of value.
    Fast,
    /// Stock settings (`fsync=on`): for benchmarks that must count the WAL flush.
    Durable,
}

/// A running throwaway cluster. Dropping it stops the server and removes
/// its files.
#[derive(Debug)]
pub struct TempCluster {
    root: PathBuf,
    port: u16,
    bin: PathBuf,
    run_as: Option<&'static str>,
    durability: Durability,
    tls: bool,
    keep_on_drop: bool,
}

static SHARED: OnceLock<Result<TempCluster, String>> = OnceLock::new();
/// Ports held by this process's clusters, stopped ones included: a stopped
/// cluster's port looks free to the OS, and a cluster started meanwhile by
/// another test must not take it from under `start_again`.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
static DATABASES: AtomicU64 = AtomicU64::new(0);

impl TempCluster {
    /// Starts a new cluster for tests.
    pub fn start() -> Result<Self, ClusterError> {
        Self::start_with(Durability::Fast)
    }

    /// Starts a new cluster.
    pub fn start_with(durability: Durability) -> Result<Self, ClusterError> {
        Self::start_inner(durability, false)
    }

    /// Starts a new cluster that also accepts TLS, with a certificate for
    /// `127.0.0.1` issued by a throwaway CA (see [`ca_file`](Self::ca_file)).
    /// Needs the `openssl` command.
    pub fn start_with_tls() -> Result<Self, ClusterError> {
        Self::start_inner(Durability::Fast, true)
    }

    /// The throwaway CA's certificate (PEM), for a cluster started with TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.then(|| self.root.join("ca.pem"))
    }

    fn start_inner(durability: Durability, tls: bool) -> Result<Self, ClusterError> {
        let bin = find_bin().ok_or(ClusterError::NotInstalled)?;
        let run_as = if is_root() { Some("nobody") } else { None };
        let root = tempfile::Builder::new().prefix("countersign-pg-").tempdir()?.keep();
        let mut cluster = Self { root, port: 0, bin, run_as, durability, tls, keep_on_drop: false };
        if tls {
            cluster.make_certificates()?;
        }
        if run_as.is_some() {
            cluster.hand_over(&cluster.root)?;
        }
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                // Most likely someone took the port in between: try another.
                Err(e) => {
                    release_port(cluster.port);
                    cluster.port = 0;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(ClusterError::Command { what: "pg_ctl start".into(), detail: "no attempt".into() }))
    }

    /// One cluster for the whole test process, stopped and removed by a
    /// watchdog when the process exits.
    pub fn shared() -> Result<&'static TempCluster, ClusterError> {
        let shared = SHARED.get_or_init(|| {
            let mut cluster = Self::start().map_err(|e| e.to_string())?;
            cluster.spawn_watchdog().map_err(|e| e.to_string())?;
            // The watchdog owns cleanup now (statics are never dropped anyway).
            cluster.keep_on_drop = true;
            Ok(cluster)
        });
        shared
            .as_ref()
            .map_err(|e| ClusterError::Command { what: "starting the shared cluster".into(), detail: e.clone() })
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `dbname`, as superuser `postgres`.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_database(&self) -> Result<String, ClusterError> {
        let n = DATABASES.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}_{:08x}", std::process::id(), rand::random::<u32>());
        let (client, connection) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .map_err(|e| ClusterError::Database(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let created = client.batch_execute(&format!("CREATE DATABASE {name}")).await;
        drop(client);
        let _ = driver.await;
        created.map_err(|e| ClusterError::Database(e.to_string()))?;
        Ok(self.url(&name))
    }

    /// Creates login role `role` with `password` (stored as a SCRAM-SHA-256
    /// verifier, PostgreSQL's default) and makes TCP logins as it prove
    /// the password; everyone else stays trusted.
    pub async fn require_password(&self, role: &str, password: &str) -> Result<(), ClusterError> {
        let (client, connection) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .map_err(|e| ClusterError::Database(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let created = client
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'"
            ))
            .await;
        drop(client);
        let _ = driver.await;
        created.map_err(|e| ClusterError::Database(e.to_string()))?;
        let hba = self.data().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba)?;
        std::fs::write(&hba, format!("host all {role} 127.0.0.1/32 scram-sha-256\n{rules}"))?;
        self.pg("pg_ctl", &["-D", &self.data().display().to_string(), "reload"])?;
        // The postmaster rereads the file on SIGHUP, a moment after pg_ctl returns.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(())
    }

    /// Stops the server (fast shutdown: connections are cut, nothing is lost).
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.pg("pg_ctl", &["-D", &self.data().display().to_string(), "-w", "-m", "fast", "stop"])
    }

    /// Starts the server again on the same port after [`stop`](Self::stop).
    pub fn start_again(&self) -> Result<(), ClusterError> {
        self.start_server()
    }

    /// Freezes the server (SIGSTOP to the postmaster and its children), as
    /// a hung host or a network cut looks to clients: connections stay
    /// open, nothing answers. [`thaw`](Self::thaw) undoes it.
    pub fn freeze(&self) -> Result<(), ClusterError> {
        self.signal_all("STOP")
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) -> Result<(), ClusterError> {
        self.signal_all("CONT")
    }

    /// Sends `signal` to this cluster's postmaster and its children (found
    /// by parent pid in /proc), and to nothing else. The postmaster is
    /// stopped first (so it forks no one meanwhile) and continued last (so
    /// it cannot reap a child between the scan and the signal); a child
    /// that has exited by then is simply gone.
    fn signal_all(&self, signal: &str) -> Result<(), ClusterError> {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid"))?;
        let postmaster: u32 = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| ClusterError::Command { what: "reading postmaster.pid".into(), detail: pid_file.clone() })?;
        let send = |pid: &str| Command::new("kill").arg(format!("-{signal}")).arg(pid).output();
        let postmaster_first = signal == "STOP";
        if postmaster_first {
            send_checked(send(&postmaster.to_string())?, signal)?;
        }
        for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid …`; comm may hold spaces, so split after ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(postmaster.to_string().as_str()) {
                let _ = send(&entry.file_name().to_string_lossy());
            }
        }
        if !postmaster_first {
            send_checked(send(&postmaster.to_string())?, signal)?;
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn start_server(&self) -> Result<(), ClusterError> {
        let fsync = match self.durability {
            Durability::Fast => "-c fsync=off -c full_page_writes=off",
            Durability::Durable => "-c fsync=on",
        };
        let tls = if self.tls {
            format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.root.join("server.crt").display(),
                self.root.join("server.key").display()
            )
        } else {
            String::new()
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB {fsync}{tls}",
            self.port,
            self.root.display()
        );
        let log = self.root.join("server.log").display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &self.data().display().to_string(), "-l", &log, "-w", "-t", "60", "-o", &options, "start"],
        )
    }

    /// Runs one of PostgreSQL's programs, as `nobody` when we are root.
    fn pg(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command.args(args).current_dir(&self.root).stdin(Stdio::null());
        let out = command.output()?;
        if out.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if let Ok(log) = std::fs::read_to_string(self.root.join("server.log")) {
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            detail.push_str("\nserver log (newest first):\n");
            detail.push_str(&tail.join("\n"));
        }
        Err(ClusterError::Command { what: format!("{program} {}", args.join(" ")), detail })
    }

    /// A CA and a server certificate for 127.0.0.1 signed by it.
    fn make_certificates(&self) -> Result<(), ClusterError> {
        let ext = self.root.join("server.ext");
        std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")?;
        let root = self.root.display().to_string();
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=countersign test CA",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl").args(args).current_dir(&root).stdin(Stdio::null()).output()?;
            if !out.status.success() {
                return Err(ClusterError::Command {
                    what: format!("openssl {}", args.join(" ")),
                    detail: String::from_utf8_lossy(&out.stderr).into(),
                });
            }
        }
        // PostgreSQL refuses a key others can read.
        let key = self.root.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        self.hand_over(&key)
    }

    fn hand_over(&self, dir: &Path) -> Result<(), ClusterError> {
        let Some(user) = self.run_as else { return Ok(()) };
        let out = Command::new("chown").arg("-R").arg(user).arg(dir).output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClusterError::Command { what: "chown".into(), detail: String::from_utf8_lossy(&out.stderr).into() })
        }
    }

    /// A process that waits for this one to exit, then stops the server
    /// and removes the files.
    fn spawn_watchdog(&self) -> Result<(), ClusterError> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
            pid = std::process::id(),
            stop = self.stop_command(),
            root = self.root.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }

    fn stop_command(&self) -> String {
        let pg_ctl =
            format!("'{}' -D '{}' -m immediate stop", self.bin.join("pg_ctl").display(), self.data().display());
        match self.run_as {
            Some(user) => format!("runuser -u {user} -- {pg_ctl}"),
            None => pg_ctl,
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if self.keep_on_drop {
            return;
        }
        // A test that failed while the server was frozen must not leave it
        // frozen: a stopped postmaster would ignore the stop below.
        let _ = self.thaw();
        let _ = Command::new("sh").arg("-c").arg(format!("{} >/dev/null 2>&1", self.stop_command())).status();
        let _ = std::fs::remove_dir_all(&self.root);
        release_port(self.port);
    }
}

fn send_checked(out: std::process::Output, signal: &str) -> Result<(), ClusterError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Command {
            what: format!("kill -{signal}"),
            detail: String::from_utf8_lossy(&out.stderr).into(),
        })
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A loopback port free now and not held by another cluster of this process.
fn free_port() -> Result<u16, ClusterError> {
    let mut held = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if held.insert(port) {
            return Ok(port);
        }
    }
    Err(ClusterError::Command { what: "finding a free port".into(), detail: "every port offered was taken".into() })
}

fn release_port(port: u16) {
    PORTS.lock().unwrap_or_else(PoisonError::into_inner).remove(&port);
}

/// PostgreSQL's server programs: `$TEST_PG_BIN`, else version 15,
/// else the newest installed under `/usr/lib/postgresql`.
fn find_bin() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("TEST_PG_BIN").map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    let preferred = PathBuf::from("/usr/lib/postgresql/15/bin");
    if has_initdb(&preferred) {
        return Some(preferred);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}
