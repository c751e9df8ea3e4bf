//! The inbox on Redis under load: how many deliveries per second are acknowledged (stored
//! in Redis, AOF `appendfsync always`, then answered 200), the latency the inbox adds, and
//! how fast a worker with a no-op handler empties the queue.
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench inbox_redis
//! INBOX_BENCH_SECONDS=10 INBOX_BENCH_SENDERS=32 cargo bench -p authgear-webhook-benches --bench inbox_redis
//! # Redis's files on tmpfs (an fsync costs nothing): the store's own ceiling.
//! INBOX_BENCH_DIR=/dev/shm cargo bench -p authgear-webhook-benches --bench inbox_redis
//! # The draining worker's concurrency (default 64); Redis's per-command times of the drain.
//! INBOX_BENCH_CONCURRENCY=32 INBOX_BENCH_COMMANDSTATS=1 cargo bench -p authgear-webhook-benches --bench inbox_redis
//! ```
//!
//! With `appendfsync always`, Redis syncs once per turn of its event loop, for all the
//! writes of that turn: the rate is bounded by about senders / fsync time. Measure the
//! disk's with `redis-benchmark -t set -c 1 -d 1024` against the same Redis.
//!
//! One command: it starts its own `redis-server` (free loopback port, `appendonly yes`,
//! `appendfsync always`, files in a temp dir), an axum server on 127.0.0.1 behind
//! `VerifySignatureLayer` with the inbox layer on a `RedisStore`, and `INBOX_BENCH_SENDERS`
//! (32) concurrent HTTP/1.1 senders of signed 1 KiB non-blocking events, each with a new
//! id, for `INBOX_BENCH_SECONDS` (5). Then the same server without the inbox (the 200
//! comes from a handler that does nothing) for the ratio. Then a `Worker` (concurrency 64,
//! no-op handler) drains what was stored, with the CPU that `redis-server` and this process
//! used meanwhile. Then, with that worker running, the senders again: how many events it
//! is behind when they stop, and how soon it catches up. Everything runs in this process
//! on a two-thread runtime, senders included: the figures are for the whole loop on this
//! machine.

use std::{
    env,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use authgear_webhook::{
    SIGNATURE_HEADER, VerifySignatureLayer,
    inbox::{CancellationToken, Counts, Delivery, Inbox, RedisStore},
    sign,
};
use axum::{Router, routing::post};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

const SECRET: &str = "bench-webhook-secret";

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: nothing then.
    if !env::args().any(|arg| arg == "--bench") {
        return;
    }
    let seconds: u64 = setting("INBOX_BENCH_SECONDS", 5);
    let senders: usize = setting("INBOX_BENCH_SENDERS", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(Duration::from_secs(seconds), senders));
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// `redis-server` with the durable settings, killed (and its files removed) on drop.
struct Redis {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let base = env::var_os("INBOX_BENCH_DIR").map_or_else(env::temp_dir, Into::into);
        let dir = base.join(format!("authgear-inbox-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server starts");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            dir,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

impl Redis {
    /// One command through `redis-cli`: its output.
    fn cli(&self, args: &[&str]) -> String {
        let port = self.url.rsplit(':').next().unwrap_or_default();
        Command::new("redis-cli")
            .args(["-p", port])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Seconds of CPU the server has used so far (user + system), from `INFO cpu`.
    fn cpu(&self) -> f64 {
        self.cli(&["INFO", "cpu"])
            .lines()
            .filter_map(|line| {
                let (name, value) = line.trim().split_once(':')?;
                matches!(name, "used_cpu_user" | "used_cpu_sys")
                    .then(|| value.parse::<f64>().ok())?
            })
            .sum()
    }
}

/// Seconds of CPU this process has used so far (user + system), from `/proc/self/stat`
/// (0 where there is none).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: fields 3.., utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 1 KiB non-blocking event with `id`.
fn event(run: &str, id: u64) -> Bytes {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut body =
        format!(r#"{{"id":"{run}-{id:012}","seq":{id},"type":"bench.event","payload":{{"pad":""#)
            .into_bytes();
    let tail = format!(r#""}},"context":{{"timestamp":{now}}}}}"#);
    body.resize(1024 - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    Bytes::from(body)
}

/// What one load run measured.
struct Load {
    acknowledged: u64,
    other: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn report(&mut self, name: &str) -> f64 {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            self.latencies
                .get(
                    ((self.latencies.len() as f64 * q) as usize)
                        .min(self.latencies.len().max(1) - 1),
                )
                .copied()
                .unwrap_or_default()
        };
        let rate = self.acknowledged as f64 / self.elapsed.as_secs_f64();
        println!(
            "{name:>10}: {rate:>8.0} events/s acknowledged ({} in {:.1} s, {} not 200), p50 {:.2} ms, p99 {:.2} ms",
            self.acknowledged,
            self.elapsed.as_secs_f64(),
            self.other,
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
        );
        rate
    }
}

/// `senders` concurrent senders of new events to `url` for `duration`.
async fn load(url: &str, run: &'static str, duration: Duration, senders: usize) -> Load {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let next = Arc::new(AtomicU64::new(0));
    let (acknowledged, other) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        let (acknowledged, other, latencies) =
            (acknowledged.clone(), other.clone(), latencies.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            while Instant::now() < end {
                let body = event(run, next.fetch_add(1, Ordering::Relaxed));
                let request = Request::post(&url)
                    .header(SIGNATURE_HEADER, sign(SECRET, &body))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body))
                    .expect("request");
                let sent = Instant::now();
                let status = client.request(request).await.map(|r| r.status());
                mine.push(sent.elapsed());
                match status {
                    Ok(StatusCode::OK) => acknowledged.fetch_add(1, Ordering::Relaxed),
                    _ => other.fetch_add(1, Ordering::Relaxed),
                };
            }
            latencies.lock().expect("not poisoned").extend(mine);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    Load {
        acknowledged: acknowledged.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/")
}

async fn run(duration: Duration, senders: usize) {
    let redis = Redis::start();
    let store = RedisStore::open(redis.url.as_str()).expect("url");
    let inbox = Inbox::new(store);
    // The inbox inside the verifying layer, as in examples/axum_server.rs.
    let with_inbox = serve(
        Router::new().route("/", post(|| async { "" })).layer(
            tower::ServiceBuilder::new()
                .layer(VerifySignatureLayer::new(SECRET))
                .layer(inbox.layer()),
        ),
    )
    .await;
    let without = serve(
        Router::new()
            .route("/", post(|| async { "" }))
            .layer(VerifySignatureLayer::new(SECRET)),
    )
    .await;
    println!(
        "{senders} senders, 1 KiB events, {duration:?} per run, Redis AOF appendfsync always in {}",
        redis.dir.display()
    );
    // Warm-up: connections, the scripts loaded.
    load(&with_inbox, "warm", Duration::from_millis(500), senders).await;
    let stored = load(&with_inbox, "inbox", duration, senders)
        .await
        .report("inbox");
    let plain = load(&without, "plain", duration, senders)
        .await
        .report("no inbox");
    println!(
        "     ratio: {:.2} of the server without the inbox",
        stored / plain
    );

    let queued = inbox.counts().await.expect("counts").queued;
    let concurrency = setting("INBOX_BENCH_CONCURRENCY", 64);
    println!("    worker: concurrency {concurrency}, no-op handler");
    let shutdown = CancellationToken::new();
    let stats = env::var_os("INBOX_BENCH_COMMANDSTATS").is_some();
    if stats {
        redis.cli(&["CONFIG", "RESETSTAT"]);
    }
    let (redis_cpu, worker_cpu) = (redis.cpu(), own_cpu());
    let started = Instant::now();
    let worker = tokio::spawn(
        authgear_webhook::inbox::Worker::new(inbox.clone())
            .concurrency(concurrency)
            .poll(Duration::from_millis(10))
            .run(
                |_: Delivery| async { Ok::<_, std::convert::Infallible>(()) },
                shutdown.clone(),
            ),
    );
    loop {
        let counts = inbox.counts().await.expect("counts");
        if counts.queued + counts.in_flight == 0 {
            let elapsed = started.elapsed();
            println!(
                "    worker: {:>8.0} events/s handled ({queued} in {:.1} s, {} dead); CPU: redis-server {:.0}%, this process {:.0}% (of one core)",
                queued as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64(),
                counts.dead,
                (redis.cpu() - redis_cpu) / elapsed.as_secs_f64() * 100.0,
                (own_cpu() - worker_cpu) / elapsed.as_secs_f64() * 100.0,
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if stats {
        println!("{}", redis.cli(&["INFO", "commandstats"]));
    }

    // Steady load: the same senders while the worker runs. Does the queue grow?
    load(&with_inbox, "steady", duration, senders)
        .await
        .report("+ worker");
    let ended = Instant::now();
    let behind = |counts: Counts| counts.queued + counts.in_flight;
    let at_end = behind(inbox.counts().await.expect("counts"));
    while behind(inbox.counts().await.expect("counts")) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "    worker: {at_end} events behind when the load ended, drained {:.2} s later",
        ended.elapsed().as_secs_f64()
    );
    shutdown.cancel();
    let _ = worker.await;
}
