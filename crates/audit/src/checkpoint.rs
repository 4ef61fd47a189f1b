//! C2SP checkpoints (c2sp.org/tlog-checkpoint): the signed statement "the
//! log named <origin> has <size> events whose Merkle root is <root>".
//!
//! ```text
//! <origin>
//! <decimal size>
//! <base64 root hash>
//! [extension lines]
//! ```
//!
//! The body is signed as a [`crate::note`] by the gateway's key, whose
//! name is the origin.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::merkle::Hash;
use crate::note::{self, NoteError, NoteSigner, NoteVerifier};

/// The most extension lines accepted.
pub const MAX_EXTENSIONS: usize = 16;

/// A checkpoint's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque extension lines, each non-empty.
    pub extensions: Vec<String>,
}

/// A checkpoint that is malformed or not signed by the expected key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error("the checkpoint's origin `{found}` is not the key's `{expected}`")]
    Origin { found: String, expected: String },
    #[error(transparent)]
    Note(#[from] NoteError),
}

impl Checkpoint {
    /// The note text (the signed body), ending in a newline.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root));
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Reads a checkpoint body (the text of a note).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = CheckpointError::Malformed;
        if text.len() > note::MAX_NOTE_BYTES {
            return Err(bad("it is too large"));
        }
        let body = text.strip_suffix('\n').ok_or(bad("it must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|l| !l.is_empty()).ok_or(bad("the origin line is empty"))?;
        let size = lines.next().ok_or(bad("the size line is missing"))?;
        let size = parse_size(size).ok_or(bad("the size is not a decimal number without leading zeros"))?;
        let root = lines.next().ok_or(bad("the root hash line is missing"))?;
        let root = parse_hash(root).ok_or(bad("the root hash is not 32 bytes of base64"))?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(bad("an extension line is empty"));
            }
            if extensions.len() == MAX_EXTENSIONS {
                return Err(bad("too many extension lines"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Self { origin: origin.to_owned(), size, root, extensions })
    }

    /// The signed note of this checkpoint; the signer's name must be the origin.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        if signer.name() != self.origin {
            return Err(CheckpointError::Origin { found: self.origin.clone(), expected: signer.name().to_owned() });
        }
        Ok(signer.sign(&self.to_text())?)
    }

    /// Reads a signed checkpoint, checking its signature by `verifier` and
    /// that its origin is the key's name.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, CheckpointError> {
        let text = verifier.open(note)?;
        let checkpoint = Self::parse(text)?;
        if checkpoint.origin != verifier.name() {
            return Err(CheckpointError::Origin {
                found: checkpoint.origin.clone(),
                expected: verifier.name().to_owned(),
            });
        }
        Ok(checkpoint)
    }

    /// Reads a signed checkpoint without checking a signature (for a copy
    /// whose signature is checked elsewhere, or to show what it claims).
    pub fn parse_unverified(note: &str) -> Result<Self, CheckpointError> {
        Self::parse(note::parse(note)?.text)
    }
}

/// A decimal with no leading zeros (unless it is `0`).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// A base64 SHA-256 hash.
pub(crate) fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 44 {
        return None;
    }
    BASE64.decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_parses() {
        let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse(text).unwrap();
        assert_eq!((c.origin.as_str(), c.size), ("example.com/behind-the-sofa", 20_852_163));
        assert_eq!(c.to_text(), text);
    }

    #[test]
    fn signed_checkpoints_open_with_the_key_only() {
        let signer = NoteSigner::new("gw.example/audit", [9; 32]).unwrap();
        let c = Checkpoint { origin: "gw.example/audit".into(), size: 3, root: [5; 32], extensions: vec!["x".into()] };
        let note = c.sign(&signer).unwrap();
        assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), c);
        let other = NoteSigner::new("gw.example/audit", [10; 32]).unwrap();
        assert!(Checkpoint::open(&note, &other.verifier()).is_err());
        let grown = note.replacen("\n3\n", "\n4\n", 1);
        assert!(Checkpoint::open(&grown, &signer.verifier()).is_err());
        let elsewhere = Checkpoint { origin: "other".into(), ..c };
        assert!(elsewhere.sign(&signer).is_err());
    }

    #[test]
    fn malformed_bodies_fail() {
        let root = BASE64.encode([0u8; 32]);
        for text in [
            String::new(),
            "o\n1\n".to_owned(),
            format!("\n1\n{root}\n"),
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("o\n1\n{root}\n\n"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n99999999999999999999\n{root}\n"),
        ] {
            assert!(Checkpoint::parse(&text).is_err(), "{text:?}");
        }
        assert_eq!(Checkpoint::parse(&format!("o\n0\n{root}\n")).unwrap().size, 0);
    }
}
