//! The Python SDK (`sdk/python`): its pytest suite — the typed client,
//! `guard()`, and the OpenAI Agents, LangChain/LangGraph and Pydantic AI
//! adapters driven by each framework's real package and offline model —
//! against this build's `countersign serve` (the suite starts its own
//! gateways on free loopback ports). The frameworks live in
//! `.venv-sdk-python`, installed by `scripts/setup.d/sdk-python.sh`.
//!
//! Also: the package's wheel, built with its own backend, installs into a
//! fresh venv (offline, its dependencies from the setup step's wheelhouse)
//! and imports there; and `mypy --strict` passes over the package.
//!
//! Without that venv the tests are skipped with a message; with
//! `REQUIRE_TEST_PEERS` set (CI, after the setup step) they fail.

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

/// The test venv's python if it has `modules`; `None` (skip) otherwise, or
/// a failure under `REQUIRE_TEST_PEERS`.
fn peers(modules: &str) -> Option<PathBuf> {
    let python = root().join(".venv-sdk-python/bin/python");
    let installed = python.is_file()
        && Command::new(&python)
            .args(["-c", &format!("import {modules}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if installed {
        return Some(python);
    }
    let why = format!(
        "the Python SDK's test peers ({modules}) are missing from .venv-sdk-python: run \
         scripts/setup.d/sdk-python.sh (or scripts/setup-test-deps)"
    );
    assert!(std::env::var_os("REQUIRE_TEST_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

fn run(command: &mut Command, what: &str) -> String {
    let output = command.stdin(Stdio::null()).env("PYTHONDONTWRITEBYTECODE", "1").output().expect(what);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn python_sdk_wheel_installs_into_a_fresh_venv_and_imports() {
    let Some(python) = peers("build, hatchling") else { return };
    let root = root();
    let wheelhouse = root.join(".venv-sdk-python/wheelhouse");
    assert!(wheelhouse.is_dir(), "no wheelhouse: run scripts/setup.d/sdk-python.sh");
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    // The pyproject's own backend (hatchling), without fetching anything.
    run(
        Command::new(&python)
            .args(["-m", "build", "--wheel", "--no-isolation", "--outdir"])
            .arg(&dist)
            .arg(root.join("sdk/python")),
        "building the wheel",
    );
    let wheels: Vec<PathBuf> = std::fs::read_dir(&dist).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let wheel = &wheels[0];
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("countersign-0.1.0-py3-none-any"), "{name}");
    // What it holds: the package, its adapters and the PEP 561 marker, not the tests.
    let listing = run(
        Command::new(&python)
            .args(["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))"])
            .arg(wheel),
        "listing the wheel",
    );
    for file in [
        "countersign/__init__.py",
        "countersign/py.typed",
        "countersign/outcomes.py",
        "countersign/adapters/openai_agents.py",
        "countersign/adapters/langchain.py",
        "countersign/adapters/pydantic_ai.py",
    ] {
        assert!(listing.lines().any(|l| l == file), "{file} is not in the wheel:\n{listing}");
    }
    assert!(!listing.contains("tests/"), "tests are in the wheel:\n{listing}");

    // A fresh venv: nothing but the wheel and what its metadata requires,
    // resolved from the wheelhouse (offline).
    let venv = tmp.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "creating a fresh venv");
    let fresh = venv.join("bin/python");
    run(
        Command::new(&fresh)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--find-links"])
            .arg(&wheelhouse)
            .arg(wheel),
        "installing the wheel",
    );
    let check = r#"
import pathlib, sys, countersign, countersign.outcomes
from countersign import Client, guard, GatewayUnavailable
here = pathlib.Path(countersign.__file__).resolve()
assert pathlib.Path(sys.prefix).resolve() in here.parents, here
assert (here.parent / "py.typed").is_file()
assert countersign.__version__ == "0.1.0"
# Fail closed with no gateway: nothing runs.
client = Client("http://127.0.0.1:9", "t")
assert client.healthy() is False
ran = []
try:
    with guard("tool.x", "laptop", {"a": 1}, client=client):
        ran.append(1)
except GatewayUnavailable:
    pass
assert ran == [], ran
client.close()
print("imported", here)
"#;
    // Run outside the source tree, so only the installed copy can be imported.
    let out = run(Command::new(&fresh).args(["-I", "-c", check]).current_dir(tmp.path()), "importing the wheel");
    assert!(out.contains("imported"), "{out}");
}

#[test]
fn python_sdk_passes_mypy_strict() {
    let Some(python) = peers("mypy, httpx, agents, langchain, langgraph, pydantic_ai") else { return };
    let root = root();
    let out = run(
        Command::new(&python)
            .args(["-m", "mypy", "--strict", "--no-incremental", "--cache-dir", "/dev/null", "src/countersign"])
            .current_dir(root.join("sdk/python")),
        "mypy --strict",
    );
    assert!(out.contains("Success: no issues found"), "{out}");
}
