//! [`Application`]: binds the listeners, starts the background work, serves until shutdown.
//!
//! `build` binds first and returns, exposing the bound ports, so tests start the real edge on
//! port 0 and embedders can start it inside their own process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::background;
use crate::config::{Config, RevocationSources};
use crate::ext_authz;
use crate::server::{self, Protocol};
use crate::verifier::Verifier;

/// A bound, not yet serving, edge.
pub struct Application {
    verifier: Arc<Verifier>,
    revocations: RevocationSources,
    drain: Duration,
    listener: TcpListener,
    admin_listener: TcpListener,
    grpc_listener: Option<TcpListener>,
}

/// Aborts the background task when serving ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Application {
    /// Binds the listeners (forward-auth, admin, and ext_authz gRPC when configured). Keys are
    /// loaded in the background once [`Application::run_until`] runs; until then `/readyz`
    /// answers 503.
    pub async fn build(config: Config) -> std::io::Result<Application> {
        let serve = &config.serve;
        let listener = TcpListener::bind(serve.listen).await?;
        let admin_listener = TcpListener::bind(serve.admin_listen).await?;
        let grpc_listener = match serve.grpc_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let verifier = Arc::new(Verifier::new(config.verifier));
        verifier.metrics().set_mode("forward-auth");
        Ok(Application {
            drain: serve.drain,
            verifier,
            revocations: config.revocations,
            listener,
            admin_listener,
            grpc_listener,
        })
    }

    /// The forward-auth address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The forward-auth port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// The admin port actually bound.
    pub fn admin_port(&self) -> u16 {
        self.admin_listener.local_addr().map_or(0, |a| a.port())
    }

    /// The ext_authz gRPC port actually bound, if that listener is configured.
    pub fn grpc_port(&self) -> Option<u16> {
        self.grpc_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// The verifier, shared with the servers (metrics, revocations, readiness).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone()
    }

    /// Serves until `shutdown` resolves, then drains for up to the configured time.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let verifier = self.verifier;
        let drain = self.drain;
        let _background = AbortOnDrop(tokio::spawn(background::run(
            verifier.clone(),
            self.revocations,
        )));

        // One shutdown signal fans out to both listeners.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        let v = verifier.clone();
        let forward_auth = server::serve(
            self.listener,
            Protocol::Http1,
            move |req| server::forward_auth::handle(v.clone(), req),
            stopped(stop_rx.clone()),
            drain,
        );
        let v = verifier.clone();
        let admin = server::serve(
            self.admin_listener,
            Protocol::Http1,
            move |req| server::admin::handle(v.clone(), req),
            stopped(stop_rx.clone()),
            drain,
        );
        let v = verifier.clone();
        let grpc = async move {
            if let Some(listener) = self.grpc_listener {
                server::serve(
                    listener,
                    Protocol::Http2,
                    move |req| ext_authz::grpc::handle(v.clone(), req),
                    stopped(stop_rx),
                    drain,
                )
                .await;
            }
        };
        tokio::join!(forward_auth, admin, grpc);
        tracing::info!("stopped");
    }
}
