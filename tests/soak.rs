//! Soak: thousands of concurrent signed deliveries interleaved with forged and oversized
//! ones, over many HTTP/1.1 and HTTP/2 connections to a loopback server; then many slow
//! clients holding half-sent bodies. A counting global allocator measures the live heap.
//!
//! - every valid delivery reaches the handler exactly once, byte for byte (checked by id);
//! - every forged one gets 401 and every oversized one 413, and never reaches the handler;
//! - no client error, no hang (every wait is bounded);
//! - the live heap returns to its baseline once the connections are gone;
//! - with slow clients, the peak live heap stays within body limit × requests in flight
//!   plus a constant per connection.
//!
//! `SOAK_SECONDS` sets the length of the load phase (default 2). For a longer run, with the
//! figures printed:
//!
//! ```sh
//! SOAK_SECONDS=120 cargo test --release --test soak -- --nocapture
//! ```

mod common;
#[path = "common/heap.rs"]
mod heap;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::Instant,
};

use authgear_webhook::{SIGNATURE_HEADER, VerifiedBody, VerifySignatureLayer, sign};
use bytes::Bytes;
use common::{TIMEOUT, raw_exchange, serve};
use heap::settled_heap;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use peak_alloc::PeakAlloc;
use tokio::{io::AsyncWriteExt, net::TcpStream, time::timeout};
use tower::Layer;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

use common::SECRET;
const LIMIT: usize = 64 * 1024;
/// Deliveries per round: 7 in 10 valid, 2 forged, 1 oversized.
const ROUND: u32 = 1000;
const H1_CONNECTIONS: usize = 32;
const H2_CONNECTIONS: usize = 2;
const H2_STREAMS: usize = 16;
const SLOW_CLIENTS: u32 = 200;
/// The round number of the slow clients' deliveries.
const SLOW_ROUND: u32 = 99_999_999;
/// What the live heap may keep after everything is closed, from runtime caches.
const TOLERANCE: usize = 16 * 1024;
/// Per request in flight, besides the body buffer and what hyper needs anyway: the layer's
/// state (request head, MAC state, future) and hyper read buffers kept alive longer.
const PER_CONNECTION: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    /// Signed with another secret.
    OtherSecret,
    /// Signed, then one byte changed.
    Tampered,
    /// Signed, over the limit.
    Oversized,
}

fn kind(round: u32, slot: u32) -> Kind {
    if round == SLOW_ROUND {
        return Kind::Valid;
    }
    match slot % 10 {
        0..=6 => Kind::Valid,
        7 => Kind::OtherSecret,
        8 => Kind::Tampered,
        _ => Kind::Oversized,
    }
}

/// The body of delivery `slot` of `round`, as signed: JSON whose id is the round and slot,
/// padded to a size that varies with the slot (exactly the limit for the slow clients).
fn delivery(round: u32, slot: u32) -> Vec<u8> {
    let size = match kind(round, slot) {
        _ if round == SLOW_ROUND => LIMIT,
        Kind::Oversized => LIMIT + 1 + (slot as usize * 37) % 8192,
        _ => 80 + (slot as usize * 7919) % 16384,
    };
    let mut body =
        format!(r#"{{"id":"{round:08}{slot:08}","type":"user.created","payload":{{"pad":""#)
            .into_bytes();
    let mut x = (u64::from(round) << 32 | u64::from(slot)) | 1;
    while body.len() < size - 3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push(b'a' + (x % 26) as u8);
    }
    body.extend_from_slice(br#""}}"#);
    body
}

/// What is sent for a delivery: the body and its signature header value.
fn request_of(round: u32, slot: u32) -> (Vec<u8>, String) {
    let mut body = delivery(round, slot);
    let signature = match kind(round, slot) {
        Kind::OtherSecret => sign("not-the-secret", &body),
        _ => sign(SECRET, &body),
    };
    if kind(round, slot) == Kind::Tampered {
        let last = body.len() - 5;
        body[last] ^= 0x01;
    }
    (body, signature)
}

/// The handler's record: how often each delivery of the current round arrived, and how
/// many arrivals were wrong (unknown id, not a valid delivery, or other bytes).
struct Ledger {
    round: AtomicU32,
    arrivals: Vec<AtomicU32>,
    wrong: AtomicUsize,
}

impl Ledger {
    fn new() -> Self {
        Self {
            round: AtomicU32::new(0),
            arrivals: (0..ROUND.max(SLOW_CLIENTS + 1))
                .map(|_| AtomicU32::new(0))
                .collect(),
            wrong: AtomicUsize::new(0),
        }
    }

    fn start(&self, round: u32) {
        self.round.store(round, Ordering::SeqCst);
        for slot in &self.arrivals {
            slot.store(0, Ordering::SeqCst);
        }
    }

    fn record(&self, body: &[u8]) {
        let id = body
            .get(7..23)
            .and_then(|id| std::str::from_utf8(id).ok())
            .and_then(|id| Some((id[..8].parse::<u32>().ok()?, id[8..].parse::<u32>().ok()?)));
        match id {
            Some((round, slot))
                if round == self.round.load(Ordering::SeqCst)
                    && (slot as usize) < self.arrivals.len()
                    && kind(round, slot) == Kind::Valid
                    && body == delivery(round, slot) =>
            {
                self.arrivals[slot as usize].fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                self.wrong.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Asserts that each valid delivery of `0..count` arrived once and nothing else did.
    fn assert_complete(&self, round: u32, count: u32) {
        assert_eq!(self.wrong.load(Ordering::SeqCst), 0, "wrong arrivals");
        for slot in 0..count {
            let arrivals = self.arrivals[slot as usize].load(Ordering::SeqCst);
            let expected = u32::from(kind(round, slot) == Kind::Valid);
            assert_eq!(arrivals, expected, "round {round} slot {slot}");
        }
    }
}

async fn server(ledger: Arc<Ledger>) -> SocketAddr {
    let handler = tower::service_fn(move |request: Request<VerifiedBody>| {
        let ledger = ledger.clone();
        async move {
            ledger.record(&request.into_body().into_bytes());
            Ok::<_, Infallible>(Response::new(String::from("ok")))
        }
    });
    let verified = VerifySignatureLayer::new(SECRET)
        .body_limit(LIMIT)
        .layer(handler);
    serve(axum::Router::new().route_service("/hook", verified)).await
}

/// The figures of a run.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicUsize,
    accepted: AtomicUsize,
    forged: AtomicUsize,
    oversized: AtomicUsize,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type Sender2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

enum Connection {
    H1(Sender),
    H2(Sender2),
}

impl Connection {
    async fn h1(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Self::H1(send)
    }

    async fn h2(addr: SocketAddr) -> Sender2 {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (send, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        send
    }

    /// Sends one delivery and checks the answer.
    async fn deliver(&mut self, addr: SocketAddr, round: u32, slot: u32, counts: &Counts) {
        let (body, signature) = request_of(round, slot);
        let kind = kind(round, slot);
        counts.requests.fetch_add(1, Ordering::Relaxed);
        if kind == Kind::Oversized
            && let Self::H1(_) = self
        {
            // Refused before its body is read, so hyper may close the connection after the
            // 413: a connection of its own (raw, to send the whole body regardless).
            let mut raw = format!(
                "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            raw.extend_from_slice(&body);
            let response = raw_exchange(addr, &raw, false).await;
            assert!(response.starts_with("HTTP/1.1 413"), "{response:.100}");
            counts.oversized.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let request = Request::post(format!("http://{addr}/hook"))
            .header(SIGNATURE_HEADER, signature)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = match self {
            Self::H1(send) => {
                send.ready().await.expect("connection open");
                send.send_request(request).await
            }
            Self::H2(send) => {
                send.ready().await.expect("connection open");
                send.send_request(request).await
            }
        };
        let response = response.unwrap_or_else(|e| panic!("round {round} slot {slot}: {e}"));
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let expected = match kind {
            Kind::Valid => StatusCode::OK,
            Kind::OtherSecret | Kind::Tampered => StatusCode::UNAUTHORIZED,
            Kind::Oversized => StatusCode::PAYLOAD_TOO_LARGE,
        };
        assert_eq!(status, expected, "round {round} slot {slot}: {text:?}");
        match kind {
            Kind::Valid => counts.accepted.fetch_add(1, Ordering::Relaxed),
            Kind::Oversized => counts.oversized.fetch_add(1, Ordering::Relaxed),
            _ => counts.forged.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// One round: `ROUND` deliveries spread over new connections, all at once; then checks
/// that the handler got exactly the valid ones.
async fn round(addr: SocketAddr, ledger: &Ledger, round: u32, counts: &Arc<Counts>) {
    ledger.start(round);
    let workers = H1_CONNECTIONS + H2_CONNECTIONS * H2_STREAMS;
    let mut h2 = Vec::new();
    for _ in 0..H2_CONNECTIONS {
        h2.push(Connection::h2(addr).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let counts = counts.clone();
        let h2 = (worker >= H1_CONNECTIONS)
            .then(|| h2[(worker - H1_CONNECTIONS) % H2_CONNECTIONS].clone());
        tasks.spawn(async move {
            let mut connection = match h2 {
                Some(send) => Connection::H2(send),
                None => Connection::h1(addr).await,
            };
            for slot in (worker as u32..ROUND).step_by(workers) {
                connection.deliver(addr, round, slot, &counts).await;
            }
        });
    }
    drop(h2);
    let all = async {
        while let Some(result) = tasks.join_next().await {
            result.expect("no client failed");
        }
    };
    timeout(TIMEOUT * 6, all).await.expect("no hang");
    ledger.assert_complete(round, ROUND);
}

/// One slow-client phase (see `soak`): `SLOW_CLIENTS` requests in flight, each having sent
/// `sent` bytes of its body, the last `second` of them in a second write.
async fn slow_clients(
    addr: SocketAddr,
    control: SocketAddr,
    ledger: &Ledger,
    name: &str,
    sent: usize,
    second: usize,
) {
    let bodies: Vec<(Vec<u8>, Vec<u8>)> = (0..SLOW_CLIENTS)
        .map(|slot| {
            let body = delivery(SLOW_ROUND, slot);
            let mut head = format!(
                "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{SIGNATURE_HEADER}: {}\r\n\r\n",
                body.len(),
                sign(SECRET, &body)
            )
            .into_bytes();
            head.extend_from_slice(&body[..sent]);
            (head, body[sent..].to_vec())
        })
        .collect();

    let before = settled_heap(&HEAP).await;
    let (streams, control_peak, _) = start_slow_clients(control, &bodies, second, before).await;
    finish_slow_clients(streams, &bodies).await;

    ledger.start(SLOW_ROUND);
    let before = settled_heap(&HEAP).await;
    let (streams, peak, holding) = start_slow_clients(addr, &bodies, second, before).await;
    // Meanwhile the server still serves others (one more delivery of the same kind).
    let mut other = Connection::h1(addr).await;
    other
        .deliver(addr, SLOW_ROUND, SLOW_CLIENTS, &Counts::default())
        .await;
    drop(other);
    finish_slow_clients(streams, &bodies).await;
    ledger.assert_complete(SLOW_ROUND, SLOW_CLIENTS + 1);

    let per = |bytes: usize| kib(bytes / SLOW_CLIENTS as usize);
    let layer = peak.saturating_sub(control_peak);
    println!(
        "soak slow clients, {name} sent: {SLOW_CLIENTS} in flight, body limit {}: peak {} \
         above the baseline ({} per request); without the layer {} ({} per connection); \
         the layer's share {} per request",
        kib(LIMIT),
        kib(peak),
        per(peak),
        kib(control_peak),
        per(control_peak),
        per(layer),
    );
    // The layer holds what it was sent (it verifies the whole body before passing it on)...
    assert!(
        holding >= SLOW_CLIENTS as usize * sent,
        "the server does not hold the bodies"
    );
    // ...and at most the body limit per request in flight, over what hyper needs anyway.
    let bound = control_peak + SLOW_CLIENTS as usize * (LIMIT + PER_CONNECTION);
    assert!(peak <= bound, "peak {peak} over {bound}");
    // Its memory follows the bytes received, not the announced length: at most twice what
    // was sent (the buffer grows by doubling), plus a small constant.
    let share = SLOW_CLIENTS as usize * (2 * sent + 8 * 1024);
    assert!(layer <= share, "the layer's share {layer} over {share}");
}

/// Connects one slow client per body, each sending its head and the start of its body in
/// two writes (the second of `second` bytes), and waits (bounded) until the server has
/// taken it all in. Returns the connections, and the peak and current live heap above
/// `before`.
async fn start_slow_clients(
    addr: SocketAddr,
    bodies: &[(Vec<u8>, Vec<u8>)],
    second: usize,
    before: usize,
) -> (Vec<TcpStream>, usize, usize) {
    HEAP.reset_peak_usage();
    let mut streams = Vec::new();
    for (head, _) in bodies {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(&head[..head.len() - second])
            .await
            .expect("write");
        streams.push(stream);
    }
    // Two writes, each read by the server before the next: two frames at least.
    settled_heap(&HEAP).await;
    for (stream, (head, _)) in streams.iter_mut().zip(bodies) {
        stream
            .write_all(&head[head.len() - second..])
            .await
            .expect("write");
    }
    let now = settled_heap(&HEAP).await;
    let peak = HEAP.peak_usage();
    (streams, peak - before, now.saturating_sub(before))
}

/// Sends the rest of each body; each must be answered 200.
async fn finish_slow_clients(streams: Vec<TcpStream>, bodies: &[(Vec<u8>, Vec<u8>)]) {
    let mut tasks = tokio::task::JoinSet::new();
    for (mut stream, (_, rest)) in streams.into_iter().zip(bodies) {
        let rest = rest.clone();
        tasks.spawn(async move {
            stream.write_all(&rest).await.expect("write");
            let mut response = Vec::new();
            let mut buf = [0; 1024];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
                    .await
                    .expect("read");
                response.extend_from_slice(&buf[..n]);
                if n == 0 || response.ends_with(b"\r\n\r\nok") {
                    break;
                }
            }
            assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
        });
    }
    let all = async {
        while let Some(result) = tasks.join_next().await {
            result.expect("no slow client failed");
        }
    };
    timeout(TIMEOUT, all).await.expect("no hang");
}

/// A server without the layer: `/hook` reads the body frame by frame, drops it, says ok.
async fn control_server() -> SocketAddr {
    let handler = tower::service_fn(|request: Request<axum::body::Body>| async move {
        let mut body = request.into_body();
        while let Some(frame) = body.frame().await {
            drop(frame.expect("body"));
        }
        Ok::<_, Infallible>(Response::new(String::from("ok")))
    });
    serve(axum::Router::new().route_service("/hook", handler)).await
}

/// Waits (bounded) until the live heap is at most `bound`; returns it.
async fn heap_down_to(bound: usize) -> usize {
    for _ in 0..200 {
        let now = settled_heap(&HEAP).await;
        if now <= bound {
            return now;
        }
    }
    HEAP.current_usage()
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let seconds: f64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let ledger = Arc::new(Ledger::new());
    let addr = server(ledger.clone()).await;
    let control = control_server().await;
    let counts = Arc::new(Counts::default());

    // A first round warms up what lives as long as the runtime (worker queues, timers).
    round(addr, &ledger, 0, &Arc::new(Counts::default())).await;
    let baseline = settled_heap(&HEAP).await;
    HEAP.reset_peak_usage();

    // Load: rounds until the time is up (at least one).
    let start = Instant::now();
    let mut rounds = 0;
    while rounds == 0 || start.elapsed().as_secs_f64() < seconds {
        rounds += 1;
        round(addr, &ledger, rounds, &counts).await;
    }
    let elapsed = start.elapsed();
    let load_peak = HEAP.peak_usage();
    let after_load = heap_down_to(baseline + TOLERANCE).await;
    println!(
        "soak load: {} requests in {} rounds over {:.1} s ({:.0}/s), {} at a time over {} \
         HTTP/1.1 and {} HTTP/2 connections per round: {} accepted, {} forged refused (401), \
         {} oversized refused (413)",
        counts.requests.load(Ordering::SeqCst),
        rounds,
        elapsed.as_secs_f64(),
        counts.requests.load(Ordering::SeqCst) as f64 / elapsed.as_secs_f64(),
        H1_CONNECTIONS + H2_CONNECTIONS * H2_STREAMS,
        H1_CONNECTIONS,
        H2_CONNECTIONS,
        counts.accepted.load(Ordering::SeqCst),
        counts.forged.load(Ordering::SeqCst),
        counts.oversized.load(Ordering::SeqCst),
    );
    println!(
        "soak heap: baseline {}, peak under load {}, after {}",
        kib(baseline),
        kib(load_peak),
        kib(after_load)
    );
    assert!(
        after_load <= baseline + TOLERANCE,
        "live heap {after_load} did not return to its baseline {baseline}"
    );

    // Slow clients: each sends its head (Content-Length: the limit) and the start of its
    // body, then waits: half the body, or just two bytes (in two writes, so the layer
    // copies them into a buffer of its own). First to a control server
    // without the layer (its handler reads the body and drops it), which gives the cost of
    // hyper and the clients; then to the layer.
    for (name, sent, second) in [("half a body", LIMIT / 2, LIMIT / 4), ("two bytes", 2, 1)] {
        slow_clients(addr, control, &ledger, name, sent, second).await;
    }

    let after = heap_down_to(baseline + TOLERANCE).await;
    println!(
        "soak heap: after the slow clients {} (baseline {})",
        kib(after),
        kib(baseline)
    );
    assert!(
        after <= baseline + TOLERANCE,
        "live heap {after} did not return to its baseline {baseline}"
    );
}
