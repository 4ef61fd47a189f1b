//! `psql` beyond one statement: `\copy` and `COPY` in both directions
//! (each decided as a statement, the rows streamed), and scripts with
//! `\set ON_ERROR_STOP`, where a refusal must behave as any error does.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use crate::support::Harness;

/// Runs `psql` on `conninfo` with `args`, feeding it `stdin`.
pub async fn psql(conninfo: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new("psql")
        .arg(conninfo)
        .args(["-X", "-v", "VERBOSITY=verbose"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn copy_to_stdout_is_decided_as_a_statement_and_streams_the_rows() {
    let h = Harness::start().await;
    let ci = h.conninfo("ci-bot");
    for command in [r"\copy orders to stdout", "COPY orders TO STDOUT"] {
        let out = psql(&ci, &["-c", command], "").await;
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "1\tapple\n2\tpear\n3\tfig\n", "{command}");
    }
    let requests = h.requests().await;
    let copies: Vec<_> = requests
        .iter()
        .filter(|r| {
            r["payload"]["statement"].as_str().is_some_and(|s| s.starts_with("COPY") && s.contains("TO STDOUT"))
        })
        .collect();
    assert_eq!(copies.len(), 2, "{requests:?}");
    assert!(copies.iter().all(|r| r["status"] == "allowed"), "{copies:?}");
    countersign_testkit::wait::eventually("the outcomes are recorded", || async {
        let requests = h.requests().await;
        requests
            .iter()
            .filter(|r| r["payload"]["statement"].as_str().is_some_and(|s| s.starts_with("COPY")))
            .all(|r| r["outcome"]["summary"].as_str().is_some_and(|s| s.starts_with("COPY 3")))
    })
    .await;

    // `bot` may only read, and COPY is not a read the policy knows safe.
    let out = psql(&h.conninfo("bot"), &["-c", r"\copy orders to stdout"], "").await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ERROR:  42501"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "no rows: {}", text(&out.stdout));
}

#[tokio::test]
async fn copy_from_stdin_is_decided_and_streams_the_rows_in() {
    let h = Harness::start().await;
    let ci = h.conninfo("ci-bot");
    let out = psql(&ci, &["-c", r"\copy orders from stdin"], "4\tkiwi\n5\tlime\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "COPY 2");
    // The data inline in a script, after the statement.
    let script = "COPY orders FROM STDIN;\n6\tplum\n\\.\nSELECT count(*) FROM orders;\n";
    let out = psql(&ci, &["-At", "-v", "ON_ERROR_STOP=1", "-f", "-"], script).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "COPY 1\n6\n");
    assert_eq!(h.count().await, 6);

    // Refused before any row is sent: nothing is written.
    let out = psql(&h.conninfo("bot"), &["-c", r"\copy orders from stdin"], "7\tdate\n").await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ERROR:  42501"), "{}", text(&out.stderr));
    assert_eq!(h.count().await, 6);
}

#[tokio::test]
async fn on_error_stop_ends_a_script_at_a_refusal() {
    let h = Harness::start().await;
    let ci = h.conninfo("ci-bot");
    let script = |stop: &str| {
        format!(
            "\\set ON_ERROR_STOP {stop}\nSELECT 'before';\nDROP TABLE orders;\nINSERT INTO orders VALUES (9, 'late');\nSELECT 'after';\n"
        )
    };
    let out = psql(&ci, &["-At", "-f", "-"], &script("on")).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "psql stops with 3 on a script error: {stderr}");
    assert!(stderr.contains("ERROR:  42501") && stderr.contains("no-drop"), "{stderr}");
    assert_eq!(stdout, "before\n");
    assert_eq!(h.count().await, 3, "the statements after the refusal did not run");

    // Without it, the refusal is reported and the script goes on.
    let out = psql(&ci, &["-At", "-f", "-"], &script("off")).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ERROR:  42501"), "{stderr}");
    assert_eq!(stdout, "before\nINSERT 0 1\nafter\n");
    assert_eq!(h.count().await, 4);
}
