//! An HTTP load generator for `bench/accounts.sh`: open loop at a fixed rate (latency measured
//! from each request's scheduled start, so a stalled server is not hidden by a waiting client:
//! no coordinated omission), or closed loop with N connections to find the maximum.
//!
//! ```text
//! loadgen URL METHOD SECONDS RATE|max:CONNECTIONS [--bearer-file F] [--body-file F]
//!         [--refresh-chain F]
//! ```
//!
//! `--body-file`: the request body (the file's content, sent as JSON with every request).
//! `--refresh-chain`: refresh tokens, one per line, each a session: a request takes a free
//! session's current token, and the answer's `refresh_token` replaces it (a rotated token is never
//! sent again); the file is rewritten with the current tokens at the end. Prints one JSON line: requests, achieved rate, status counts, latency
//! p50/p90/p99/p99.9/max in milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Results {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<String, u64>,
}

struct Job {
    client: reqwest::Client,
    url: String,
    method: reqwest::Method,
    bearer: Option<String>,
    body: Option<String>,
    /// Free sessions' current refresh tokens (`--refresh-chain`).
    chain: Option<Mutex<Vec<String>>>,
    results: Mutex<Results>,
}

impl Job {
    async fn one(&self, scheduled: Instant) {
        let mut request = self.client.request(self.method.clone(), &self.url);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &self.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let token = match &self.chain {
            None => None,
            Some(pool) => {
                let Some(token) = pool.lock().unwrap().pop() else {
                    self.record(scheduled, "no_free_session".into());
                    return;
                };
                request = request
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "refreshToken": token }).to_string());
                Some(token)
            }
        };
        let (status, next) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                let body = response.bytes().await.unwrap_or_default();
                let next = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["refresh_token"].as_str().map(str::to_owned));
                (status, next)
            }
            Err(err) if err.is_timeout() => ("timeout".into(), None),
            Err(_) => ("error".into(), None),
        };
        if let (Some(pool), Some(token)) = (&self.chain, next.or(token)) {
            pool.lock().unwrap().insert(0, token);
        }
        self.record(scheduled, status);
    }

    fn record(&self, scheduled: Instant, status: String) {
        let us = u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut results = self.results.lock().unwrap();
        results.latencies_us.push(us);
        *results.statuses.entry(status).or_default() += 1;
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    #[allow(clippy::cast_precision_loss)]
    let ms = sorted[i] as f64 / 1000.0;
    ms
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("URL").clone();
    let method: reqwest::Method = args.get(2).expect("METHOD").parse().expect("method");
    let seconds: f64 = args.get(3).expect("SECONDS").parse().expect("seconds");
    let mode = args.get(4).expect("RATE or max:CONNECTIONS").clone();
    let bearer = arg(&args, "--bearer-file").map(|f| {
        std::fs::read_to_string(f)
            .expect("bearer file")
            .trim()
            .to_owned()
    });
    let body = arg(&args, "--body-file").map(|f| {
        std::fs::read_to_string(f)
            .expect("body file")
            .trim()
            .to_owned()
    });
    let chain = arg(&args, "--refresh-chain").map(|f| {
        Mutex::new(
            std::fs::read_to_string(f)
                .expect("refresh tokens")
                .lines()
                .map(str::to_owned)
                .collect(),
        )
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(512)
        .build()
        .expect("client");
    let job = Arc::new(Job {
        client,
        url,
        method,
        bearer,
        body,
        chain,
        results: Mutex::default(),
    });
    let duration = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    if let Some(connections) = mode.strip_prefix("max:") {
        // Closed loop: each connection sends its next request when the last one is answered.
        let connections: usize = connections.parse().expect("connections");
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let job = job.clone();
                tokio::spawn(async move {
                    while start.elapsed() < duration {
                        job.one(Instant::now()).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    } else {
        // Open loop: request n starts at start + n / rate, whatever happened to the others.
        let rate: f64 = mode.parse().expect("rate");
        let mut tasks = Vec::new();
        let mut n = 0u64;
        loop {
            #[allow(clippy::cast_precision_loss)]
            let at = Duration::from_secs_f64(n as f64 / rate);
            if at >= duration {
                break;
            }
            let scheduled = start + at;
            tokio::time::sleep_until(scheduled.into()).await;
            let job = job.clone();
            tasks.push(tokio::spawn(async move { job.one(scheduled).await }));
            n += 1;
        }
        for task in tasks {
            let _ = task.await;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // The sessions' current tokens, for the next run (the ones read at start are rotated away).
    if let (Some(file), Some(pool)) = (arg(&args, "--refresh-chain"), &job.chain) {
        let tokens = pool.lock().unwrap().join("\n");
        std::fs::write(file, tokens + "\n").expect("write the refresh tokens back");
    }
    let results = job.results.lock().unwrap();
    let mut sorted = results.latencies_us.clone();
    sorted.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rate = sorted.len() as f64 / elapsed;
    let out = serde_json::json!({
        "requests": sorted.len(),
        "seconds": elapsed,
        "rate": rate,
        "statuses": results.statuses,
        "p50_ms": percentile(&sorted, 0.5),
        "p90_ms": percentile(&sorted, 0.9),
        "p99_ms": percentile(&sorted, 0.99),
        "p999_ms": percentile(&sorted, 0.999),
        "max_ms": percentile(&sorted, 1.0),
    });
    println!("{out}");
}
