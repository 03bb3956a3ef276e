//! The revocation feed's message parser (`auth-edge/src/revocations/message.rs`: one NDJSON line
//! of the accounts stream, or one Redis pub/sub payload).
//!
//! Input: NDJSON, split into lines the way the stream reader splits them. Beyond "no panic": a
//! message that parses re-parses identically from its own meaning (no field is read twice
//! differently), and `type` decides the variant exactly: `snapshot`, `revoked` and `ping` are
//! never mistaken for one another or for an unknown type.
#![no_main]

use auth_fuzz::revocation_message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let Ok(message) = Message::parse(line) else {
            continue;
        };
        // The parsed `type`, as any JSON reader sees it.
        let value: serde_json::Value = serde_json::from_slice(line).expect("parsed, so JSON");
        let kind = value.get("type").and_then(|t| t.as_str());
        match (&message, kind) {
            (Message::Snapshot { revocations }, Some("snapshot")) => {
                let listed = value["revocations"].as_array().expect("a list").len();
                assert_eq!(revocations.len(), listed);
            }
            (Message::Revoked { sid, until }, Some("revoked")) => {
                assert_eq!(value["sid"].as_str(), Some(sid.as_str()));
                assert_eq!(value["until"].as_i64(), Some(*until));
            }
            (Message::Ping, Some("ping")) => {}
            (Message::Unknown, Some(other)) => {
                assert!(!["snapshot", "revoked", "ping"].contains(&other))
            }
            (message, kind) => panic!("{message:?} parsed from type {kind:?}"),
        }
    }
});
