//! The upstream's credential never goes back to the agent, even when the
//! upstream itself says it: an API that echoes the request (a debug
//! endpoint, an error message quoting the token it refused), or a cluster
//! whose Secret holds the gateway's own token. A response header that
//! holds the credential is dropped; in a body, each occurrence is masked
//! with `*`, byte for byte, so that lengths stay what the API declared.
//! The credential is looked for as sent and base64-encoded (as a Secret's
//! `data`, or a Basic credential, holds it).

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;

/// Credentials shorter than this are not looked for: masking every
/// occurrence of a few bytes would garble responses (and such a
/// credential is guessed as easily as read).
const MIN_LEN: usize = 6;

/// The byte sequences that are never passed back.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<Vec<Vec<u8>>>);

impl Secrets {
    /// Each of `values`, and its base64 encoding wherever it starts in
    /// the encoded bytes (a Secret's `data` may hold a whole kubeconfig
    /// with the token inside).
    pub fn of(values: &[&[u8]]) -> Self {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for value in values.iter().filter(|v| v.len() >= MIN_LEN) {
            all.push(value.to_vec());
            all.push(base64::engine::general_purpose::STANDARD.encode(value).into_bytes());
            all.extend((0..3).filter_map(|offset| encoded_at(value, offset)));
        }
        all.sort();
        all.dedup();
        Self(Arc::new(all))
    }

    /// `text` holds one of the secrets.
    pub fn found_in(&self, text: &[u8]) -> bool {
        self.0.iter().any(|secret| find(text, secret).is_some())
    }

    /// Masks every secret in `buffer` with `*`.
    pub fn mask(&self, buffer: &mut [u8]) {
        for secret in self.0.iter() {
            let mut at = 0;
            while let Some(found) = buffer.get(at..).and_then(|rest| find(rest, secret)) {
                let start = at + found;
                if let Some(span) = buffer.get_mut(start..start + secret.len()) {
                    span.fill(b'*');
                }
                at = start + secret.len();
            }
        }
    }

    /// How much of the end of `buffer` could be the start of a secret
    /// that the next chunk completes: only that much is held back, so a
    /// stream (an SSE event) is not delayed by what cannot be a secret.
    fn unfinished(&self, buffer: &[u8]) -> usize {
        self.0
            .iter()
            .filter_map(|secret| {
                let most = secret.len().saturating_sub(1).min(buffer.len());
                (1..=most).rev().find(|&k| buffer.ends_with(secret.get(..k).unwrap_or_default()))
            })
            .max()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The base64 characters that encode `value` alone when it starts
/// `offset` bytes into a 3-byte group, whatever bytes surround it: the
/// characters shared with its neighbours are left out.
fn encoded_at(value: &[u8], offset: usize) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(value);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes).into_bytes();
    // A character of the front holds bits of the prefix unless it lies
    // wholly in the value: skip ceil(offset * 8 / 6) characters.
    let front = (offset * 8).div_ceil(6);
    // Only whole groups: a last, padded group would change with what follows.
    let back = bytes.len() / 3 * 4;
    let inner = encoded.get(front..back)?.to_vec();
    (inner.len() >= MIN_LEN).then_some(inner)
}

/// Where `needle` first stands in `haystack` (every body byte of every
/// response is searched once per secret form: a vectorised search, not a
/// comparison at every offset).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(haystack, needle)
}

/// Masks the secrets in a body that comes in chunks: an end of a chunk
/// that could be the start of a secret is held back until the next chunk
/// (or the end of the body); everything else passes at once.
#[derive(Debug)]
pub struct Masking {
    secrets: Secrets,
    held: Vec<u8>,
}

impl Masking {
    pub fn new(secrets: Secrets) -> Self {
        Self { secrets, held: Vec::new() }
    }

    /// The part of the body so far that can be passed on, masked.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        if self.secrets.is_empty() {
            return Bytes::copy_from_slice(chunk);
        }
        self.held.extend_from_slice(chunk);
        self.secrets.mask(&mut self.held);
        let keep = self.secrets.unfinished(&self.held);
        let rest = self.held.split_off(self.held.len() - keep);
        Bytes::from(std::mem::replace(&mut self.held, rest))
    }

    /// What is still held back, at the end of the body.
    pub fn finish(&mut self) -> Bytes {
        self.secrets.mask(&mut self.held);
        Bytes::from(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_masked_wherever_the_chunks_split_it() {
        let secrets = Secrets::of(&[b"s3cret-token", b"abc"]);
        let encoded = base64::engine::general_purpose::STANDARD.encode("s3cret-token");
        let body =
            format!("{{\"authorization\": \"Bearer s3cret-token\", \"data\": \"{encoded}\", \"short\": \"abc\"}}");
        for split in 0..body.len() {
            for step in [1, 3, split.max(1)] {
                let mut masking = Masking::new(secrets.clone());
                let mut out = Vec::new();
                let (head, tail) = body.as_bytes().split_at(split);
                out.extend_from_slice(&masking.push(head));
                for chunk in tail.chunks(step) {
                    out.extend_from_slice(&masking.push(chunk));
                }
                out.extend_from_slice(&masking.finish());
                let out = String::from_utf8(out).unwrap();
                assert_eq!(out.len(), body.len());
                assert!(!out.contains("s3cret") && !out.contains(&encoded), "{out}");
                assert!(out.contains("Bearer ************") && out.contains("\"abc\""), "{out}");
            }
        }
        // Only what could begin a secret waits for the next chunk.
        let mut masking = Masking::new(secrets.clone());
        assert_eq!(masking.push(b"data: tick 0\n\n"), Bytes::from_static(b"data: tick 0\n\n"));
        assert_eq!(masking.push(b"data: s3c"), Bytes::from_static(b"data: "));
        assert_eq!(masking.push(b"ond\n"), Bytes::from_static(b"s3cond\n"));
        assert!(secrets.found_in(b"x-echo: Bearer s3cret-token"));
        // Inside a larger value that is base64-encoded as a whole, at any offset.
        for prefix in ["", "k", "ke", "key: ", "apiKey: "] {
            let whole = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}s3cret-token\nrest"));
            assert!(secrets.found_in(whole.as_bytes()), "{prefix:?} {whole}");
            let mut masked = whole.clone().into_bytes();
            secrets.mask(&mut masked);
            assert!(!secrets.found_in(&masked) && masked.contains(&b'*'), "{prefix:?}");
            // What is left unmasked holds no three bytes of the secret in a row.
            let decoded: Vec<u8> = masked
                .chunks(4)
                .filter(|group| !group.contains(&b'*'))
                .flat_map(|group| base64::engine::general_purpose::STANDARD.decode(group).unwrap_or_default())
                .collect();
            assert!(!decoded.windows(3).any(|w| b"s3cret-token".windows(3).any(|t| t == w)), "{prefix:?}");
        }
        assert!(!secrets.found_in(b"x-echo: Bearer s3cret"));
        let none = Secrets::of(&[]);
        let mut masking = Masking::new(none);
        assert_eq!(masking.push(b"as is"), Bytes::from_static(b"as is"));
        assert!(masking.finish().is_empty());
    }
}
