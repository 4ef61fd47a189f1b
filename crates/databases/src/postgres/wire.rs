//! PostgreSQL's frontend/backend protocol at the byte level: cutting
//! tagged messages out of a buffer (with a size bound), reading the few
//! fields the proxy needs, and building the messages the gateway itself
//! sends (authentication requests, errors, notices).
//!
//! Client messages are decoded with checked reads ([`decode_client`]);
//! what the database sends is forwarded as it came, and only the tag and
//! a handful of bodies (errors, command tags, transaction status) are read.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

/// The largest untagged message (startup, SSL or cancel request) read.
pub const MAX_STARTUP_BYTES: usize = 10_000;

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a message claims {0} bytes, more than this endpoint accepts ({1})")]
    TooLarge(usize, usize),
    #[error("a message claims an impossible length ({0})")]
    BadLength(i32),
    #[error("message `{0}` is malformed: {1}")]
    Malformed(char, String),
    #[error("message type `{0}` is not accepted here")]
    Unsupported(char),
}

/// Cuts one complete tagged message (tag, length, body) off the front of
/// `buf`. `None` until all of it has arrived; an error as soon as its
/// length says it is too large, before any of its body is buffered.
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let len = usize::try_from(declared).map_err(|_| WireError::BadLength(declared))?;
    if len < 4 {
        return Err(WireError::BadLength(declared));
    }
    if len > max {
        return Err(WireError::TooLarge(len, max));
    }
    if buf.len() < len + 1 {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len + 1).freeze()))
}

/// Cuts one untagged message (length first) off the front of `buf`.
pub fn take_untagged(buf: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::try_from(declared).map_err(|_| WireError::BadLength(declared))?;
    if !(8..=MAX_STARTUP_BYTES).contains(&len) {
        return Err(if len > MAX_STARTUP_BYTES {
            WireError::TooLarge(len, MAX_STARTUP_BYTES)
        } else {
            WireError::BadLength(declared)
        });
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len).freeze()))
}

/// The request code of an untagged message.
pub fn request_code(message: &[u8]) -> i32 {
    message.get(4..8).map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub const SSL_REQUEST: i32 = 80_877_103;
pub const GSSENC_REQUEST: i32 = 80_877_104;
pub const CANCEL_REQUEST: i32 = 80_877_102;

/// A client message, as far as the proxy needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Query(String),
    Parse {
        name: String,
        query: String,
    },
    Bind {
        portal: String,
        statement: String,
        formats: Vec<i16>,
        parameters: Vec<Option<Bytes>>,
    },
    Describe,
    Close {
        portal: bool,
        name: String,
    },
    Execute {
        portal: String,
    },
    Sync,
    Flush,
    Terminate,
    /// `CopyData`, `CopyDone`, `CopyFail`: the body of a `COPY … FROM STDIN`
    /// that was decided as a statement.
    Copy,
}

/// Decodes a whole tagged frame from a client in the ready state.
/// Anything outside the simple and extended query protocols and `COPY`
/// (the fast-path `FunctionCall`, a stray password message) is refused.
///
/// Written by hand with checked reads: `pgwire` 0.42's decoders (the
/// first choice) panic on a truncated body (an `Execute` of one byte
/// advances past its end), and nothing a client sends may do that.
pub fn decode_client(frame: &Bytes) -> Result<ClientMessage, WireError> {
    let tag = frame.first().copied().unwrap_or(0);
    let mut r = Reader { body: frame.get(5..).unwrap_or_default(), tag };
    let message = match tag {
        b'd' | b'c' | b'f' => return Ok(ClientMessage::Copy),
        b'Q' => ClientMessage::Query(r.cstr()?),
        b'P' => {
            let name = r.cstr()?;
            let query = r.cstr()?;
            let types = r.count()?;
            for _ in 0..types {
                r.i32()?;
            }
            ClientMessage::Parse { name, query }
        }
        b'B' => {
            let portal = r.cstr()?;
            let statement = r.cstr()?;
            let n = r.count()?;
            let mut formats = Vec::with_capacity(n.min(r.body.len() / 2));
            for _ in 0..n {
                formats.push(r.i16()?);
            }
            let n = r.count()?;
            let mut parameters = Vec::with_capacity(n.min(r.body.len() / 4));
            for _ in 0..n {
                let len = r.i32()?;
                parameters.push(match usize::try_from(len) {
                    Ok(len) => Some(Bytes::copy_from_slice(r.take(len)?)),
                    Err(_) if len == -1 => None,
                    Err(_) => return Err(r.malformed("a negative parameter length")),
                });
            }
            if formats.len() > 1 && formats.len() != parameters.len() {
                return Err(r.malformed("format codes do not match the parameters"));
            }
            if formats.iter().any(|f| !matches!(f, 0 | 1)) {
                return Err(r.malformed("an unknown format code"));
            }
            let n = r.count()?;
            for _ in 0..n {
                r.i16()?;
            }
            ClientMessage::Bind { portal, statement, formats, parameters }
        }
        b'D' => {
            r.kind()?;
            r.cstr()?;
            ClientMessage::Describe
        }
        b'C' => {
            let portal = r.kind()? == b'P';
            ClientMessage::Close { portal, name: r.cstr()? }
        }
        b'E' => {
            let portal = r.cstr()?;
            r.i32()?;
            ClientMessage::Execute { portal }
        }
        b'S' => ClientMessage::Sync,
        b'H' => ClientMessage::Flush,
        b'X' => ClientMessage::Terminate,
        other => return Err(WireError::Unsupported(char::from(other))),
    };
    if !r.body.is_empty() {
        return Err(r.malformed("bytes after the end of the message"));
    }
    Ok(message)
}

/// Checked reads from a message body.
struct Reader<'a> {
    body: &'a [u8],
    tag: u8,
}

impl<'a> Reader<'a> {
    fn malformed(&self, what: &str) -> WireError {
        WireError::Malformed(char::from(self.tag), what.to_owned())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.body.len() < n {
            return Err(self.malformed("truncated"));
        }
        let (head, rest) = self.body.split_at(n);
        self.body = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A non-negative 16-bit count.
    fn count(&mut self) -> Result<usize, WireError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| self.malformed("a negative count"))
    }

    /// `S` (statement) or `P` (portal).
    fn kind(&mut self) -> Result<u8, WireError> {
        match self.take(1)?[0] {
            k @ (b'S' | b'P') => Ok(k),
            _ => Err(self.malformed("neither `S` nor `P`")),
        }
    }

    fn cstr(&mut self) -> Result<String, WireError> {
        let end = self.body.iter().position(|&b| b == 0).ok_or_else(|| self.malformed("unterminated string"))?;
        let text = std::str::from_utf8(&self.body[..end]).map_err(|_| self.malformed("a string that is not UTF-8"))?;
        let text = text.to_owned();
        self.body = &self.body[end + 1..];
        Ok(text)
    }
}

/// The startup message's parameters, protocol 3.x only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    pub minor: u16,
    pub parameters: Vec<(String, String)>,
}

/// Reads a `StartupMessage` (as cut by [`take_untagged`]).
pub fn decode_startup(message: &[u8]) -> Result<Startup, WireError> {
    let malformed = |e: &str| WireError::Malformed('0', e.to_owned());
    let code = request_code(message);
    let (major, minor) = ((code >> 16) & 0xffff, code & 0xffff);
    if major != 3 {
        return Err(malformed("only protocol version 3 is spoken here"));
    }
    let mut body = message.get(8..).ok_or_else(|| malformed("truncated"))?;
    let mut parameters = Vec::new();
    loop {
        let key = cstr(&mut body).ok_or_else(|| malformed("unterminated parameter name"))?;
        if key.is_empty() {
            break;
        }
        let value = cstr(&mut body).ok_or_else(|| malformed("unterminated parameter value"))?;
        if parameters.iter().any(|(k, _): &(String, String)| *k == key) {
            return Err(malformed("a startup parameter is repeated"));
        }
        parameters.push((key, value));
    }
    if !body.is_empty() {
        return Err(malformed("bytes after the parameters"));
    }
    Ok(Startup { minor: u16::try_from(minor).unwrap_or(u16::MAX), parameters })
}

/// A cancel request's process id and secret key.
pub fn decode_cancel(message: &[u8]) -> Option<(i32, i32)> {
    if message.len() != 16 {
        return None;
    }
    let mut body = &message[8..];
    Some((body.get_i32(), body.get_i32()))
}

/// Reads a password message's text.
pub fn decode_password(frame: &[u8]) -> Result<String, WireError> {
    let malformed = |e: &str| WireError::Malformed('p', e.to_owned());
    if frame.first() != Some(&b'p') {
        return Err(WireError::Unsupported(char::from(frame.first().copied().unwrap_or(0))));
    }
    let mut body = frame.get(5..).ok_or_else(|| malformed("truncated"))?;
    let password = cstr(&mut body).ok_or_else(|| malformed("unterminated"))?;
    if !body.is_empty() {
        return Err(malformed("bytes after the password"));
    }
    Ok(password)
}

fn cstr(body: &mut &[u8]) -> Option<String> {
    let end = body.iter().position(|&b| b == 0)?;
    let text = String::from_utf8(body[..end].to_vec()).ok()?;
    *body = &body[end + 1..];
    Some(text)
}

/// The fields of an `ErrorResponse` or `NoticeResponse` frame.
pub fn fields(frame: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut body = frame.get(5..).unwrap_or_default();
    while let Some((&code, rest)) = body.split_first() {
        if code == 0 {
            break;
        }
        body = rest;
        let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
        out.push((code, String::from_utf8_lossy(&body[..end]).into_owned()));
        body = body.get(end + 1..).unwrap_or_default();
    }
    out
}

/// The SQLSTATE of an `ErrorResponse` frame.
pub fn sqlstate(frame: &[u8]) -> Option<String> {
    fields(frame).into_iter().find(|(code, _)| *code == b'C').map(|(_, v)| v)
}

/// The command tag of a `CommandComplete` frame.
pub fn command_tag(frame: &[u8]) -> String {
    let body = frame.get(5..).unwrap_or_default();
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// What an error or notice says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report<'a> {
    pub severity: &'a str,
    pub code: &'a str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

fn put_report(out: &mut BytesMut, tag: u8, report: &Report<'_>) {
    let mut body = BytesMut::new();
    let mut field = |code: u8, value: &str| {
        body.put_u8(code);
        // A NUL would end the field early and shift the rest.
        body.put_slice(value.replace('\0', " ").as_bytes());
        body.put_u8(0);
    };
    field(b'S', report.severity);
    field(b'V', report.severity);
    field(b'C', report.code);
    field(b'M', &report.message);
    if let Some(detail) = &report.detail {
        field(b'D', detail);
    }
    if let Some(hint) = &report.hint {
        field(b'H', hint);
    }
    body.put_u8(0);
    put_frame(out, tag, &body);
}

/// An `ErrorResponse`.
pub fn error(report: &Report<'_>) -> Bytes {
    let mut out = BytesMut::new();
    put_report(&mut out, b'E', report);
    out.freeze()
}

/// A `NoticeResponse`.
pub fn notice(report: &Report<'_>) -> Bytes {
    let mut out = BytesMut::new();
    put_report(&mut out, b'N', report);
    out.freeze()
}

/// A message with `tag` and `body`.
pub fn put_frame(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_i32(i32::try_from(body.len() + 4).unwrap_or(i32::MAX));
    out.put_slice(body);
}

/// `AuthenticationCleartextPassword` or `AuthenticationOk`.
pub fn authentication(code: i32) -> Bytes {
    let mut out = BytesMut::new();
    put_frame(&mut out, b'R', &code.to_be_bytes());
    out.freeze()
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    let mut body = BytesMut::new();
    body.put_slice(name.as_bytes());
    body.put_u8(0);
    body.put_slice(value.as_bytes());
    body.put_u8(0);
    put_frame(out, b'S', &body);
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    let mut body = BytesMut::new();
    body.put_i32(pid);
    body.put_i32(secret);
    put_frame(out, b'K', &body);
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    put_frame(out, b'Z', &[status]);
}

/// `NegotiateProtocolVersion`: this side speaks 3.0, and none of the
/// protocol options (`_pq_.…`) the client asked for.
pub fn negotiate_protocol_version(unsupported: &[String]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i32(0x0003_0000);
    body.put_i32(i32::try_from(unsupported.len()).unwrap_or(i32::MAX));
    for option in unsupported {
        body.put_slice(option.as_bytes());
        body.put_u8(0);
    }
    let mut out = BytesMut::new();
    put_frame(&mut out, b'v', &body);
    out.freeze()
}

/// A simple `Query` message.
pub fn query(text: &str) -> Bytes {
    let mut body = BytesMut::new();
    body.put_slice(text.as_bytes());
    body.put_u8(0);
    let mut out = BytesMut::new();
    put_frame(&mut out, b'Q', &body);
    out.freeze()
}

/// An `Execute` of portal `name`, all rows.
pub fn execute(name: &str) -> Bytes {
    let mut body = BytesMut::new();
    body.put_slice(name.as_bytes());
    body.put_u8(0);
    body.put_i32(0);
    let mut out = BytesMut::new();
    put_frame(&mut out, b'E', &body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_whole_and_bounded() {
        let mut buf = BytesMut::from(&query("select 1")[..]);
        buf.put_slice(b"S\0\0\0\x04");
        let first = take_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(decode_client(&first).unwrap(), ClientMessage::Query("select 1".into()));
        let second = take_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(decode_client(&second).unwrap(), ClientMessage::Sync);
        assert!(take_frame(&mut buf, 1024).unwrap().is_none());

        let mut huge = BytesMut::from(&b"Q\x7f\xff\xff\xff"[..]);
        assert!(matches!(take_frame(&mut huge, 1024), Err(WireError::TooLarge(..))));
        let mut negative = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert!(matches!(take_frame(&mut negative, 1024), Err(WireError::BadLength(-1))));
        let mut short = BytesMut::from(&b"Q\0\0\0\x02"[..]);
        assert!(take_frame(&mut short, 1024).is_err());
    }

    #[test]
    fn the_fast_path_and_strays_are_refused() {
        for tag in [b'F', b'p', b'?', 0] {
            let mut out = BytesMut::new();
            put_frame(&mut out, tag, b"\0\0\0\0");
            assert!(matches!(decode_client(&out.freeze()), Err(WireError::Unsupported(_))));
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let mut out = BytesMut::new();
        put_frame(&mut out, b'Q', b"no terminator");
        assert!(decode_client(&out.freeze()).is_err());
        let mut out = BytesMut::new();
        put_frame(&mut out, b'E', b"p\0");
        assert!(decode_client(&out.freeze()).is_err());
    }

    #[test]
    fn startup_parameters_are_read_and_repeats_refused() {
        let mut m = BytesMut::new();
        let body = b"user\0bot\0database\0orders\0\0";
        m.put_i32(i32::try_from(8 + body.len()).unwrap());
        m.put_i32(0x0003_0000);
        m.put_slice(body);
        let s = decode_startup(&m).unwrap();
        assert_eq!(s.parameters[0], ("user".to_owned(), "bot".to_owned()));
        let mut m = BytesMut::new();
        let body = b"user\0a\0user\0b\0\0";
        m.put_i32(i32::try_from(8 + body.len()).unwrap());
        m.put_i32(0x0003_0000);
        m.put_slice(body);
        assert!(decode_startup(&m).is_err());
    }

    #[test]
    fn errors_round_trip_and_nul_cannot_shift_fields() {
        let e = error(&Report {
            severity: "ERROR",
            code: "42501",
            message: "denied\0by policy".into(),
            detail: Some("d".into()),
            hint: None,
        });
        assert_eq!(sqlstate(&e).as_deref(), Some("42501"));
        let f = fields(&e);
        assert!(f.contains(&(b'M', "denied by policy".to_owned())));
        assert!(f.contains(&(b'D', "d".to_owned())));
    }
}
