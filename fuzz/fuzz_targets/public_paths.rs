//! `PublicPaths::is_public` (the sidecar's token-free prefixes), differential against a reference
//! normaliser written here.
//!
//! Input: `prefixes \n path` (or just a path, checked against a fixed prefix list). The edge
//! matches the raw path and must say "public" only when every way an upstream could read the
//! path stays inside a public prefix. The reference models those readings: percent-decoding once
//! and twice (a proxy and then the application each decoding), `\` as `/`, `;params` dropped
//! from segments, repeated slashes merged, and RFC 3986 dot-segment removal. And for a plain path
//! (nothing to normalise) the edge must agree exactly with the reference, so the check is not
//! just "never public".
#![no_main]

use auth_fuzz::public_paths::PublicPaths;
use libfuzzer_sys::fuzz_target;

const DEFAULT_PREFIXES: &str = "/static/,/healthz,/api/v1/auth/login";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (raw_prefixes, path) = text.split_once('\n').unwrap_or((DEFAULT_PREFIXES, text));
    let Ok(paths) = PublicPaths::parse(raw_prefixes) else {
        return;
    };
    let public = paths.is_public(path);
    if public {
        for reading in readings(path.as_bytes()) {
            assert!(
                reference_match(paths.prefixes(), &reading),
                "{path:?} is public, but an upstream may read it as {:?}",
                String::from_utf8_lossy(&reading)
            );
        }
    }
    if is_clean(path) {
        assert_eq!(
            public,
            reference_match(paths.prefixes(), path.as_bytes()),
            "plain path {path:?} with prefixes {:?}",
            paths.prefixes()
        );
    }
});

/// Nothing any normaliser would change: starts with `/`, only unreserved characters and `/`, no
/// empty, `.` or `..` segments.
fn is_clean(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !path.contains("//")
        && path.split('/').all(|s| s != "." && s != "..")
}

/// Every path an upstream might route `path` as.
fn readings(path: &[u8]) -> Vec<Vec<u8>> {
    let once = percent_decode(path);
    let twice = percent_decode(&once);
    let mut out = Vec::new();
    for decoded in [path.to_vec(), once, twice] {
        let slashed: Vec<u8> = decoded
            .iter()
            .map(|&b| if b == b'\\' { b'/' } else { b })
            .collect();
        for variant in [decoded, slashed] {
            let bare = strip_params(&variant);
            out.push(remove_dot_segments(&merge_slashes(&variant)));
            out.push(remove_dot_segments(&merge_slashes(&bare)));
            out.push(remove_dot_segments(&bare));
            out.push(remove_dot_segments(&variant));
        }
    }
    out
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Tomcat/Jetty-style path parameters: `a;x=1/b` routes as `a/b`.
fn strip_params(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for (i, segment) in path.split(|b| *b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let name = segment.split(|b| *b == b';').next().unwrap_or(segment);
        out.extend_from_slice(name);
    }
    out
}

fn merge_slashes(path: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for &b in path {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    out
}

/// RFC 3986 section 5.2.4, on whole segments.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut stack: Vec<&[u8]> = Vec::new();
    let segments: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate().skip(1) {
        match *segment {
            b"." => {
                if i == last {
                    stack.push(b"");
                }
            }
            b".." => {
                stack.pop();
                if i == last {
                    stack.push(b"");
                }
            }
            s => stack.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in stack {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Whole-segment prefix match, as documented for `AUTH_EDGE_PUBLIC_PATHS`.
fn reference_match(prefixes: &[String], path: &[u8]) -> bool {
    prefixes.iter().any(|p| {
        let p = p.as_bytes();
        path.strip_prefix(p)
            .is_some_and(|rest| p.ends_with(b"/") || rest.is_empty() || rest.starts_with(b"/"))
    })
}
