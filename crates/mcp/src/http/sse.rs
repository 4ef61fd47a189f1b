//! Server-Sent Events as Streamable HTTP uses them: reading an upstream's
//! stream event by event (to look at the messages in it while passing each
//! event on byte for byte), and writing our own events.

use bytes::Bytes;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event as received, without its terminating blank line.
    pub raw: String,
    /// The `data:` lines joined with `\n`; empty for comments and primers.
    pub data: String,
}

impl Event {
    /// The event with its data replaced, other fields (`id`, `event`,
    /// `retry`) kept.
    pub fn with_data(&self, data: &str) -> Event {
        let mut raw: Vec<String> =
            self.raw.lines().filter(|l| !(l.starts_with("data:") || *l == "data")).map(str::to_owned).collect();
        raw.extend(data.lines().map(|l| format!("data: {l}")));
        Event { raw: raw.join("\n"), data: data.to_owned() }
    }

    /// The bytes to send for this event.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(format!("{}\n\n", self.raw))
    }
}

/// An event grew past [`MAX_EVENT_BYTES`]: the stream is not SSE, or broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event is larger than {MAX_EVENT_BYTES} bytes")]
pub struct TooLarge;

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
}

/// The largest event buffered before the stream is judged broken.
pub const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

impl Parser {
    /// Feeds bytes; returns the events completed by them. `Err` when one
    /// event grows past [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLarge> {
        // CRLF line ends become LF so that one delimiter rule serves both.
        for &b in chunk {
            if b == b'\n' && self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            self.buf.push(b);
        }
        let mut events = Vec::new();
        while let Some(end) = find(&self.buf, b"\n\n") {
            let block: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
            let raw = String::from_utf8_lossy(&block).into_owned();
            let data = raw
                .lines()
                .filter_map(|l| l.strip_prefix("data:").map(|d| d.strip_prefix(' ').unwrap_or(d)))
                .collect::<Vec<_>>()
                .join("\n");
            events.push(Event { raw, data });
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(TooLarge);
        }
        Ok(events)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `message` event carrying one JSON-RPC message.
pub fn message_event(json: &str, id: Option<&str>) -> Bytes {
    let mut out = String::from("event: message\n");
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    }
    for line in json.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// A priming event: an id and empty data, so the client has an event id to
/// resume from before the first message.
pub fn primer(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: \n\n"))
}

/// A comment line, which keeps a quiet stream from looking dead.
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {}\n\n", text.replace('\n', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_chunks_and_line_ends() {
        let mut p = Parser::default();
        assert!(p.push(b"id: 1\nretry: 500\ndata: \n\nevent: message\r\nda").unwrap().len() == 1);
        let events = p.push(b"ta: {\"a\":1}\r\n\r\n").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[0].raw, "event: message\ndata: {\"a\":1}");
        let replaced = events[0].with_data("{\"b\":2}");
        assert_eq!(replaced.raw, "event: message\ndata: {\"b\":2}");
    }

    #[test]
    fn writes_message_events() {
        assert_eq!(message_event("{}", Some("s-1")), Bytes::from("event: message\nid: s-1\ndata: {}\n\n"));
    }
}
