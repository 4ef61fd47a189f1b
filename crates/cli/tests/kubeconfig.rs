//! `countersign kubeconfig <cluster>`: the kubeconfig kubectl reads, with
//! the gateway's `/k8s/<cluster>` as its server and the caller's key as its
//! token; bad input is one line and exit code 1. (kubectl itself runs with
//! such a kubeconfig in `crates/k8s/tests/kubectl.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_code, bin, stderr, stdout};

#[test]
fn prints_a_kubeconfig_for_the_cluster_with_the_callers_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
    let out = bin()
        .env("COUNTERSIGN_SERVER", "https://countersign.example.com/")
        .env("COUNTERSIGN_TOKEN", "csa_secret")
        .args(["kubeconfig", "staging", "--ca-file"])
        .arg(&ca)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let config: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(config["clusters"][0]["cluster"]["server"], "https://countersign.example.com/k8s/staging");
    assert_eq!(config["users"][0]["user"]["token"], "csa_secret");
    assert_eq!(config["current-context"], "countersign-staging");
    assert!(config["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
}

#[test]
fn bad_input_is_one_line_and_exit_code_1() {
    for (args, env, expected) in [
        (vec!["kubeconfig", "staging"], vec![], "no API token"),
        (vec!["kubeconfig", "Staging/../x"], vec![("COUNTERSIGN_TOKEN", "t")], "not a cluster name"),
        (vec!["kubeconfig", "staging", "--server", "ftp://x"], vec![("COUNTERSIGN_TOKEN", "t")], "not a gateway URL"),
    ] {
        let mut command = bin();
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.args(&args).output().unwrap();
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
