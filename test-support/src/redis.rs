//! A throwaway redis-server (no persistence) on a random loopback port, plain or TLS-only.

use std::process::Command;
use std::time::Duration;

use crate::fs::TempDir;
use crate::net::{free_port, wait_until};
use crate::process::{binary, Peer};
use crate::tls::TestCa;

/// A running redis-server (`$AUTH_TEST_REDIS`, else PATH), stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// The loopback port it listens on (the TLS port for [`RedisServer::start_tls`]).
    pub port: u16,
    peer: Peer,
}

impl RedisServer {
    /// A server on a free port, once it answers PING.
    pub async fn start() -> RedisServer {
        RedisServer::start_on(free_port()).await
    }

    /// A fresh server on `port` (a restart after an outage: the data is gone).
    pub async fn start_on(port: u16) -> RedisServer {
        let server = RedisServer::spawn(port, &["--port".into(), port.to_string()]).await;
        // Listening is not serving yet (loading): wait for PING.
        let client = redis::Client::open(server.url()).expect("redis URL");
        wait_until("redis-server PING", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            }
        })
        .await;
        server
    }

    /// Redis with TLS only (no plain port), presenting `ca`'s server certificate.
    pub async fn start_tls(ca: &TestCa) -> RedisServer {
        let port = free_port();
        let mut tls = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
        ];
        for (flag, path) in [
            ("--tls-cert-file", ca.cert_file()),
            ("--tls-key-file", ca.key_file()),
            ("--tls-ca-cert-file", ca.ca_file()),
        ] {
            tls.push(flag.into());
            tls.push(path.display().to_string());
        }
        tls.extend(["--tls-auth-clients".into(), "no".into()]);
        RedisServer::spawn(port, &tls).await
    }

    /// redis-server with `listen` (its port options), on loopback, without persistence; `port` is
    /// the one to wait for.
    async fn spawn(port: u16, listen: &[String]) -> RedisServer {
        let bin = binary("AUTH_TEST_REDIS", "redis-server", &[]);
        let dir = TempDir::new("redis");
        let mut cmd = Command::new(bin);
        cmd.args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path());
        let peer = Peer::spawn("redis-server", port, dir, cmd)
            .wait_listening()
            .await;
        RedisServer { port, peer }
    }

    /// Stops it and starts a fresh one on the same port (a Redis outage and recovery).
    pub async fn restart(mut self) -> RedisServer {
        let port = self.port;
        self.peer.kill();
        drop(self);
        RedisServer::start_on(port).await
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new connection to it.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        self.peer.log_text()
    }

    /// Kills the server (SIGKILL: an outage).
    pub fn stop(&mut self) {
        self.peer.process().stop();
    }
}

/// [`RedisServer::start`].
pub async fn start_redis() -> RedisServer {
    RedisServer::start().await
}

/// [`RedisServer::start_tls`].
pub async fn start_redis_tls(ca: &TestCa) -> RedisServer {
    RedisServer::start_tls(ca).await
}

/// [`RedisServer::restart`].
pub async fn restart_redis(server: RedisServer) -> RedisServer {
    server.restart().await
}
