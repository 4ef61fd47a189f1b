//! Server-Sent Events as Streamable HTTP uses them: reading an upstream's
//! stream event by event (to look at each message before passing it on),
//! and writing our own events.
//!
//! Lines end as the SSE standard says (CRLF, LF or a lone CR), the way
//! every client reads them, so an upstream cannot hide an event from the
//! proxy that a client would see. Events are passed on re-written from the
//! fields read, never as the bytes received, for the same reason.

use bytes::Bytes;

/// One event of a stream, as its fields were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `id` field (ignored, as the standard says, when it holds NUL).
    pub id: Option<String>,
    /// The `event` field: the type; absent means `message`.
    pub event: Option<String>,
    /// The `retry` field, when it is all digits.
    pub retry: Option<String>,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// Whether any `data` line was present (a priming event has one, empty).
    pub has_data: bool,
}

impl Event {
    /// Whether a client hands this event's data to its JSON-RPC reader:
    /// one of type `message` with data.
    pub fn is_message(&self) -> bool {
        !self.data.is_empty() && self.event.as_deref().is_none_or(|e| e == "message")
    }

    /// The event with its data replaced, other fields kept.
    pub fn with_data(&self, data: &str) -> Event {
        Event { data: data.to_owned(), has_data: true, ..self.clone() }
    }

    /// The bytes to send for this event.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::new();
        if let Some(event) = &self.event {
            out.push_str(&format!("event: {event}\n"));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!("id: {id}\n"));
        }
        if let Some(retry) = &self.retry {
            out.push_str(&format!("retry: {retry}\n"));
        }
        if self.has_data {
            for line in self.data.split('\n') {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
        }
        if out.is_empty() {
            // A block of comments only: keeps a quiet stream alive.
            out.push(':');
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// An event grew past [`MAX_EVENT_BYTES`]: the stream is not SSE, or broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event is larger than {MAX_EVENT_BYTES} bytes")]
pub struct TooLarge;

/// The largest event buffered before the stream is judged broken.
pub const MAX_EVENT_BYTES: usize = crate::jsonrpc::MAX_MESSAGE_BYTES;

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub struct Parser {
    /// The current line so far.
    line: Vec<u8>,
    /// The last byte was a CR, so a LF right after it ends nothing.
    after_cr: bool,
    /// The event being read, and how many bytes it has taken so far.
    event: Event,
    size: usize,
    /// Whether the event being read has any field or comment yet.
    started: bool,
}

impl Parser {
    /// Feeds bytes; returns the events completed by them. `Err` when one
    /// event grows past [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLarge> {
        let mut events = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if line.is_empty() {
                        if self.started {
                            events.push(std::mem::take(&mut self.event));
                        }
                        self.started = false;
                        self.size = 0;
                    } else {
                        self.field(&line);
                    }
                }
                _ => {
                    self.line.push(b);
                    self.size += 1;
                    if self.size > MAX_EVENT_BYTES {
                        return Err(TooLarge);
                    }
                }
            }
        }
        Ok(events)
    }

    fn field(&mut self, line: &[u8]) {
        self.started = true;
        let line = String::from_utf8_lossy(line);
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match name {
            "" => {}
            "data" => {
                if self.event.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.event.has_data = true;
            }
            "event" => self.event.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.event.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.event.retry = Some(value.to_owned());
            }
            _ => {}
        }
    }
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
        let first = p.push(b"id: 1\nretry: 500\ndata: \n\nevent: message\r\nda").unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].id.as_deref(), first[0].has_data, first[0].is_message()), (Some("1"), true, false));
        let events = p.push(b"ta: {\"a\":1}\r\n\r\n").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "{\"a\":1}");
        assert!(events[0].is_message());
        let replaced = events[0].with_data("{\"b\":2}");
        assert_eq!(replaced.to_bytes(), Bytes::from("event: message\ndata: {\"b\":2}\n\n"));
    }

    #[test]
    fn a_lone_cr_ends_a_line_as_clients_read_it() {
        // Two events to any SSE client; the proxy must see both.
        let mut p = Parser::default();
        let events = p.push(b"data: {\"id\":5}\r\rdata: {\"id\":6}\r\r").unwrap();
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["{\"id\":5}", "{\"id\":6}"]);
        // A CR and a LF in separate chunks are one line end.
        let mut p = Parser::default();
        assert!(p.push(b"data: x\r").unwrap().is_empty());
        assert_eq!(p.push(b"\n\r\n").unwrap().len(), 1);
    }

    #[test]
    fn events_are_bounded_and_scanned_once() {
        let mut p = Parser::default();
        let chunk = vec![b'x'; 1 << 20];
        let mut failed = false;
        for _ in 0..(MAX_EVENT_BYTES >> 20) + 1 {
            if p.push(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn writes_message_events() {
        assert_eq!(message_event("{}", Some("s-1")), Bytes::from("event: message\nid: s-1\ndata: {}\n\n"));
    }
}
