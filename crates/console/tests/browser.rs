//! The web console end to end in headless Chromium against a real
//! OpenID provider: logging in, seeing a pending request (live), approving
//! it, self-approval refused (the button and the gateway), step-up forcing
//! a fresh login, the auditor's pages, a phone-sized window, and logging
//! out. The browser script is `tests/console-peers/e2e.mjs`.
//!
//! Set `COUNTERSIGN_SCREENSHOTS=DIR` to keep the screenshots (the README's
//! come from `COUNTERSIGN_SCREENSHOTS=$PWD/docs/screenshots`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_end_to_end_in_chromium() {
    let (idp, gateway) = support::start("step_up_max_age = \"3s\"").await;
    let shots = std::env::var("COUNTERSIGN_SCREENSHOTS").ok();
    let dir = support::peers();
    let gateway_url = gateway.url.clone();
    let agent_key = gateway.token("deploy-bot").to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("node");
        command
            .arg(dir.join("e2e.mjs"))
            .current_dir(&dir)
            .env("GATEWAY", &gateway_url)
            .env("AGENT_KEY", &agent_key)
            .env("STEP_UP_SECS", "3");
        if let Some(shots) = shots {
            std::fs::create_dir_all(&shots).unwrap();
            command.env("SHOTS", shots);
        }
        command.output().expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("e2e: all checks passed"),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    drop(idp);

    // What the browser did is in the audit log, and the log verifies.
    let events = gateway.store.audit_events(0, 100_000).await.unwrap();
    countersign_audit::verify_all(&events).unwrap();
    let refused_self = events.iter().any(|e| e.kind == "attempt.refused" && e.body.contains("self_approval"));
    assert!(refused_self, "the forged self-approval is audited");
    let logins = events.iter().filter(|e| e.kind == "console.login").count();
    assert!(logins >= 5, "logins are audited ({logins})");
    let stepped_up = events
        .iter()
        .any(|e| e.kind == "approval.accepted" && e.body.contains("idp_session") && e.body.contains("auth_time"));
    assert!(stepped_up, "the step-up approval records the fresh login");
}
