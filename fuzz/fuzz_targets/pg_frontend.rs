//! What a PostgreSQL client sends the gateway's endpoint: a stream of
//! tagged messages (and the untagged startup message before them). Cutting
//! and decoding never panics, never reads past a frame, and never accepts
//! a frame larger than the limit; a simple query's statements are
//! substrings of its text, in order.

#![no_main]

use bytes::BytesMut;
use countersign_databases::postgres::{split, wire};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut untagged = BytesMut::from(data);
    if let Ok(Some(message)) = wire::take_untagged(&mut untagged) {
        let _ = wire::decode_startup(&message);
        let _ = wire::decode_cancel(&message);
    }

    let mut buf = BytesMut::from(data);
    loop {
        match wire::take_frame(&mut buf, MAX) {
            Ok(Some(frame)) => {
                assert!(frame.len() <= MAX + 1);
                if let Ok(wire::ClientMessage::Query(text)) = wire::decode_client(&frame) {
                    let mut from = 0;
                    for statement in split::statements(&text) {
                        let at = text[from..].find(statement).map(|i| i + from);
                        assert!(at.is_some(), "a statement that is not in the text, in order");
                        from = at.unwrap_or(from) + statement.len();
                    }
                }
                let _ = wire::decode_password(&frame);
                let _ = wire::fields(&frame);
                let _ = wire::command_tag(&frame);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
