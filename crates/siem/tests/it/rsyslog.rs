//! Syslog into rsyslog from Debian, run unprivileged with its own config:
//! imtcp on a loopback port (octet-counted RFC 5424), imtcp with the gtls
//! driver (RFC 5425, a certificate from a test CA), and imudp; omfile
//! writes each raw message to a file, which the test reads back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_audit::AuditEvent;
use serde_json::Value;

use crate::support::{self, assert_all_arrived, by_seq, free_port, peer, wait_for, CHECKPOINT};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
    tcp: u16,
    tls: u16,
    udp: u16,
}

impl Rsyslog {
    fn new(dir: &Path) -> Self {
        peer(RSYSLOGD);
        let pki = countersign_testkit::tls::pem_pki(&["localhost"]);
        std::fs::write(dir.join("ca.pem"), &pki.ca).unwrap();
        std::fs::write(dir.join("cert.pem"), &pki.cert).unwrap();
        std::fs::write(dir.join("key.pem"), &pki.key).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let me = Self { child: None, dir: dir.to_owned(), tcp: free_port(), tls: free_port(), udp };
        let d = dir.display();
        let conf = format!(
            r#"global(workDirectory="{d}" maxMessageSize="256k"
       defaultNetstreamDriverCAFile="{d}/ca.pem" defaultNetstreamDriverCertFile="{d}/cert.pem"
       defaultNetstreamDriverKeyFile="{d}/key.pem")
module(load="imtcp" maxSessions="50")
module(load="imudp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="tcp") {{ action(type="omfile" file="{d}/tcp.log" template="raw") }}
ruleset(name="tls") {{ action(type="omfile" file="{d}/tls.log" template="raw") }}
ruleset(name="udp") {{ action(type="omfile" file="{d}/udp.log" template="raw") }}
input(type="imtcp" address="127.0.0.1" port="{}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{}" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" address="127.0.0.1" port="{}" ruleset="udp")
"#,
            me.tcp, me.tls, me.udp
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        me
    }

    fn start(&mut self) {
        let child = Command::new(RSYSLOGD)
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        countersign_testkit::wait::until(Duration::from_secs(30), Duration::from_millis(50), || {
            for port in [self.tcp, self.tls] {
                std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("rsyslog on {port}: {e}"))?;
            }
            Ok(())
        });
    }

    /// Stops it as an administrator would (SIGTERM: it closes its files).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A parsed RFC 5424 message: (pri, msgid, seq, hash, msg).
fn parse(line: &str) -> (u32, String, u64, String, String) {
    let rest = line.strip_prefix('<').unwrap_or_else(|| panic!("not RFC 5424: {line}"));
    let (pri, rest) = rest.split_once(">1 ").unwrap();
    let mut fields = rest.splitn(6, ' ');
    let time = fields.next().unwrap();
    assert!(countersign_core::Timestamp::parse_rfc3339(time).is_ok(), "{time}");
    let _host = fields.next().unwrap();
    assert_eq!(fields.next().unwrap(), "countersign");
    assert_eq!(fields.next().unwrap(), "-");
    let msgid = fields.next().unwrap().to_owned();
    let rest = fields.next().unwrap();
    let sd = rest.strip_prefix("[countersign@32473 ").unwrap();
    let (sd, msg) = sd.split_once("] ").unwrap();
    let param = |name: &str| sd.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned();
    (pri.parse().unwrap(), msgid, param("seq").parse().unwrap(), param("hash"), msg.to_owned())
}

fn check_json(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .map(|line| {
            let (_, msgid, seq, hash, msg) = parse(line);
            let json: Value = serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{e}: {msg}"));
            assert_eq!((json["seq"].as_u64().unwrap(), json["hash"].as_str().unwrap()), (seq, hash.as_str()));
            assert_eq!(json["type"], msgid);
            assert_eq!(json["checkpoint"], CHECKPOINT);
            (seq, hash)
        })
        .collect()
}

fn check_cef(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .map(|line| {
            let (pri, msgid, seq, hash, msg) = parse(line);
            assert_eq!(pri / 8, 13, "facility log audit: {line}");
            let header: Vec<&str> = msg.splitn(8, '|').collect();
            assert_eq!(&header[..3], &["CEF:0", "countersign", "countersign"]);
            assert_eq!(header[4], msgid);
            assert!(msg.contains(&format!("cn1={seq} ")) && msg.contains(&format!("cs1={hash} ")), "{msg}");
            assert!(msg.contains("cs4Label=checkpoint cs4=countersign.example/audit\\n42\\n"), "{msg}");
            (seq, hash)
        })
        .collect()
}

async fn until_all(rsyslog: &Rsyslog, file: &str, events: &[AuditEvent]) {
    wait_for(&format!("every event in rsyslog's {file}"), 120, || async {
        let seqs: std::collections::BTreeSet<u64> = rsyslog.lines(file).iter().map(|l| parse(l).2).collect();
        events.iter().all(|e| seqs.contains(&e.seq))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_writes_every_event_over_tcp_tls_and_udp() {
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::new(dir.path());
    rsyslog.start();
    let config = format!(
        "[[siem]]\nname = \"tcp\"\ntype = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{}\"\nformat = \"json\"\n\n\
         [[siem]]\nname = \"tls\"\ntype = \"syslog\"\ntransport = \"tls\"\naddress = \"127.0.0.1:{}\"\nserver_name = \"localhost\"\nca_file = \"{}/ca.pem\"\nformat = \"cef\"\n\n\
         [[siem]]\nname = \"udp\"\ntype = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:{}\"\nformat = \"cef\"\nevents = [\"action.*\", \"approval.*\"]\n",
        rsyslog.tcp,
        rsyslog.tls,
        dir.path().display(),
        rsyslog.udp
    );
    let (gateway, _sinks) = support::gateway(&config).await;
    let events = support::append_golden(&gateway.state).await;

    until_all(&rsyslog, "tcp.log", &events).await;
    assert_all_arrived(&by_seq(check_json(&rsyslog.lines("tcp.log"))), &events);
    until_all(&rsyslog, "tls.log", &events).await;
    assert_all_arrived(&by_seq(check_cef(&rsyslog.lines("tls.log"))), &events);
    // UDP carries only what its filter admits.
    let wanted: Vec<AuditEvent> =
        events.iter().filter(|e| e.kind.starts_with("action.") || e.kind.starts_with("approval.")).cloned().collect();
    until_all(&rsyslog, "udp.log", &wanted).await;
    assert_all_arrived(&by_seq(check_cef(&rsyslog.lines("udp.log"))), &wanted);
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_down_then_restarted_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::new(dir.path());
    let config = format!(
        "[[siem]]\nname = \"tcp\"\ntype = \"syslog\"\naddress = \"127.0.0.1:{}\"\n\n\
         [[siem]]\nname = \"tls\"\ntype = \"syslog\"\ntransport = \"tls\"\naddress = \"localhost:{}\"\nca_file = \"{}/ca.pem\"\n",
        rsyslog.tcp,
        rsyslog.tls,
        dir.path().display()
    );
    // rsyslog is not running yet: the sinks retry with backoff.
    let (gateway, _sinks) = support::gateway(&config).await;
    let first = support::append_golden(&gateway.state).await;
    wait_for("both sinks to report rsyslog down", 60, || async {
        let m = gateway.state.metrics().render();
        m.contains("countersign_channel_up{channel=\"siem-tcp\"} 0")
            && m.contains("countersign_channel_up{channel=\"siem-tls\"} 0")
    })
    .await;
    rsyslog.start();
    until_all(&rsyslog, "tcp.log", &first).await;
    until_all(&rsyslog, "tls.log", &first).await;

    // Restarted while the sinks hold open connections: they notice the
    // close and reconnect rather than write into the void.
    rsyslog.stop();
    let second = support::append_golden(&gateway.state).await;
    rsyslog.start();
    let all: Vec<AuditEvent> = first.iter().chain(&second).cloned().collect();
    until_all(&rsyslog, "tcp.log", &all).await;
    until_all(&rsyslog, "tls.log", &all).await;
    assert_all_arrived(&by_seq(check_json(&rsyslog.lines("tcp.log"))), &all);
    assert_all_arrived(&by_seq(check_json(&rsyslog.lines("tls.log"))), &all);
}
