//! Every RFC 6962 inclusion and consistency vector of transparency-dev/merkle
//! (`testdata/`, with its negative cases) against our verification: a
//! vector that wants an error must fail, and every other must pass.
//!
//! Our API takes 32-byte hashes. A vector whose root has another length
//! ("don't care" placeholders) is mapped to a distinct 32-byte value that
//! no real hash equals, so equal placeholders stay equal; a leaf hash or
//! proof line of another length is a decoding error, as it is for a proof
//! read from a file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use countersign_audit::merkle::{verify_consistency, verify_inclusion, Hash};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/transparency-dev-merkle")
}

fn vectors(kind: &str) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![dir().join(kind)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                out.push((path, value));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn loose_hash(value: &Value) -> Hash {
    let bytes = BASE64.decode(value.as_str().unwrap()).unwrap();
    bytes.clone().try_into().unwrap_or_else(|_| {
        let mut h: Hash = Sha256::digest([b"placeholder:".as_slice(), &bytes].concat()).into();
        h[0] ^= 0xff;
        h
    })
}

fn proof(value: &Value) -> Option<Vec<Hash>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(|v| BASE64.decode(v.as_str().unwrap()).ok()?.try_into().ok()).collect(),
        other => panic!("proof is {other}"),
    }
}

#[test]
fn every_inclusion_vector() {
    let all = vectors("inclusion");
    assert!(all.len() >= 80, "{} vectors", all.len());
    for (path, v) in &all {
        let want_err = v["wantErr"].as_bool().unwrap();
        let leaf: Option<Hash> = BASE64.decode(v["leafHash"].as_str().unwrap()).ok().and_then(|b| b.try_into().ok());
        let got = proof(&v["proof"]).zip(leaf).map_or(Err(()), |(p, leaf)| {
            verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &leaf,
                &p,
                &loose_hash(&v["root"]),
            )
            .map_err(|_| ())
        });
        assert_eq!(got.is_err(), want_err, "{}", path.display());
    }
}

#[test]
fn every_consistency_vector() {
    let all = vectors("consistency");
    assert!(all.len() >= 90, "{} vectors", all.len());
    for (path, v) in &all {
        let want_err = v["wantErr"].as_bool().unwrap();
        let got = proof(&v["proof"]).map_or(Err(()), |p| {
            verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &p,
                &loose_hash(&v["root1"]),
                &loose_hash(&v["root2"]),
            )
            .map_err(|_| ())
        });
        assert_eq!(got.is_err(), want_err, "{}", path.display());
    }
}
