//! Just enough of the WebSocket framing (RFC 6455 §5.2) to close a tunnelled connection cleanly:
//! the tunnel relays bytes without decoding them, so it tracks where each frame ends, and may
//! only insert its own Close frame between two frames.

/// Follows one direction of a WebSocket byte stream, frame by frame.
#[derive(Debug, Default)]
pub(crate) struct FrameCursor {
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The current frame's header, while it is incomplete (at most 14 bytes).
    header: Vec<u8>,
    /// Set when the stream cannot be WebSocket framing (a length over 2^63): never insert then.
    lost: bool,
}

impl FrameCursor {
    /// Consumes relayed bytes.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.payload_left > 0 {
                let take = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.payload_left -= take as u64;
                data = &data[take..];
                continue;
            }
            self.header.push(data[0]);
            data = &data[1..];
            if let Some(len) = self.header_complete() {
                self.header.clear();
                self.payload_left = len;
            }
        }
    }

    /// The payload length once the header is complete.
    fn header_complete(&mut self) -> Option<u64> {
        let h = &self.header;
        if h.len() < 2 {
            return None;
        }
        let masked = h[1] & 0x80 != 0;
        let (extended, len7) = match h[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let total = 2 + extended + if masked { 4 } else { 0 };
        if h.len() < total {
            return None;
        }
        let len = len7.unwrap_or_else(|| {
            h[2..2 + extended]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        });
        if len >> 63 != 0 {
            self.lost = true;
        }
        Some(len)
    }

    /// Whether a frame of our own may be written now (between two frames).
    pub(crate) fn at_boundary(&self) -> bool {
        !self.lost && self.payload_left == 0 && self.header.is_empty()
    }
}

/// Close code 1008, "policy violation": the session was revoked.
pub(crate) const POLICY_VIOLATION: u16 = 1008;
/// Close code 1013, "try again later": revocations cannot be checked (the feed is stale).
pub(crate) const TRY_AGAIN_LATER: u16 = 1013;

/// A Close frame with `code` and `reason` (at most 123 bytes), masked with `mask` when it goes
/// to the server (clients must mask, servers must not: RFC 6455 §5.3).
pub(crate) fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    let len = payload.len() as u8; // <= 125: a control frame's limit
    let mut frame = vec![0x88];
    match mask {
        None => {
            frame.push(len);
            frame.extend_from_slice(&payload);
        }
        Some(key) => {
            frame.push(0x80 | len);
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let m = if masked { 0x80 } else { 0 };
        match payload_len {
            0..=125 => f.push(m | payload_len as u8),
            126..=0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(7u8, payload_len));
        f
    }

    #[test]
    fn finds_frame_boundaries_however_the_bytes_are_split() {
        let mut stream = Vec::new();
        for (len, masked) in [
            (0, false),
            (5, true),
            (125, false),
            (126, true),
            (70_000, false),
        ] {
            stream.extend(frame(len, masked));
        }
        let ends: Vec<usize> = {
            let mut at = 0;
            [
                (0, false),
                (5, true),
                (125, false),
                (126, true),
                (70_000, false),
            ]
            .iter()
            .map(|&(len, masked)| {
                at += frame(len, masked).len();
                at
            })
            .collect()
        };
        for chunk in [1, 3, 7, 1000, stream.len()] {
            let mut cursor = FrameCursor::default();
            let mut fed = 0;
            for piece in stream.chunks(chunk) {
                cursor.feed(piece);
                fed += piece.len();
                assert_eq!(
                    cursor.at_boundary(),
                    ends.contains(&fed),
                    "chunk {chunk}, at {fed}"
                );
            }
        }
    }

    #[test]
    fn close_frames_parse_as_one_frame_each() {
        let to_client = close_frame(POLICY_VIOLATION, "session revoked", None);
        assert_eq!(&to_client[..4], &[0x88, 17, 0x03, 0xf0]);
        assert_eq!(&to_client[4..], b"session revoked");
        let to_server = close_frame(POLICY_VIOLATION, "session revoked", Some([9, 8, 7, 6]));
        assert_eq!(to_server[1], 0x80 | 17);
        let unmasked: Vec<u8> = to_server[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [9, 8, 7, 6][i % 4])
            .collect();
        assert_eq!(&unmasked[..2], &1008u16.to_be_bytes());
        for f in [to_client, to_server] {
            let mut cursor = FrameCursor::default();
            cursor.feed(&f[..f.len() - 1]);
            assert!(!cursor.at_boundary());
            cursor.feed(&f[f.len() - 1..]);
            assert!(cursor.at_boundary());
        }
        let long = close_frame(TRY_AGAIN_LATER, &"x".repeat(500), None);
        assert_eq!(long.len(), 2 + 125);
    }
}
