//! The sidecar benchmark's ceiling: pingora proxying to one upstream with the sidecar's server
//! settings (threads, timeouts, h2c) but no verification and no header work. What the sidecar
//! costs above this is ours; below it, pingora's.
//!
//! ```sh
//! cargo run --release -p auth-edge --example pingora_proxy -- 127.0.0.1:18001 127.0.0.1:18000 [threads]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::prelude::HttpPeer;
use pingora::proxy::{http_proxy_service_with_name, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

/// The same allocator as the sidecar, so the ceiling differs from it only by the work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Plain {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Plain {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        peer.options.read_timeout = Some(Duration::from_secs(60));
        if session.is_http2() {
            peer.options.set_http_version(2, 2);
        }
        Ok(Box::new(peer))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18001".into());
    let upstream: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:18000")
        .parse()?;
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy =
        http_proxy_service_with_name(&server.configuration, Plain { upstream }, "pingora only");
    if let Some(app) = proxy.app_logic_mut() {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        app.server_options = Some(options);
    }
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    eprintln!("pingora_proxy listening on {listen}, upstream {upstream}");
    server.run(RunArgs::default());
    Ok(())
}
