//! The revocation feed's message parser (`auth_token::FeedMessage::parse`: one NDJSON line of the
//! accounts stream, or one Redis pub/sub payload).
//!
//! Input: NDJSON, split into lines the way the stream reader splits them. Beyond "no panic": what
//! parses is re-read identically from its own serialisation, and `type` decides the variant.
#![no_main]

use auth_token::FeedMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let Ok(message) = FeedMessage::parse(line) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_slice(line).expect("parsed, so JSON");
        let kind = value.get("type").and_then(|t| t.as_str());
        match (&message, kind) {
            (FeedMessage::Snapshot { .. }, Some("snapshot"))
            | (FeedMessage::Revoked(_), Some("revoked"))
            | (FeedMessage::Ping, Some("ping")) => {
                let again = FeedMessage::parse(message.to_json().as_bytes()).expect("own JSON");
                assert_eq!(again, message);
            }
            (FeedMessage::Unknown, Some(other)) => {
                assert!(!["snapshot", "revoked", "ping"].contains(&other))
            }
            (message, kind) => panic!("{message:?} parsed from type {kind:?}"),
        }
    }
});
