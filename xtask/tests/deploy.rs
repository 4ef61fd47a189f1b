//! The shipped deployment files stay hardened: the image runs as an
//! unprivileged user, and every Kubernetes container the repo ships keeps a
//! restrictive `securityContext` and names the image the Dockerfile builds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The lines of `text` without comments and surrounding spaces.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split(" #").next().unwrap_or(l).trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_runtime_image_runs_unprivileged_and_stripped() {
    let dockerfile = read("Dockerfile");
    let lines = lines(&dockerfile);
    let runtime_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &lines[runtime_from..];
    assert!(runtime[0].ends_with(" AS runtime"), "the last stage is the runtime: {}", runtime[0]);
    let user = runtime.iter().find_map(|l| l.strip_prefix("USER ")).expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|u| u != 0), "USER must be a numeric non-root uid, not `{user}`");
    assert!(
        !runtime.iter().any(|l| l.starts_with("COPY --from=build /countersign.debug")),
        "symbols stay out of the runtime image"
    );

    let cargo = read("Cargo.toml");
    let release = cargo.split("[profile.release]").nth(1).expect("a release profile").split("\n[").next().unwrap();
    assert!(release.contains("strip = \"symbols\""), "the release binary is stripped: {release}");
    assert!(release.contains("debug = false"), "the release binary carries no debug info: {release}");
}

#[test]
fn every_shipped_container_is_locked_down() {
    for manifest in ["deploy/kubernetes/countersign.yaml", "deploy/kubernetes/countersign-postgres.yaml"] {
        let text = read(manifest);
        let docs: Vec<&str> = text.split("\n---").collect();
        let workloads: Vec<&&str> =
            docs.iter().filter(|d| d.contains("kind: StatefulSet") || d.contains("kind: Deployment")).collect();
        assert!(!workloads.is_empty(), "{manifest}: no workload found");
        for doc in workloads {
            let l = lines(doc);
            let has = |needle: &str| l.iter().any(|x| x == needle);
            for needle in [
                "runAsNonRoot: true",
                "runAsUser: 10001",
                "seccompProfile: {type: RuntimeDefault}",
                "automountServiceAccountToken: false",
                "readOnlyRootFilesystem: true",
                "allowPrivilegeEscalation: false",
                "privileged: false",
                "capabilities: {drop: [\"ALL\"]}",
                "image: countersign:latest",
            ] {
                assert!(has(needle), "{manifest}: missing `{needle}`");
            }
            let contexts = l.iter().filter(|x| *x == "readOnlyRootFilesystem: true").count();
            let images = l.iter().filter(|x| x.starts_with("image: ")).count();
            assert!(
                contexts == images,
                "{manifest}: every container ({images}) has its own securityContext ({contexts})"
            );
        }
    }
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("docker build -t countersign:latest ."),
        "the Dockerfile documents the tag the manifests name"
    );
}
