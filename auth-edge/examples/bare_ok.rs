//! The benchmark's ceiling: a bare hyper HTTP/1.1 server answering `200 OK` with an empty body
//! to every request, on the same stack as the forward-auth listener but with no verification.
//! Also the sidecar benchmark's upstream.
//!
//! ```sh
//! cargo run --release -p auth-edge --example bare_ok -- 127.0.0.1:18000 [threads]
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// The same allocator as the edge, so the ceiling differs from it only by the work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:18000")
        .parse()?;
    let threads: usize = match args.next() {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

async fn serve(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("bare_ok listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // Same socket option as the edge, so the comparison is of the work, not of Nagle.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
