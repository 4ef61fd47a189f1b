//! The Python SDK (`sdk/python`): its pytest suite — the typed client,
//! `guard()`, and the OpenAI Agents, LangChain/LangGraph and Pydantic AI
//! adapters driven by each framework's real package and offline model —
//! against this build's `countersign serve` (the suite starts its own
//! gateways on free loopback ports). The frameworks live in
//! `.venv-sdk-python`, installed by `scripts/setup.d/sdk-python.sh`.
//!
//! Without that venv the test is skipped with a message; with
//! `REQUIRE_TEST_PEERS` set (CI, after the setup step) it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn python_sdk_suite_passes_against_the_real_gateway() {
    let root = root();
    let python = root.join(".venv-sdk-python/bin/python");
    let installed = python.is_file()
        && Command::new(&python)
            .args(["-c", "import pytest, httpx, agents, langchain, langgraph, pydantic_ai"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !installed {
        let why = "the Python SDK's test peers are missing (.venv-sdk-python): run scripts/setup.d/sdk-python.sh \
                   (or scripts/setup-test-deps)";
        assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let mut command = Command::new(&python);
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(root.join("sdk/python"))
        // The binary under test; not a COUNTERSIGN_ variable (the gateway reads those).
        .env("CS_SDK_BIN", env!("CARGO_BIN_EXE_countersign"))
        .env("NO_COLOR", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("COUNTERSIGN_") || key == "OPENAI_API_KEY" {
            command.env_remove(key);
        }
    }
    let output = command.output().expect("run pytest");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the Python SDK suite failed:\n{text}");
    // A run that collected nothing is no pass.
    assert!(text.contains(" passed"), "pytest ran no tests:\n{text}");
    assert!(!text.contains(" skipped"), "pytest skipped tests:\n{text}");
    eprintln!("{text}");
}
