//! Request correlation shared by both services: the W3C Trace Context `traceparent` header and the
//! `X-Request-Id` header.
//!
//! Each service that handles a request continues the caller's trace (same trace id, its own span
//! id) or starts one, and passes the result on: accounts into the Kafka event headers, the edge
//! to the upstream. A request id names one request in logs and in the answer; when the caller
//! sent none (or an unusable one) it is the trace id, so one value finds everything.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};

/// The W3C Trace Context header (lower case, as HTTP/2 and Kafka headers carry it).
pub const TRACEPARENT: &str = "traceparent";
/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";
/// The longest request id taken from a caller; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A parsed `traceparent` (version `00`): trace id, parent (span) id and flags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// Parses a header value. Follows the specification's rules: lower-case hex only, neither
    /// id all zeros, version `ff` invalid, and a future version read by its first four fields.
    /// Anything else is `None` (the caller then starts a new trace).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        // ASCII only, so the slices below are on character boundaries.
        if bytes.len() < 55 || !value.is_ascii() {
            return None;
        }
        let version = hex_bytes::<1>(&value[0..2])?[0];
        if version == 0xff || (version == 0 && bytes.len() != 55) {
            return None;
        }
        // A later version may append fields, always after a dash.
        if bytes.len() > 55 && bytes[55] != b'-' {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = hex_bytes::<16>(&value[3..35])?;
        let span_id = hex_bytes::<8>(&value[36..52])?;
        let flags = hex_bytes::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace (random ids), marked sampled: the services record it in their logs.
    pub fn new_root() -> Self {
        let mut trace_id = random::<16>();
        // The chance of all zeros is 2^-128; the specification forbids it all the same.
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        Self {
            trace_id,
            span_id: new_span_id(),
            flags: 0x01,
        }
    }

    /// The caller's trace continued by this service: same trace id and flags, a new span id.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Continues the trace in `header` (a `traceparent` value), or starts a new one.
    pub fn continue_or_start(header: Option<&str>) -> Self {
        header
            .and_then(Self::parse)
            .map(|parent| parent.child())
            .unwrap_or_else(Self::new_root)
    }

    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// This span's id, 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// The raw trace id (for exporters).
    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The raw span id (for exporters).
    pub fn span_id_bytes(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }
}

/// The header value, version `00`.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of a stack buffer: this runs for every proxied request.
        let mut out = [b'-'; 55];
        out[..2].copy_from_slice(b"00");
        hex_into(&self.trace_id, &mut out[3..35]);
        hex_into(&self.span_id, &mut out[36..52]);
        hex_into(&[self.flags], &mut out[53..55]);
        // Hex digits and dashes only.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// The request id to use: the caller's `X-Request-Id` when it is 1 to [`MAX_REQUEST_ID_LEN`]
/// characters of `A-Z a-z 0-9 - _ . : /` (so it cannot forge log lines or carry markup),
/// otherwise the trace id.
pub fn request_id(header: Option<&str>, trace: &TraceParent) -> String {
    match header {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b)) =>
        {
            id.to_string()
        }
        _ => trace.trace_id(),
    }
}

fn new_span_id() -> [u8; 8] {
    let mut id = random::<8>();
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

fn random<const N: usize>() -> [u8; N] {
    // Ids for every request: drawn from a per-thread pool refilled 512 bytes at a time, one
    // generator call per ~30 requests instead of two per request. The bytes are the system
    // generator's all the same.
    const POOL: usize = 512;
    thread_local! {
        static BYTES: std::cell::RefCell<([u8; POOL], usize)> =
            const { std::cell::RefCell::new(([0; POOL], POOL)) };
    }
    let mut out = [0u8; N];
    BYTES.with(|cell| {
        let mut pool = cell.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + N > POOL {
            // The system generator does not fail on supported platforms; if it ever did, the
            // ids would be zeros and replaced by the callers: correlation ids are not secrets.
            let _ = SystemRandom::new().fill(bytes);
            *used = 0;
        }
        out.copy_from_slice(&bytes[*used..*used + N]);
        // Never hand out the same bytes twice.
        bytes[*used..*used + N].fill(0);
        *used += N;
    });
    out
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    // Hex digits only.
    String::from_utf8(out).unwrap_or_default()
}

/// Lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_the_pool_never_repeat_across_refills() {
        let ids: std::collections::HashSet<[u8; 8]> = (0..1000).map(|_| new_span_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&[0; 8]));
        let roots: std::collections::HashSet<String> = (0..200)
            .map(|_| TraceParent::new_root().to_string())
            .collect();
        assert_eq!(roots.len(), 200);
        for root in &roots {
            assert_eq!(
                TraceParent::parse(root).map(|t| t.to_string()).as_ref(),
                Some(root)
            );
        }
    }

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_the_specification_example() {
        let tp = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id(), "00f067aa0ba902b7");
        assert_eq!(tp.flags(), 1);
        assert_eq!(tp.to_string(), SAMPLE);
    }

    #[test]
    fn refuses_what_the_specification_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_future_version_is_read_by_its_first_fields() {
        let tp = TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what")
            .unwrap();
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_child_keeps_the_trace_and_gets_its_own_span() {
        let parent = TraceParent::parse(SAMPLE).unwrap();
        let child = TraceParent::continue_or_start(Some(SAMPLE));
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_eq!(child.flags(), parent.flags());
        assert_ne!(child.span_id(), parent.span_id());
        let root = TraceParent::continue_or_start(Some("garbage"));
        assert_ne!(root.trace_id(), parent.trace_id());
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
    }

    #[test]
    fn request_ids_are_kept_only_when_harmless() {
        let tp = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(request_id(Some("req-1.a:b/c_d"), &tp), "req-1.a:b/c_d");
        for bad in ["", "a b", "x\ny", "<script>", &"a".repeat(129)] {
            assert_eq!(request_id(Some(bad), &tp), tp.trace_id(), "{bad:?}");
        }
        assert_eq!(request_id(None, &tp), tp.trace_id());
    }
}
