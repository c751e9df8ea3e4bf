//! A flood of slow, unauthenticated bodies, over real sockets: many connections, each
//! announcing `Content-Length: 1 MiB` with a well-formed signature header (no secret needed to
//! write one), sending half the body and then nothing, so that the server holds what it
//! buffered for as long as it waits.
//!
//! - `layer_holds_within_its_budget`: a loopback server in this process, served as
//!   `axum_server` is (the layer with a 2 s body deadline, to keep CI short, and an 8 MiB
//!   budget); a counting allocator measures the live heap. The heap stays within the budget
//!   plus a stated overhead per connection; every stalled connection is answered (408, or 503
//!   at once when the budget was full) and closed; valid deliveries sent during the flood are
//!   answered (200, or 503 with `Retry-After`); afterwards the budget is back to 0 and valid
//!   deliveries succeed.
//! - `axum_server_holds_within_its_budget`: the same flood against the real `axum_server`
//!   example process, with its defaults (10 s deadline); its resident memory (`VmHWM` in
//!   `/proc/<pid>/status`) stays within the budget plus a stated overhead per connection;
//!   valid deliveries during the flood are answered 200 or 503; a connection that sends
//!   nothing is closed (its header-read timeout).
//!
//! The valid deliveries during the flood are sent one every 100 ms for as long as the flood
//! lasts, from a thread of their own with blocking sockets (the flooding clients' runtime
//! would delay them), each timed in two parts: the TCP connect (the kernel's handshake; a
//! full listen queue shows here) and the answer once connected (waiting for the server to
//! accept, then reading, verifying, handling). Against `axum_server`, the server's open
//! files and listen queue are sampled from `/proc` too.
//!
//! `FLOOD_CONNECTIONS` sets the number of connections against `axum_server` (default 200,
//! about 12 s, most of it the server's 10 s deadline; the in-process flood is always 200
//! connections, 3 s); `FLOOD_SERVER` runs another `axum_server` binary instead of this
//! tree's (an older build, to compare). 5 000 connections, with the figures printed:
//!
//! ```sh
//! ulimit -n 20000
//! FLOOD_CONNECTIONS=5000 cargo test --all-features --test flood -- --nocapture --test-threads 1
//! ```
//!
//! Keep `FLOOD_CONNECTIONS` under `ulimit -n`. Latencies are printed, never asserted
//! (the machine is noisy); waits are bounded only so that a bug fails instead of hanging.

mod common;
#[path = "common/heap.rs"]
mod heap;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use authgear_webhook::{BodyBudget, SIGNATURE_HEADER, VerifiedBody, VerifySignatureLayer, sign};
use common::{SECRET, TIMEOUT};
use heap::settled_heap;
use http::{Request, Response};
use peak_alloc::PeakAlloc;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Mutex,
    time::timeout,
};
use tower::Layer;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// One test at a time: the heap and the file descriptors are the process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// What each flooding connection announces; it sends half of it.
const ANNOUNCED: usize = 1024 * 1024;
/// The body deadline of the in-process server.
const DEADLINE: Duration = Duration::from_secs(2);
/// The body budget of the in-process server: smaller than the default, so that the flood
/// fills it even where hashing is slow (a debug build on a busy machine). The default is
/// flooded in `axum_server_holds_within_its_budget`.
const BUDGET: usize = 8 * 1024 * 1024;
/// What a connection may cost besides the bodies the budget counts: hyper's buffers and
/// connection state, the task, the request head, the layer's future (measured: see
/// SECURITY.md), with a margin.
const PER_CONNECTION: usize = 48 * 1024;
/// The resident memory a process may add besides the budget and the connections: what the
/// allocator keeps (fragmentation by many growing buffers), thread stacks, runtime caches.
const RSS_SLACK: usize = 32 * 1024 * 1024;
/// `axum_server`'s connection limit (`MAX_CONNECTIONS`): more connections wait to be accepted.
const SERVER_CONNECTIONS: usize = 1024;

fn connections() -> usize {
    std::env::var("FLOOD_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// How one flooding connection ended.
#[derive(Debug, Default)]
struct Ends {
    /// Answered 408 once the deadline passed.
    timed_out: AtomicUsize,
    /// Answered 503 (budget full, or the server's connections all taken).
    refused: AtomicUsize,
    /// Of those, answered 503 by `axum_server` before it read the request: all its
    /// connections were taken.
    busy: AtomicUsize,
    /// Closed or reset without an answer the client could read (a 503 whose connection was
    /// reset while the client still wrote).
    closed: AtomicUsize,
    /// The longest wait from the stall to the end, in ms.
    longest_ms: AtomicUsize,
}

/// One flooding connection: the head, half the body, then a wait (bounded) for the answer
/// and the close.
async fn flood_one(addr: SocketAddr, head: Arc<Vec<u8>>, half: Arc<Vec<u8>>, ends: Arc<Ends>) {
    let mut stream = match timeout(TIMEOUT * 3, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => panic!("connect: {error}"),
        Err(_) => panic!("connect: no answer in {:?}", TIMEOUT * 3),
    };
    let sent = async {
        stream.write_all(&head).await?;
        stream.write_all(&half).await
    };
    // A refused request's connection may be closed while this still writes.
    let _ = timeout(TIMEOUT, sent)
        .await
        .expect("the server reads or closes");
    let stalled = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(TIMEOUT * 6, read)
        .await
        .expect("the server answers and closes every stalled connection");
    let waited = stalled.elapsed().as_millis() as usize;
    ends.longest_ms.fetch_max(waited, Ordering::Relaxed);
    let counter = if answer.starts_with(b"HTTP/1.1 408") {
        &ends.timed_out
    } else if answer.starts_with(b"HTTP/1.1 503") {
        assert!(
            String::from_utf8_lossy(&answer)
                .to_ascii_lowercase()
                .contains("retry-after: 1"),
            "{answer:?}"
        );
        if answer.ends_with(b"too many connections") {
            ends.busy.fetch_add(1, Ordering::Relaxed);
        }
        &ends.refused
    } else {
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
        &ends.closed
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The flooding request: its head (with a well-formed signature of the whole announced body)
/// and the half of the body that is sent.
fn flood_request(path: &str) -> (Arc<Vec<u8>>, Arc<Vec<u8>>) {
    let body = vec![b'a'; ANNOUNCED];
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {ANNOUNCED}\r\n{SIGNATURE_HEADER}: {}\r\n\r\n",
        sign(SECRET, &body)
    );
    (
        Arc::new(head.into_bytes()),
        Arc::new(body[..ANNOUNCED / 2].to_vec()),
    )
}

/// Starts the flood: `count` connections, each on its task. Returns once every connection
/// has sent its half body (or was closed), with the tasks still waiting for their answers.
async fn start_flood(
    addr: SocketAddr,
    path: &str,
    count: usize,
) -> (tokio::task::JoinSet<()>, Arc<Ends>) {
    let (head, half) = flood_request(path);
    let ends = Arc::new(Ends::default());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        tasks.spawn(flood_one(addr, head.clone(), half.clone(), ends.clone()));
    }
    (tasks, ends)
}

async fn finish_flood(mut tasks: tokio::task::JoinSet<()>) {
    let all = async {
        while let Some(result) = tasks.join_next().await {
            result.expect("no flooding connection failed");
        }
    };
    timeout(TIMEOUT * 18, all).await.expect("no hang");
}

/// A signed delivery of `body` to `path`, asking the server to close the connection after it.
fn signed_request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{SIGNATURE_HEADER}: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        sign(SECRET, body)
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// The status line of `response`; a 503 must say when to retry.
fn status_line(response: &str) -> String {
    let status = response.lines().next().unwrap_or_default().to_owned();
    if status.starts_with("HTTP/1.1 503") {
        assert!(
            response.to_ascii_lowercase().contains("retry-after: 1"),
            "{response}"
        );
    }
    status
}

/// Sends one signed delivery on a new connection: its status line.
async fn deliver(addr: SocketAddr, path: &str, body: &[u8]) -> String {
    status_line(&common::raw_exchange(addr, &signed_request(path, body), false).await)
}

/// One valid delivery sent during the flood: its status line, how long the TCP connect
/// took (the kernel's handshake: a full listen queue shows here) and how long the answer
/// took once connected (waiting to be accepted by the server, reading, verifying,
/// handling).
#[derive(Debug)]
struct Probe {
    /// When it was sent, from the start of the probing.
    sent: Duration,
    status: String,
    connect: Duration,
    answer: Duration,
}

/// Sends one signed delivery on a new connection with blocking sockets (bounded by
/// timeouts), and reads the answer to its end.
fn probe_once(addr: SocketAddr, path: &str, body: &[u8], sent: Duration) -> Probe {
    use std::io::{Read, Write};
    let raw = signed_request(path, body);
    let start = Instant::now();
    let mut stream = std::net::TcpStream::connect_timeout(&addr, TIMEOUT * 3)
        .expect("a valid delivery connects during the flood");
    let connect = start.elapsed();
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    // A 503 may close the connection before all of it was read.
    let _ = stream.write_all(&raw);
    let mut response = Vec::new();
    let mut buf = [0; 4096];
    let mut answer = None;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
        if answer.is_none() && response.windows(4).any(|w| w == b"\r\n\r\n") {
            answer = Some(start.elapsed() - connect);
        }
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = status_line(&response);
    assert!(
        status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.1 503"),
        "a valid delivery during the flood: {response:?}"
    );
    Probe {
        sent,
        status,
        connect,
        answer: answer.unwrap_or_else(|| start.elapsed() - connect),
    }
}

/// Sends valid deliveries, one every 100 ms, from a thread of its own (not the flooding
/// clients' runtime, whose queue would delay them), until `done` is set, and at least
/// `count` of them.
fn probe_during(
    addr: SocketAddr,
    path: &'static str,
    body: impl Fn(usize) -> Vec<u8> + Send + 'static,
    count: usize,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Probe>> {
    std::thread::spawn(move || {
        let mut probes = Vec::new();
        let started = Instant::now();
        while probes.len() < count || !done.load(Ordering::SeqCst) {
            let body = body(probes.len());
            probes.push(probe_once(addr, path, &body, started.elapsed()));
            std::thread::sleep(Duration::from_millis(100));
        }
        probes
    })
}

fn summary(latencies: impl Iterator<Item = Duration>) -> String {
    let mut ms: Vec<f64> = latencies.map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    format!(
        "median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.9),
        ms.last().copied().unwrap_or_default(),
    )
}

/// What the probes saw: how many were accepted, connect and answer times, and how many
/// took a second or more in all.
fn probes_summary(probes: &[Probe]) -> String {
    let accepted = probes
        .iter()
        .filter(|probe| probe.status.starts_with("HTTP/1.1 200"))
        .count();
    let slow: Vec<String> = probes
        .iter()
        .filter(|probe| probe.connect + probe.answer >= Duration::from_secs(1))
        .map(|probe| {
            format!(
                "sent at {} ms: connect {} ms, answer {} ms",
                probe.sent.as_millis(),
                probe.connect.as_millis(),
                probe.answer.as_millis()
            )
        })
        .collect();
    format!(
        "{accepted} of {} accepted (the rest 503), {} took 1 s or more ({}); connect {}; \
         answer {}; in all {}",
        probes.len(),
        slow.len(),
        slow.join("; "),
        summary(probes.iter().map(|probe| probe.connect)),
        summary(probes.iter().map(|probe| probe.answer)),
        summary(probes.iter().map(|probe| probe.connect + probe.answer)),
    )
}

/// Serves `router` on a fresh loopback port as `examples/axum_server.rs` does (hyper-util,
/// HTTP/1 reads of at most 8 KiB ahead), and returns its address.
async fn serve(router: axum::Router) -> SocketAddr {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::conn::auto,
        service::TowerToHyperService,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .max_buf_size(8 * 1024);
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_holds_within_its_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Clients and server share this process's two worker threads: a size they can both
    // serve; the full size is for the real server process below.
    let count = 200;
    let budget = BodyBudget::new(BUDGET);
    let accepted = Arc::new(AtomicUsize::new(0));
    let handler = {
        let accepted = accepted.clone();
        tower::service_fn(move |request: Request<VerifiedBody>| {
            let accepted = accepted.clone();
            async move {
                drop(request.into_body().into_bytes());
                accepted.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Response::new(String::from("ok")))
            }
        })
    };
    let verified = VerifySignatureLayer::new(SECRET)
        .body_deadline(DEADLINE)
        .body_budget(budget.clone())
        .layer(handler);
    let addr = serve(axum::Router::new().route_service("/hook", verified)).await;

    let delivery = |i: usize| format!(r#"{{"id":"{i}","type":"user.created"}}"#).into_bytes();

    // Warm up what lives as long as the runtime, then measure from there.
    let status = deliver(addr, "/hook", &delivery(0)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let baseline = settled_heap(&HEAP).await;
    HEAP.reset_peak_usage();

    let started = Instant::now();
    let (tasks, ends) = start_flood(addr, "/hook", count).await;
    // The most the budget held, sampled while the flood goes on.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (budget, stop) = (budget.clone(), stop.clone());
        tokio::spawn(async move {
            let mut most = 0;
            while !stop.load(Ordering::SeqCst) {
                most = budget.in_use().max(most);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        })
    };
    let probing = probe_during(addr, "/hook", delivery, 10, stop.clone());
    finish_flood(tasks).await;
    stop.store(true, Ordering::SeqCst);
    let probes = joined(probing).await;
    let most_in_use = sampler.await.expect("sampler");
    let peak = HEAP.peak_usage().saturating_sub(baseline);
    let elapsed = started.elapsed();

    // Every connection is gone: the budget is back to 0 (bounded wait: the server's tasks
    // end a moment after the clients read their close).
    for _ in 0..100 {
        if budget.in_use() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(budget.in_use(), 0, "budget leaked");
    let status = deliver(addr, "/hook", &delivery(99)).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "after the flood: {status}"
    );
    let after = settled_heap(&HEAP).await;

    let (timed_out, refused, closed) = (
        ends.timed_out.load(Ordering::SeqCst),
        ends.refused.load(Ordering::SeqCst),
        ends.closed.load(Ordering::SeqCst),
    );
    println!(
        "flood in process: {count} connections x {} KiB sent of {} KiB announced, budget {}, \
         deadline {DEADLINE:?}: {timed_out} answered 408, {refused} answered 503, {closed} \
         closed while sending (refused); longest wait from the stall to the close {} ms; \
         over in {:.1} s. Heap: peak {} above the baseline ({} KiB per connection over the \
         budget), {} KiB after. Budget: at most {} in use (sampled). Valid deliveries during \
         the flood: {}",
        ANNOUNCED / 2048,
        ANNOUNCED / 1024,
        mib(budget.limit()),
        ends.longest_ms.load(Ordering::SeqCst),
        elapsed.as_secs_f64(),
        mib(peak),
        peak.saturating_sub(budget.limit()) / count / 1024,
        after.saturating_sub(baseline) / 1024,
        mib(most_in_use),
        probes_summary(&probes),
    );
    assert_eq!(timed_out + refused + closed, count);
    // The flood filled the budget (its bodies together are far larger), and the requests
    // that got room were held until their deadline.
    assert!(refused + closed > 0, "the flood did not fill the budget");
    assert!(most_in_use <= budget.limit());
    assert!(timed_out > 0, "no stalled body reached its deadline");
    assert!(
        peak <= budget.limit() + count * PER_CONNECTION,
        "peak heap {peak} over the budget {} + {count} x {PER_CONNECTION}",
        budget.limit()
    );
    // Within the deadline, give or take the noise of a busy machine (bounded, not timed).
    assert!(ends.longest_ms.load(Ordering::SeqCst) < (DEADLINE + TIMEOUT).as_millis() as usize);
}

/// The resident and peak resident memory of process `pid`, from `/proc/<pid>/status`.
fn rss(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Waits (off the runtime's threads) for a helper thread's result.
async fn joined<T: Send + 'static>(thread: std::thread::JoinHandle<T>) -> T {
    tokio::task::spawn_blocking(move || thread.join().expect("the thread did not panic"))
        .await
        .expect("joined")
}

/// The connections waiting in the accept queue of the listener on 127.0.0.1:`port`
/// (`rx_queue` of its line in `/proc/net/tcp`).
fn listen_queue(port: u16) -> usize {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // `st` 0A: listening.
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(4)?.split_once(':'))
                .flatten()
                .and_then(|(_, rx)| usize::from_str_radix(rx, 16).ok())
        })
        .unwrap_or_default()
}

/// Samples the server process every 50 ms until `done`: the most resident memory, open
/// files (its connections, roughly) and connections waiting in its listen queue.
fn watch_server(
    pid: u32,
    port: u16,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize, usize)> {
    std::thread::spawn(move || {
        let (mut rss_most, mut fds_most, mut queued_most) = (0, 0, 0);
        while !done.load(Ordering::SeqCst) {
            rss_most = rss(pid).0.max(rss_most);
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
            fds_most = fds.max(fds_most);
            queued_most = listen_queue(port).max(queued_most);
            std::thread::sleep(Duration::from_millis(50));
        }
        (rss_most, fds_most, queued_most)
    })
}

/// A delivery `axum_server` accepts: a real event with a fresh id and timestamp (its replay
/// protection is on).
fn fresh_event(i: usize) -> Vec<u8> {
    let fixture = std::fs::read("tests/fixtures/events/user.created.json").expect("fixture");
    let mut event: serde_json::Value = serde_json::from_slice(&fixture).expect("json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    event["context"]["timestamp"] = now.into();
    event["id"] = format!("flood{:06}{i:06}", std::process::id() % 1_000_000).into();
    serde_json::to_vec(&event).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_server_holds_within_its_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    let count = connections();
    let server = std::env::var_os("FLOOD_SERVER")
        .map_or_else(|| common::example::path("axum_server"), Into::into);
    let mut child = std::process::Command::new(server)
        .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
        .env("ADDR", "127.0.0.1:0")
        .env_remove("REDIS_URL")
        .env_remove("AUTHGEAR_WEBHOOK_REPLAY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the example runs");
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let (send, lines) = std::sync::mpsc::channel();
    // Reads every line, so that the server never blocks on a full pipe.
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = send.send(line);
        }
    });
    let first = lines.recv_timeout(TIMEOUT).expect("the server starts");
    let addr: SocketAddr = first
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|addr| addr.parse().ok())
        .expect("a listening line");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);

    let status = deliver(addr, "/", &fresh_event(0)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (before, _) = rss(pid);

    // A connection that sends nothing: the server closes it after its header-read timeout
    // (5 s; the flood lasts longer), rather than let it hold a connection for ever.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let (tasks, ends) = start_flood(addr, "/", count).await;
    let done = Arc::new(AtomicBool::new(false));
    let probing = probe_during(addr, "/", |i| fresh_event(i + 1), 10, done.clone());
    let watching = watch_server(pid, addr.port(), done.clone());
    finish_flood(tasks).await;
    done.store(true, Ordering::SeqCst);
    let probes = joined(probing).await;
    let (during_rss, most_fds, most_queued) = joined(watching).await;
    let (_, peak) = rss(pid);
    let silent_closed = matches!(
        timeout(TIMEOUT, silent.read(&mut [0; 64])).await,
        Ok(Ok(0) | Err(_))
    );
    let status = deliver(addr, "/", &fresh_event(99)).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "after the flood: {status}"
    );

    let budget = BodyBudget::default().limit();
    let (timed_out, refused, closed) = (
        ends.timed_out.load(Ordering::SeqCst),
        ends.refused.load(Ordering::SeqCst),
        ends.closed.load(Ordering::SeqCst),
    );
    println!(
        "flood axum_server: {count} connections x {} KiB sent of {} KiB announced, its \
         defaults: {timed_out} answered 408, {refused} answered 503 ({} of them before \
         their request was read: all connections taken), {closed} closed while sending \
         (refused); longest wait from the stall to the close {} ms. RSS {} before, \
         at most {} during (sampled), peak {} ({} above before; budget {}). Server: at \
         most {most_fds} open files, at most {most_queued} connections waiting in its \
         listen queue (sampled). Valid deliveries during the flood: {}",
        ANNOUNCED / 2048,
        ANNOUNCED / 1024,
        ends.busy.load(Ordering::SeqCst),
        ends.longest_ms.load(Ordering::SeqCst),
        mib(before),
        mib(during_rss),
        mib(peak),
        mib(peak.saturating_sub(before)),
        mib(budget),
        probes_summary(&probes),
    );
    assert_eq!(timed_out + refused + closed, count);
    let bound = before + budget + count.min(SERVER_CONNECTIONS) * PER_CONNECTION + RSS_SLACK;
    assert!(peak <= bound, "peak RSS {peak} over {bound}");
    assert!(
        silent_closed,
        "a connection that sent nothing is still open after the flood"
    );
}
