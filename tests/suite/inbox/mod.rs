//! The durable inbox (feature `inbox`), laid out like `src/inbox/`: the store contract run
//! against every store, what only the SQLite or the Redis store does, the worker, the layer,
//! faults (a full store or disk, Redis down or killed), and the example server as real
//! processes killed with SIGKILL and stopped with SIGTERM. This file holds the helpers these
//! tests share.

mod contract;
mod faults;
mod layer;
#[cfg(feature = "inbox-postgres")]
mod postgres;
// Runs the example `axum_server`, built with its features.
#[cfg(all(
    feature = "axum",
    feature = "replay-redis",
    feature = "inbox-sqlite",
    feature = "inbox-redis"
))]
mod process;
#[cfg(feature = "inbox-redis")]
mod redis;
mod sqlite;
mod worker;

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

#[cfg(feature = "inbox-postgres")]
use crate::common::PostgresServer;
#[cfg(feature = "inbox-redis")]
use crate::common::RedisServer;
use crate::common::{SECRET, TIMEOUT, TempDir};
#[cfg(feature = "inbox-redis")]
use authgear_webhook::inbox::RedisStore;
use authgear_webhook::{
    VerifySignatureLayer,
    inbox::{
        Backoff, CancellationToken, Counts, Delivery, EventKey, Inbox, NewEvent, SqliteStore,
        Worker,
    },
    sign,
};
#[cfg(feature = "inbox-postgres")]
use authgear_webhook::{inbox::PostgresStore, sqlx::PgPool};
use axum::{Router, routing};
use bytes::Bytes;
use http::StatusCode;
use tower::ServiceBuilder;

/// The SQLite file of a test's inbox, in its own directory.
fn inbox_file(dir: &TempDir) -> PathBuf {
    dir.path().join("inbox.sqlite3")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A realistic delivery of `event_type` from `tests/fixtures/events/`, with `id`, stamped
/// now.
fn event(event_type: &str, id: &str) -> Vec<u8> {
    let fixture =
        std::fs::read(format!("tests/fixtures/events/{event_type}.json")).expect("fixture");
    let mut event: serde_json::Value = serde_json::from_slice(&fixture).expect("json");
    event["context"]["timestamp"] = now().into();
    event["id"] = id.into();
    serde_json::to_vec(&event).expect("json")
}

/// A `user.created` delivery with `id`, padded to about 4 KiB.
fn padded_event(id: &str) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&event("user.created", id)).expect("json");
    body["padding"] = "x".repeat(4000).into();
    serde_json::to_vec(&body).expect("json")
}

/// A realistic `user.created` event with `id` (its body stamped now).
fn new_event(id: &str) -> NewEvent {
    NewEvent {
        key: EventKey::new("/", id),
        event_type: "user.created".into(),
        body: Bytes::from(event("user.created", id)),
        recovered: false,
    }
}

/// `id` as the catch-up recovers it from Authgear's audit log: the event's JSON with its keys
/// sorted (as the log holds it), marked recovered.
fn recovered_event(id: &str) -> NewEvent {
    let event: serde_json::Value =
        serde_json::from_slice(&event("user.created", id)).expect("json");
    NewEvent {
        key: EventKey::new("/", id),
        event_type: "user.created".into(),
        body: Bytes::from(serde_json::to_vec(&event).expect("json")),
        recovered: true,
    }
}

/// Posts `body` signed with `secret` to `url`; the status and the body.
async fn post(url: &str, body: &[u8], secret: &str) -> (StatusCode, String) {
    let (status, _, body) = crate::common::post(url, body, Some(sign(secret, body))).await;
    (status, body)
}

/// Polls `condition` until it holds; fails the test after `TIMEOUT`.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn counts(inbox: &Inbox) -> Counts {
    inbox.counts().await.expect("counts")
}

/// One received event, as the handler saw it.
#[derive(Debug, Clone)]
struct Call {
    id: String,
    attempt: u32,
    recovered: bool,
    at: Instant,
}

/// A server with the inbox inside the verifying layer, on a store in `dir`.
struct Harness {
    url: String,
    inbox: Inbox,
    blocking_calls: Arc<AtomicUsize>,
    _dir: TempDir,
}

impl Harness {
    async fn start(name: &str) -> Self {
        Self::with_store(name, |path| SqliteStore::open(path).expect("open")).await
    }

    async fn with_store(name: &str, open: impl FnOnce(PathBuf) -> SqliteStore) -> Self {
        let dir = TempDir::new(name);
        let inbox = Inbox::new(open(inbox_file(&dir)));
        Self::serve(inbox, dir).await
    }

    /// A server on an inbox on any store (`dir` is kept until the harness is dropped).
    async fn serve(inbox: Inbox, dir: TempDir) -> Self {
        let blocking_calls = Arc::new(AtomicUsize::new(0));
        let calls = blocking_calls.clone();
        let router = Router::new().route(
            "/",
            routing::post(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { r#"{"is_allowed":true}"# }
            }),
        );
        // In the order a request takes them, behind axum's `Router::layer`.
        let router = router.layer(
            ServiceBuilder::new()
                .layer(VerifySignatureLayer::new(SECRET))
                .layer(inbox.layer()),
        );
        let addr = crate::common::serve(router).await;
        Self {
            url: format!("http://{addr}/"),
            inbox,
            blocking_calls,
            _dir: dir,
        }
    }

    async fn post(&self, body: &[u8]) -> (StatusCode, String) {
        post(&self.url, body, SECRET).await
    }

    /// Posts 4 KiB `user.created` deliveries (`{prefix}-0`, `{prefix}-1`, ...) until one
    /// is not answered 200 (at most 400): the acknowledged ids, and that answer.
    async fn fill(&self, prefix: &str) -> (Vec<String>, Option<(StatusCode, String)>) {
        let mut acknowledged = Vec::new();
        for n in 0..400 {
            let id = format!("{prefix}-{n}");
            match self.post(&padded_event(&id)).await {
                (StatusCode::OK, _) => acknowledged.push(id),
                refused => return (acknowledged, Some(refused)),
            }
        }
        (acknowledged, None)
    }

    /// A worker with a short schedule (`attempts`, 100 ms doubling, no jitter), recording
    /// every call, answering with `outcome(call)`.
    fn worker(
        &self,
        attempts: u32,
        outcome: impl Fn(&Call) -> Result<(), String> + Send + Sync + 'static,
    ) -> (
        Arc<Mutex<Vec<Call>>>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let recorded = calls.clone();
        let outcome = Arc::new(outcome);
        let handler = move |delivery: Delivery| {
            let call = Call {
                id: delivery.event.id.clone(),
                attempt: delivery.attempt,
                recovered: delivery.recovered,
                at: Instant::now(),
            };
            recorded.lock().expect("not poisoned").push(call.clone());
            let result = outcome(&call);
            async move { result }
        };
        let worker = Worker::new(self.inbox.clone())
            .backoff(
                Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
                    .attempts(attempts)
                    .jitter(0.0),
            )
            .poll(Duration::from_millis(20));
        let task = tokio::spawn(worker.run(handler, shutdown.clone()));
        (calls, shutdown, task)
    }
}

fn calls_of(calls: &Mutex<Vec<Call>>, id: &str) -> Vec<Call> {
    calls
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|call| call.id == id)
        .cloned()
        .collect()
}

/// Waits until the worker has made at least `expected` calls (fails the test after
/// `TIMEOUT`), stops it, and gives the ids it was called with, in order.
async fn handled_ids(
    calls: &Arc<Mutex<Vec<Call>>>,
    expected: usize,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
) -> Vec<String> {
    eventually("every acknowledged event handled", || {
        let calls = calls.clone();
        async move { calls.lock().expect("not poisoned").len() >= expected }
    })
    .await;
    stop(shutdown, task).await;
    calls
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|call| call.id.clone())
        .collect()
}

async fn stop(shutdown: CancellationToken, task: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("worker stops")
        .expect("worker ran");
}

/// A `redis-server` with the durable settings the store's docs ask for (`appendonly yes`,
/// `appendfsync always`), its files in a temp dir; killed on drop.
#[cfg(feature = "inbox-redis")]
async fn durable_redis() -> Option<RedisServer> {
    RedisServer::builder().durable().start().await
}

/// A store on `redis` with the default settings but a 5 s timeout: the machine running the
/// tests may be busy (a refused connection still fails at once).
#[cfg(feature = "inbox-redis")]
fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .timeout(Duration::from_secs(5))
        .open(redis.url.as_str())
        .expect("url")
}

/// A small `user.created` event with `id`, the same bytes at every call (tests compare
/// them, and count how many fit in a bounded store).
#[cfg(feature = "inbox-redis")]
fn small_event(id: &str) -> NewEvent {
    small_event_on("/", id)
}

#[cfg(feature = "inbox-redis")]
fn small_event_on(endpoint: &str, id: &str) -> NewEvent {
    NewEvent {
        key: EventKey::new(endpoint, id),
        event_type: "user.created".into(),
        body: Bytes::from(format!(
            r#"{{"id":"{id}","seq":1,"type":"user.created","payload":{{}},"context":{{"timestamp":0}}}}"#
        )),
        recovered: false,
    }
}

/// Runs `call` until it returns `Ok`; fails the test after `TIMEOUT`.
async fn until_ok<T, E: std::fmt::Debug, Fut>(what: &str, mut call: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) => {
                assert!(Instant::now() < deadline, "{what}: {error:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A pool on `postgres` for a store: as an application would make it, with room for a
/// worker's transactional handlers.
#[cfg(feature = "inbox-postgres")]
async fn pg_pool(postgres: &PostgresServer) -> PgPool {
    authgear_webhook::sqlx::postgres::PgPoolOptions::new()
        .max_connections(24)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&postgres.url)
        .await
        .expect("connect to Postgres")
}

/// A store on `postgres` with the default names but a 2 s timeout: short enough for fault
/// tests, long enough for a busy machine.
#[cfg(feature = "inbox-postgres")]
async fn pg_store(postgres: &PostgresServer) -> PostgresStore {
    PostgresStore::builder(pg_pool(postgres).await)
        .timeout(Duration::from_secs(2))
        .open()
        .await
        .expect("open the Postgres store")
}
