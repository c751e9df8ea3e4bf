//! Inbox benchmark: what storing each non-blocking delivery durably costs, over loopback.
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench inbox
//! INBOX_REQUESTS=40000 INBOX_ROUNDS=3 cargo bench -p authgear-webhook-benches --bench inbox
//! ```
//!
//! This binary starts the servers itself (itself again, with `INBOX_SERVER=plain|inbox`,
//! on a current-thread runtime): `plain` is the verifying layer and a handler answering
//! 200, `inbox` adds the inbox on SQLite (a file in the temp dir, synced commits) and a
//! worker with a no-op handler. A client in this process (hyper, `INBOX_CONNECTIONS`
//! keep-alive connections, 32 by default, each sending one request at a time) sends
//! `INBOX_REQUESTS` signed 1 KiB `user.created` deliveries, each with its own id, to each
//! server in turn, in `INBOX_ROUNDS` rounds, and reports requests per second and the p50
//! and p99 latency of the 200. For `inbox`, it then waits until the worker has handled
//! every acknowledged event (`GET /handled`) and reports how far behind it was when the
//! load ended and the worker's own rate.
//!
//! `INBOX_DRAIN` (default 20000) events are also stored in-process first and then drained
//! by a worker alone (concurrency 64, no-op handler): the worker's rate with nothing else
//! running. Everything stays on 127.0.0.1; the servers exit when this process goes away.

use std::{
    env,
    io::{BufRead, BufReader},
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use authgear_webhook::{
    SIGNATURE_HEADER, VerifySignatureLayer,
    inbox::{CancellationToken, Delivery, EventKey, Inbox, NewEvent, SqliteStore, Worker},
    sign,
};
use axum::{Router, routing};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceBuilder;

use common::server;

const SECRET: &str = "bench-webhook-secret";

fn setting(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    if let Ok(mode) = env::var("INBOX_SERVER") {
        serve(&mode);
        return ExitCode::SUCCESS;
    }
    // `cargo test --benches` runs bench binaries without `--bench`: no load then.
    if !env::args().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(drive());
    ExitCode::SUCCESS
}

/// A signed 1 KiB `user.created` delivery with `id`: Authgear's fixture, padded.
fn delivery(id: &str) -> (Bytes, String) {
    static FIXTURE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let fixture = FIXTURE.get_or_init(|| {
        let bytes = std::fs::read("tests/fixtures/events/user.created.json").expect("fixture");
        serde_json::from_slice(&bytes).expect("json")
    });
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut event = fixture.clone();
    event["id"] = id.into();
    event["context"]["timestamp"] = now.into();
    event["pad"] = "".into();
    let len = serde_json::to_vec(&event).expect("json").len();
    event["pad"] = "x".repeat(1024usize.saturating_sub(len)).into();
    let body = serde_json::to_vec(&event).expect("json");
    let signature = sign(SECRET, &body);
    (Bytes::from(body), signature)
}

// ---------------------------------------------------------------------------------------
// The servers

static HANDLED: AtomicU64 = AtomicU64::new(0);

fn serve(mode: &str) {
    server::exit_with_driver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let app = Router::new().route("/", routing::post(|| async { StatusCode::OK }));
        let verify = VerifySignatureLayer::new(SECRET);
        let stats = Router::new().route(
            "/handled",
            routing::get(|| async { HANDLED.load(Ordering::Relaxed).to_string() }),
        );
        let app = match mode {
            "inbox" => {
                let file =
                    env::temp_dir().join(format!("inbox-bench-{}.sqlite3", std::process::id()));
                let inbox = Inbox::new(SqliteStore::open(&file).expect("open"));
                tokio::spawn(
                    Worker::new(inbox.clone())
                        .concurrency(64)
                        .run(no_op, CancellationToken::new()),
                );
                stats.merge(app.layer(ServiceBuilder::new().layer(verify).layer(inbox.layer())))
            }
            _ => stats.merge(app.layer(verify)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("address").port());
        axum::serve(listener, app).await.expect("serve");
    });
}

async fn no_op(_: Delivery) -> Result<(), std::convert::Infallible> {
    HANDLED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn start(mode: &str) -> (Child, u16) {
    let mut child = Command::new(env::current_exe().expect("exe"))
        .env("INBOX_SERVER", mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    (child, line.trim().parse().expect("a port"))
}

// ---------------------------------------------------------------------------------------
// The driver

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

async fn drive() {
    let requests = setting("INBOX_REQUESTS", 20_000);
    let connections = setting("INBOX_CONNECTIONS", 32);
    let rounds = setting("INBOX_ROUNDS", 2);
    println!("{requests} requests of 1 KiB, {connections} connections, {rounds} rounds");
    println!("mode   round  req/s    p50 ms  p99 ms  behind at the end");
    for round in 1..=rounds {
        for mode in ["plain", "inbox"] {
            let (mut child, port) = start(mode);
            let url = format!("http://127.0.0.1:{port}/");
            let (rate, p50, p99) = load(&url, requests, connections, round).await;
            let mut worker = String::new();
            if mode == "inbox" {
                let client = client();
                let ended = Instant::now();
                let behind = requests as u64 - handled(&client, port).await;
                loop {
                    if handled(&client, port).await >= requests as u64 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let drained = ended.elapsed().as_secs_f64();
                worker = format!("{behind:>6}  drained in {drained:.2} s");
            }
            println!("{mode:<6} {round:>5}  {rate:>7.0}  {p50:>6.2}  {p99:>6.2}  {worker}");
            let _ = child.kill();
            let _ = child.wait();
            remove(&env::temp_dir().join(format!("inbox-bench-{}.sqlite3", child.id())));
        }
    }
    drain(setting("INBOX_DRAIN", 20_000)).await;
}

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http()
}

async fn handled(client: &Client, port: u16) -> u64 {
    let request = Request::get(format!("http://127.0.0.1:{port}/handled"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(request).await.expect("stats");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    std::str::from_utf8(&body)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sends `requests` deliveries over `connections` concurrent senders; requests per second
/// and the p50 and p99 latency in ms.
async fn load(url: &str, requests: usize, connections: usize, round: usize) -> (f64, f64, f64) {
    let bodies: Vec<_> = (0..requests)
        .map(|n| delivery(&format!("r{round}-{n:08}")))
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let client = client();
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (bodies, next, client, url) =
            (bodies.clone(), next.clone(), client.clone(), url.to_owned());
        senders.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some((body, signature)) = bodies.get(n) else {
                    return latencies;
                };
                let request = Request::post(&url)
                    .header(SIGNATURE_HEADER, signature)
                    .body(Full::new(body.clone()))
                    .expect("request");
                let sent = Instant::now();
                let response = client.request(request).await.expect("a response");
                let status = response.status();
                let _ = response.into_body().collect().await;
                latencies.push(sent.elapsed());
                assert_eq!(status, StatusCode::OK);
            }
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    while let Some(done) = senders.join_next().await {
        latencies.extend(done.expect("sender"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (
        requests as f64 / elapsed,
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    )
}

/// The worker alone: `events` stored first, then drained with a no-op handler.
async fn drain(events: usize) {
    let file = env::temp_dir().join(format!("inbox-bench-drain-{}.sqlite3", std::process::id()));
    let inbox = Inbox::new(SqliteStore::open(&file).expect("open"));
    let store = inbox.store().clone();
    let mut pending = tokio::task::JoinSet::new();
    for n in 0..events {
        let (body, _) = delivery(&format!("d-{n:08}"));
        let event = NewEvent {
            key: EventKey::new("/", format!("d-{n:08}")),
            event_type: "user.created".into(),
            body,
            recovered: false,
        };
        pending.spawn(store.store(event));
        if pending.len() >= 1000 {
            pending.join_next().await;
        }
    }
    while pending.join_next().await.is_some() {}

    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let worker = tokio::spawn(Worker::new(inbox.clone()).concurrency(64).run(
        move |_: Delivery| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, std::convert::Infallible>(()) }
        },
        shutdown.clone(),
    ));
    while handled.load(Ordering::Relaxed) < events as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = worker.await;
    println!(
        "worker alone: {events} events in {elapsed:.2} s = {:.0} events/s",
        events as f64 / elapsed
    );
    remove(&file);
}

/// Removes a SQLite file and its write-ahead log.
fn remove(file: &std::path::Path) {
    let _ = std::fs::remove_file(file);
    for suffix in ["-wal", "-shm"] {
        let mut path = file.to_owned().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}
