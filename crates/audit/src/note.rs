//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures: the
//! signer and its private key string, the verifier key (`vkey`) string,
//! and a bounded, fail-closed parser of notes from outside.
//!
//! A note is text ending in a newline, a blank line, then signature lines
//! `— <key name> base64(key ID ‖ signature)`. The key ID is the first four
//! bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest note accepted: a checkpoint is a few hundred bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most signature lines accepted (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// The signature type byte of Ed25519.
const ED25519: u8 = 0x01;
const DASH: &str = "\u{2014} ";

/// A note, a key or a signature that is malformed or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the note is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("the note holds a control character other than newline")]
    ControlCharacter,
    #[error("the note has no blank line before its signatures")]
    NoSignatures,
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("malformed signature line {line}: {reason}")]
    SignatureLine { line: usize, reason: &'static str },
    #[error("invalid key name `{0}`: it must be non-empty, with no spaces or `+`")]
    KeyName(String),
    #[error("malformed verifier key: {0}")]
    VerifierKey(&'static str),
    #[error("malformed signing key: {0}")]
    SigningKey(&'static str),
    #[error("the signature of `{name}` does not verify: the note was altered or signed by another key")]
    BadSignature { name: String },
    #[error("the note carries no signature by `{name}` (key ID {id:08x})")]
    Unsigned { name: String, id: u32 },
    #[error("the note text must be non-empty and end with a newline")]
    Text,
}

/// Whether `name` can be a key name: non-empty, no whitespace, no `+`.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The C2SP key ID of an Ed25519 key named `name`.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519]);
    hasher.update(public);
    let hash = hasher.finalize();
    u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]])
}

/// An Ed25519 note signer: a key name and a private key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner").field("name", &self.name).field("key", &"***").finish()
    }
}

impl NoteSigner {
    /// A signer named `name` with the Ed25519 private key `seed`.
    pub fn new(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::KeyName(name.to_owned()));
        }
        Ok(Self { name: name.to_owned(), key: SigningKey::from_bytes(&seed) })
    }

    /// Reads a private key string, `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 ‖ seed)`
    /// (the form Go's `golang.org/x/mod/sumdb/note` writes).
    pub fn from_private_key(text: &str) -> Result<Self, NoteError> {
        let text = text.trim();
        let rest =
            text.strip_prefix("PRIVATE+KEY+").ok_or(NoteError::SigningKey("it must start with `PRIVATE+KEY+`"))?;
        let (name, id, key) = split_key(rest).ok_or(NoteError::SigningKey("expected `PRIVATE+KEY+name+id+key`"))?;
        let bytes = BASE64.decode(key).map_err(|_| NoteError::SigningKey("the key is not base64"))?;
        let seed: [u8; 32] = match bytes.split_first() {
            Some((&ED25519, seed)) => seed.try_into().map_err(|_| NoteError::SigningKey("the key is not 32 bytes"))?,
            _ => return Err(NoteError::SigningKey("the key is not an Ed25519 key")),
        };
        let signer = Self::new(name, seed)?;
        if parse_id(id) != Some(signer.key_id()) {
            return Err(NoteError::SigningKey("the key ID does not match the key"));
        }
        Ok(signer)
    }

    /// The private key string read by [`NoteSigner::from_private_key`].
    pub fn private_key(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.key_id(), BASE64.encode(bytes))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        key_id(&self.name, self.key.verifying_key().as_bytes())
    }

    /// The verifier for this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), id: self.key_id(), key: self.key.verifying_key() }
    }

    /// Signs `text` (non-empty, ending in a newline) into a note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() || !text.ends_with('\n') || text.len() > MAX_NOTE_BYTES / 2 {
            return Err(NoteError::Text);
        }
        check_characters(text)?;
        let mut sig = self.key_id().to_be_bytes().to_vec();
        sig.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        Ok(format!("{text}\n{DASH}{} {}\n", self.name, BASE64.encode(sig)))
    }
}

/// An Ed25519 verifier key: name, key ID, public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a vkey string `<name>+<hex key ID>+base64(0x01 ‖ public key)`.
    pub fn from_vkey(text: &str) -> Result<Self, NoteError> {
        let text = text.trim();
        if text.len() > 1024 {
            return Err(NoteError::VerifierKey("it is too long"));
        }
        let (name, id, key) = split_key(text).ok_or(NoteError::VerifierKey("expected `name+id+key`"))?;
        if !valid_key_name(name) {
            return Err(NoteError::KeyName(name.to_owned()));
        }
        let bytes = BASE64.decode(key).map_err(|_| NoteError::VerifierKey("the key is not base64"))?;
        let public: [u8; 32] = match bytes.split_first() {
            Some((&ED25519, public)) => {
                public.try_into().map_err(|_| NoteError::VerifierKey("the key is not 32 bytes"))?
            }
            _ => return Err(NoteError::VerifierKey("the key is not an Ed25519 key")),
        };
        let key = VerifyingKey::from_bytes(&public).map_err(|_| NoteError::VerifierKey("not an Ed25519 point"))?;
        let id_value = key_id(name, &public);
        if parse_id(id) != Some(id_value) {
            return Err(NoteError::VerifierKey("the key ID does not match the key"));
        }
        Ok(Self { name: name.to_owned(), id: id_value, key })
    }

    /// The vkey string.
    pub fn vkey(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(bytes))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// Parses `note` and checks it carries a valid signature by this key,
    /// returning the signed text. Signatures by other keys are ignored; a
    /// signature by this key that fails rejects the note.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let parsed = parse(note)?;
        let mut verified = false;
        for sig in &parsed.signatures {
            if sig.name != self.name || sig.id != self.id {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_slice(&sig.signature)
                .map_err(|_| NoteError::BadSignature { name: self.name.clone() })?;
            self.key
                .verify_strict(parsed.text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature { name: self.name.clone() })?;
            verified = true;
        }
        if !verified {
            return Err(NoteError::Unsigned { name: self.name.clone(), id: self.id });
        }
        Ok(parsed.text)
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: u32,
    pub signature: Vec<u8>,
}

/// A note split into its text and signatures, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedNote<'a> {
    /// The signed text, with its final newline.
    pub text: &'a str,
    pub signatures: Vec<NoteSignature>,
}

/// Splits a note into text and signature lines, checking the format only.
pub fn parse(note: &str) -> Result<ParsedNote<'_>, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge);
    }
    check_characters(note)?;
    if !note.ends_with('\n') {
        return Err(NoteError::SignatureLine { line: 0, reason: "the note must end with a newline" });
    }
    let split = note.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
    let text = &note[..=split];
    let lines = &note[split + 2..];
    let mut signatures = Vec::new();
    for (n, line) in lines.split_terminator('\n').enumerate() {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let bad = |reason| NoteError::SignatureLine { line: n + 1, reason };
        let rest = line.strip_prefix(DASH).ok_or_else(|| bad("it must start with an em dash and a space"))?;
        let (name, sig) = rest.split_once(' ').ok_or_else(|| bad("expected a key name and a signature"))?;
        if !valid_key_name(name) {
            return Err(bad("invalid key name"));
        }
        let bytes = BASE64.decode(sig).map_err(|_| bad("the signature is not base64"))?;
        if bytes.len() < 5 {
            return Err(bad("the signature is too short"));
        }
        let id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        signatures.push(NoteSignature { name: name.to_owned(), id, signature: bytes[4..].to_vec() });
    }
    if signatures.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    Ok(ParsedNote { text, signatures })
}

fn check_characters(text: &str) -> Result<(), NoteError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

/// `name+id+key`, where neither the name nor the hex ID holds a `+` (the
/// base64 key may).
fn split_key(text: &str) -> Option<(&str, &str, &str)> {
    let mut parts = text.splitn(3, '+');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

fn parse_id(text: &str) -> Option<u32> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the C2SP signed-note spec.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn the_spec_example_verifies() {
        let verifier = NoteVerifier::from_vkey(SPEC_VKEY).unwrap();
        assert_eq!(verifier.open(SPEC_NOTE).unwrap(), "This is an example message.\n");
        assert_eq!(verifier.vkey(), SPEC_VKEY);
        let altered = SPEC_NOTE.replace("example message", "exemple message");
        assert!(matches!(verifier.open(&altered), Err(NoteError::BadSignature { .. })));
    }

    #[test]
    fn signing_and_keys_round_trip() {
        let signer = NoteSigner::new("log.example/audit", [7; 32]).unwrap();
        let again = NoteSigner::from_private_key(&signer.private_key()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        let verifier = NoteVerifier::from_vkey(&signer.verifier().vkey()).unwrap();
        let note = signer.sign("hello\nworld\n").unwrap();
        assert_eq!(verifier.open(&note).unwrap(), "hello\nworld\n");
        // Deterministic: equal text, equal note.
        assert_eq!(signer.sign("hello\nworld\n").unwrap(), note);
        let other = NoteSigner::new("log.example/audit", [8; 32]).unwrap();
        assert!(matches!(other.verifier().open(&note), Err(NoteError::Unsigned { .. })));
    }

    #[test]
    fn unknown_signatures_are_ignored_but_a_bad_known_one_rejects() {
        let signer = NoteSigner::new("a.example", [1; 32]).unwrap();
        let witness = NoteSigner::new("w.example", [2; 32]).unwrap();
        let note = signer.sign("text\n").unwrap();
        let cosigned = format!("{note}{}", witness.sign("text\n").unwrap().split_once("\n\n").unwrap().1);
        assert_eq!(signer.verifier().open(&cosigned).unwrap(), "text\n");
        let forged = NoteSigner::new("a.example", [3; 32]).unwrap();
        let mut sig = signer.key_id().to_be_bytes().to_vec();
        sig.extend_from_slice(&forged.key.sign(b"text\n").to_bytes());
        let bad = format!("{note}{DASH}a.example {}\n", BASE64.encode(sig));
        assert!(matches!(signer.verifier().open(&bad), Err(NoteError::BadSignature { .. })));
    }

    #[test]
    fn malformed_notes_and_keys_fail_closed() {
        for note in [
            "",
            "text\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} a.example AAAA\n",
            "text\n\n\u{2014} a.example !!!\n",
            "te\u{1}xt\n\n\u{2014} a.example AAAAAAAA\n",
            "text\n\n\u{2014} a.example AAAAAAAA",
        ] {
            assert!(parse(note).is_err(), "{note:?}");
        }
        assert!(matches!(parse(&"x".repeat(MAX_NOTE_BYTES + 1)), Err(NoteError::TooLarge)));
        for vkey in [
            "",
            "a+b",
            "a+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k+",
            "a+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "x y+00000000+AQ==",
        ] {
            assert!(NoteVerifier::from_vkey(vkey).is_err(), "{vkey}");
        }
        assert!(NoteSigner::from_private_key("PRIVATE+KEY+a+00000000+AQ==").is_err());
        assert!(NoteSigner::new("has space", [0; 32]).is_err());
    }
}
