//! `auth-accounts probe [live|ready]`: the container health check, for images without curl.
//!
//! Asks the running server on this host (`PORT`; a wildcard `HOST` means loopback) for
//! `/api/v1/auth/health/live` or `/health/ready` and exits 0 on a 200, 1 otherwise. Plain HTTP/1.0
//! over a blocking socket with short timeouts: no runtime, no client library, nothing to configure.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Where the server listens, seen from inside its own container.
fn target(host: &str, port: u16) -> Option<SocketAddr> {
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => {
            Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
        }
        Ok(ip) if ip.is_unspecified() => Some(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)),
        Ok(ip) => Some(SocketAddr::new(ip, port)),
        Err(_) => (host, port).to_socket_addrs().ok()?.next(),
    }
}

/// `true` when the probe answered 200.
pub(crate) fn check(host: &str, port: u16, which: &str) -> bool {
    let Some(addr) = target(host, port) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, TIMEOUT) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    let request = format!("GET /api/v1/auth/health/{which} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    // "HTTP/1.1 200 OK": the status code is the second field.
    std::str::from_utf8(&head[..read])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        == Some("200")
}

/// The probe to ask for: `live` (the default) or `ready`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    #[default]
    Live,
    Ready,
}

impl Which {
    pub fn as_str(self) -> &'static str {
        match self {
            Which::Live => "live",
            Which::Ready => "ready",
        }
    }
}

/// The subcommand: `true` (exit status 0) when the server configured by `config` answers 200,
/// `false` (exit status 1) otherwise. A bad argument is clap's usage error (status 2).
pub(crate) fn healthy(config: &crate::config::Config, which: Which) -> bool {
    check(&config.http.host, config.http.port, which.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply = if request.starts_with("GET /api/v1/auth/health/live ") {
                    answer
                } else {
                    "HTTP/1.1 404 Not Found\r\n\r\n"
                };
                let _ = s.write_all(reply.as_bytes());
            }
        });
        port
    }

    #[test]
    fn healthy_only_on_200() {
        let port = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}");
        assert!(check("0.0.0.0", port, "live"));
        let port = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(!check("127.0.0.1", port, "live"));
        let port = serve_once("HTTP/1.1 200 OK\r\n\r\n");
        assert!(!check("127.0.0.1", port, "ready"), "wrong path is a 404");
        // Nobody listening.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(!check("127.0.0.1", port, "live"));
    }

    #[test]
    fn wildcard_hosts_mean_loopback() {
        assert_eq!(target("0.0.0.0", 8000), "127.0.0.1:8000".parse().ok());
        assert_eq!(target("::", 8000), "[::1]:8000".parse().ok());
        assert_eq!(target("10.1.2.3", 80), "10.1.2.3:80".parse().ok());
    }
}
