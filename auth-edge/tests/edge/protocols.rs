//! The sidecar's other protocols against real upstreams: WebSocket (PyPI `websockets`) through
//! the sidecar's own tunnel, closed when its session is revoked; gRPC over HTTP/2 cleartext
//! (PyPI `grpcio`, client and server), refused with gRPC statuses.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/edge/protocol_peers.py");

fn python_peer(name: &'static str, mode: &str) -> Peer {
    let port = free_port();
    let mut cmd = Command::new(peer_path("AUTH_TEST_PYTHON"));
    cmd.args([PEERS, mode, &port.to_string()]);
    Peer::spawn(name, port, TempDir::new(name), cmd)
}

/// A WebSocket client written here on purpose: it must see the raw frames (and when the
/// connection ends) to check what the sidecar sends.
struct WsClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One frame as the client read it.
#[derive(Debug)]
struct Frame {
    opcode: u8,
    payload: Vec<u8>,
}

impl WsClient {
    /// Opens `path` through `addr` with `headers`; returns the HTTP status line and, on 101,
    /// the client.
    async fn connect(
        port: u16,
        path: &str,
        headers: &[(&str, String)],
    ) -> (String, Option<WsClient>) {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
                .await
                .expect("handshake answer in time")
                .expect("read");
            assert!(
                n > 0,
                "closed during the handshake: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let status = head.lines().next().unwrap_or_default().to_owned();
        if !status.contains(" 101 ") {
            return (head, None);
        }
        let rest = buf[end..].to_vec();
        (head, Some(WsClient { stream, buf: rest }))
    }

    async fn fill(&mut self, need: usize) -> bool {
        while self.buf.len() < need {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// The next frame from the server (unmasked, as servers send), or None at end of stream.
    async fn read_frame(&mut self) -> Option<Frame> {
        if !self.fill(2).await {
            return None;
        }
        let (opcode, len7) = (self.buf[0] & 0x0f, self.buf[1] & 0x7f);
        assert_eq!(self.buf[1] & 0x80, 0, "a server frame must not be masked");
        let (header, len) = match len7 {
            126 => {
                assert!(self.fill(4).await);
                (
                    4,
                    usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                )
            }
            127 => panic!("no test message is that long"),
            n => (2, usize::from(n)),
        };
        assert!(self.fill(header + len).await, "frame cut short");
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Some(Frame { opcode, payload })
    }

    async fn send_text(&mut self, text: &str) {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).expect("short")];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("send");
    }

    async fn echo(&mut self, text: &str) -> String {
        self.send_text(text).await;
        let frame = tokio::time::timeout(Duration::from_secs(5), self.read_frame())
            .await
            .expect("echo in time")
            .expect("a frame");
        assert_eq!(frame.opcode, 1, "text frame");
        String::from_utf8(frame.payload).expect("utf-8")
    }
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// A fake accounts, the Python peer in `mode` as the upstream, and the sidecar in front of it
/// (with `env`), ready.
async fn sidecar_before(
    name: &'static str,
    mode: &str,
    public_paths: &str,
    env: &[(&str, &str)],
) -> (FakeAccounts, Peer, Peer, u16) {
    let fake = FakeAccounts::start(&[key_a()]).await;
    let upstream = python_peer(name, mode).wait_listening().await;
    let (sidecar, admin) =
        start_sidecar_with(&fake, upstream_addr(&upstream), public_paths, env).await;
    (fake, upstream, sidecar, admin)
}

#[tokio::test]
async fn websockets_pass_with_our_identity_and_close_when_their_session_is_revoked() {
    let (fake, upstream, sidecar, admin) =
        sidecar_before("websockets upstream", "ws-server", "/public/", &[]).await;
    wait_until(Duration::from_secs(10), "stream connected", || {
        fake.stream_connections() >= 1
    })
    .await;

    // No token: refused by the sidecar, the application never sees the upgrade.
    let (head, ws) = WsClient::connect(sidecar.port, "/chat", &[]).await;
    assert!(ws.is_none() && head.starts_with("HTTP/1.1 401"), "{head}");

    // Two sessions; a spoofed identity header is replaced by ours.
    let (one, two) = (claims(), claims());
    let mut sockets = Vec::new();
    for c in [&one, &two] {
        let headers = [bearer(&sign(c, key_a())), ("X-User-Id", "admin".to_owned())];
        let (head, ws) = WsClient::connect(sidecar.port, "/chat", &headers).await;
        let mut ws = ws.unwrap_or_else(|| panic!("{head}\n{}", sidecar.log_text()));
        let hello = ws.read_frame().await.expect("the upstream's greeting");
        let seen: Value = serde_json::from_slice(&hello.payload).expect("JSON");
        assert_eq!(seen["x-user-id"], c.sub.to_string(), "{seen}");
        assert_eq!(seen["x-session-id"], c.sid.to_string(), "{seen}");
        assert_eq!(seen["x_user_id"], Value::Null, "{seen}");
        assert_eq!(ws.echo("hello").await, "hello");
        sockets.push(ws);
    }
    let mut two_ws = sockets.pop().expect("two");
    let mut one_ws = sockets.pop().expect("one");

    // Revoking session one closes its socket, idle as it is, with 1008; session two lives on.
    let revoked = Instant::now();
    fake.revoke(one.sid.as_ref(), one.exp);
    let close = tokio::time::timeout(Duration::from_secs(2), one_ws.read_frame())
        .await
        .expect("closed within 2 s of the revocation")
        .expect("a Close frame before the end");
    let lag = revoked.elapsed();
    assert_eq!(close.opcode, 8, "{close:?}");
    assert_eq!(&close.payload[..2], &1008u16.to_be_bytes());
    assert_eq!(&close.payload[2..], b"session revoked");
    assert!(
        one_ws.read_frame().await.is_none(),
        "the connection ends after the Close"
    );
    assert_eq!(two_ws.echo("still here").await, "still here");
    wait_until(Duration::from_secs(5), "the upstream saw the Close", || {
        upstream.log_text().contains("closed 1008 session revoked")
    })
    .await;
    let metrics = text_of(&format!("http://127.0.0.1:{admin}/metrics")).await;
    assert!(
        metrics.contains("auth_edge_sidecar_tunnels_closed_total{reason=\"revoked\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("auth_edge_sidecar_tunnels 1\n"),
        "{metrics}"
    );
    println!("revocation to Close frame: {lag:?}");

    // A revoked session cannot open a new one.
    let headers = [bearer(&sign(&one, key_a()))];
    let (head, ws) = WsClient::connect(sidecar.port, "/chat", &headers).await;
    assert!(ws.is_none() && head.starts_with("HTTP/1.1 401"), "{head}");
}

#[tokio::test]
async fn websockets_close_with_1013_once_revocations_cannot_be_known() {
    let (fake, _upstream, sidecar, _admin) = sidecar_before(
        "websockets upstream",
        "ws-server",
        "",
        &[("AUTH_EDGE_REVOCATION_MAX_STALENESS_SECONDS", "5")],
    )
    .await;
    let headers = [bearer(&sign(&claims(), key_a()))];
    let (head, ws) = WsClient::connect(sidecar.port, "/chat", &headers).await;
    let mut ws = ws.unwrap_or_else(|| panic!("{head}"));
    ws.read_frame().await.expect("greeting");
    // The feed refuses the edge from now on (fail-closed is the default): past the bound, the
    // edge cannot know whether this session was revoked.
    fake.require_token("rotated");
    fake.drop_streams();
    let close = tokio::time::timeout(Duration::from_secs(15), ws.read_frame())
        .await
        .expect("closed once stale (5 s bound)")
        .expect("a Close frame");
    assert_eq!(close.opcode, 8, "{close:?}");
    assert_eq!(&close.payload[..2], &1013u16.to_be_bytes());
}

#[tokio::test]
async fn an_upgrade_the_application_refuses_is_answered_as_it_answered() {
    let fake = FakeAccounts::start(&[key_a()]).await;
    // The echoing HTTP upstream knows no WebSocket: it answers the upgrade request with a 200.
    let upstream = start_upstream().await;
    let (sidecar, _admin) = start_sidecar(&fake, upstream, "").await;
    let headers = [bearer(&sign(&claims(), key_a()))];
    let (head, ws) = WsClient::connect(sidecar.port, "/chat", &headers).await;
    assert!(ws.is_none(), "{head}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

fn grpc_call(port: u16, token: &str) -> Value {
    let out = auth_test_support::python::run_python(
        &peer_path("AUTH_TEST_PYTHON"),
        &[PEERS, "grpc-call", &format!("127.0.0.1:{port}"), token],
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn grpc_passes_over_h2c_with_our_identity_and_is_refused_with_grpc_statuses() {
    let (fake, _upstream, sidecar, _admin) =
        sidecar_before("grpc upstream", "grpc-server", "", &[]).await;
    let port = sidecar.port;
    let c = claims();
    let token = sign(&c, key_a());

    let ok = tokio::task::spawn_blocking({
        let token = token.clone();
        move || grpc_call(port, &token)
    })
    .await
    .expect("call");
    assert_eq!(ok["code"], "OK", "{ok}\n{}", sidecar.log_text());
    assert_eq!(ok["reply"]["x-user-id"], c.sub.to_string(), "{ok}");
    assert_eq!(ok["reply"]["x-session-id"], c.sid.to_string(), "{ok}");
    assert_eq!(ok["stream"], serde_json::json!(["0", "1", "2"]), "{ok}");

    for token in ["", "not-a-token"] {
        let refused = tokio::task::spawn_blocking(move || grpc_call(port, token))
            .await
            .expect("call");
        assert_eq!(refused["code"], "UNAUTHENTICATED", "{refused}");
    }
    fake.revoke(c.sid.as_ref(), c.exp);
    wait_until(Duration::from_secs(5), "revocation applied", || {
        let token = token.clone();
        std::thread::spawn(move || grpc_call(port, &token)["code"] == "UNAUTHENTICATED")
            .join()
            .expect("call")
    })
    .await;
}

fn upstream_addr(peer: &Peer) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], peer.port))
}
