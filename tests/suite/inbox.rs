//! The durable inbox (feature `inbox`): the store contract (written against the `Store`
//! trait, so every store can run it), the layer and the worker over real sockets, and the
//! example server as a real process killed with SIGKILL and stopped with SIGTERM.

use std::{
    collections::HashSet,
    path::PathBuf,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use crate::common::{TIMEOUT, TempDir, example};
use authgear_webhook::{
    VerifySignatureLayer,
    inbox::{
        Backoff, CancellationToken, Claimed, Counts, DeadLetter, Delivery, EventKey, Failure,
        Inbox, NewEvent, SqliteStore, Store, StoreFuture, Stored, Worker,
    },
    sign,
};
use axum::{Router, routing};
use bytes::Bytes;
use http::StatusCode;
use tower::ServiceBuilder;

use crate::common::SECRET;

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

fn new_event(id: &str) -> NewEvent {
    NewEvent {
        key: EventKey::new("/", id),
        event_type: "user.created".into(),
        body: Bytes::from(event("user.created", id)),
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

// ---------------------------------------------------------------------------------------
// The store contract, against the trait: every store runs it (SQLite here, Redis in
// `inbox_redis`).

/// What every [`Store`] must do; `claim_for` short claims are used for the expiry steps.
pub(crate) async fn store_contract(store: Arc<dyn Store>) {
    let (a, b) = (new_event("a"), new_event("b"));
    let long = Duration::from_secs(60);

    // Stored once per key.
    assert_eq!(store.store(a.clone()).await.expect("store"), Stored::Stored);
    assert_eq!(
        store.store(a.clone()).await.expect("store"),
        Stored::Duplicate
    );
    assert_eq!(store.store(b.clone()).await.expect("store"), Stored::Stored);
    // Another endpoint is another key.
    let mut elsewhere = a.clone();
    elsewhere.key.endpoint = "/other".into();
    assert_eq!(store.store(elsewhere).await.expect("store"), Stored::Stored);
    assert_eq!(store.counts().await.expect("counts").queued, 3);

    // Claimed once, with the exact bytes and attempt 1.
    let claimed = store.claim(10, long).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|c| c.attempt == 1));
    let a1 = claimed
        .iter()
        .find(|c| c.key == a.key)
        .expect("a claimed")
        .clone();
    let b1 = claimed
        .iter()
        .find(|c| c.key == b.key)
        .expect("b claimed")
        .clone();
    let other = claimed
        .iter()
        .find(|c| c.key.endpoint == "/other")
        .expect("other")
        .clone();
    assert_eq!(a1.body, a.body);
    assert_eq!(a1.event_type, "user.created");
    assert!(store.claim(10, long).await.expect("claim").is_empty());
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.queued, counts.in_flight), (0, 3));

    // Extended, acked; still a duplicate once done.
    assert!(store.extend(&a1, long).await.expect("extend"));
    assert!(store.ack(&a1).await.expect("ack"));
    assert!(!store.ack(&a1).await.expect("ack twice"));
    assert!(!store.extend(&a1, long).await.expect("extend done"));
    assert_eq!(
        store.store(a.clone()).await.expect("store"),
        Stored::Duplicate
    );
    assert!(store.ack(&other).await.expect("ack"));

    // Failed: retried after the delay, as attempt 2; the old claim is spent.
    let delay = Duration::from_millis(200);
    assert!(
        store
            .fail(&b1, Failure::RetryAfter(delay), "boom")
            .await
            .expect("fail")
    );
    assert!(
        !store
            .fail(&b1, Failure::Dead, "again")
            .await
            .expect("fail spent")
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (counts.queued, counts.in_flight),
        (1, 0),
        "waiting to retry"
    );
    assert!(
        store.claim(10, long).await.expect("claim").is_empty(),
        "not due yet"
    );
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    let b2 = store
        .claim(10, long)
        .await
        .expect("claim")
        .pop()
        .expect("b due");
    assert_eq!((b2.key.clone(), b2.attempt), (b.key.clone(), 2));

    // Released: queued at once, the attempt not counted.
    assert!(store.release(&b2).await.expect("release"));
    let short = Duration::from_millis(100);
    let b2 = store
        .claim(10, short)
        .await
        .expect("claim")
        .pop()
        .expect("b released");
    assert_eq!(b2.attempt, 2);

    // A claim whose deadline passes is handed over (a dead worker), as one more attempt;
    // the old holder can no longer extend or fail it.
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    let b3 = store
        .claim(10, long)
        .await
        .expect("claim")
        .pop()
        .expect("b handed over");
    assert_eq!(b3.attempt, 3);
    assert_ne!(b3.token, b2.token);
    assert!(!store.extend(&b2, long).await.expect("extend stale"));
    assert!(
        !store
            .fail(&b2, Failure::Dead, "stale")
            .await
            .expect("fail stale")
    );

    // Dead: listed with its attempts and error; re-driven once, attempts reset.
    assert!(
        store
            .fail(&b3, Failure::Dead, "downstream down")
            .await
            .expect("dead")
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.queued, counts.in_flight, counts.dead), (0, 0, 1));
    let dead = store.dead(None, 10).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].key.clone(), dead[0].attempts), (b.key.clone(), 3));
    assert_eq!(dead[0].last_error.as_deref(), Some("downstream down"));
    assert!(
        store
            .dead(Some(b.key.clone()), 10)
            .await
            .expect("page 2")
            .is_empty()
    );
    assert!(store.redrive(&b.key).await.expect("redrive"));
    assert!(!store.redrive(&b.key).await.expect("redrive twice"));
    let b4 = store
        .claim(10, long)
        .await
        .expect("claim")
        .pop()
        .expect("b re-driven");
    assert_eq!(b4.attempt, 1);
    assert!(store.ack(&b4).await.expect("ack"));

    // Pruned in batches; then the key may be stored again.
    let later = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(store.prune(later, 2).await.expect("prune"), 2);
    assert_eq!(store.prune(later, 2).await.expect("prune"), 1);
    assert_eq!(store.prune(later, 2).await.expect("prune"), 0);
    assert_eq!(store.store(a).await.expect("store"), Stored::Stored);

    // Acked together, each once, answers in order: a key given twice is acked once.
    let (c, d) = (new_event("c"), new_event("d"));
    assert_eq!(store.store(c).await.expect("store"), Stored::Stored);
    assert_eq!(store.store(d).await.expect("store"), Stored::Stored);
    let batch = store.claim(10, long).await.expect("claim");
    assert_eq!(batch.len(), 3, "a again, c, d");
    let mut twice = batch.clone();
    twice.push(batch[0].clone());
    assert_eq!(
        store.ack_many(&twice).await.expect("ack many"),
        [true, true, true, false]
    );
    assert_eq!(
        store.ack_many(&batch).await.expect("ack many again"),
        [false, false, false]
    );
    assert!(store.ack_many(&[]).await.expect("ack none").is_empty());
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.queued, counts.in_flight, counts.done), (0, 0, 3));

    // An ack with a stale claim still marks a queued or claimed event handled, whoever
    // holds it now; a dead one stays dead.
    for id in ["handed-over", "retrying", "released", "dead"] {
        assert_eq!(
            store.store(new_event(id)).await.expect("store"),
            Stored::Stored
        );
    }
    let first = store.claim(10, short).await.expect("claim");
    assert_eq!(first.len(), 4);
    let stale = |id: &str| first.iter().find(|c| c.key.id == id).expect(id).clone();
    let later = Duration::from_secs(3600);
    assert!(
        store
            .fail(&stale("retrying"), Failure::RetryAfter(later), "down")
            .await
            .expect("fail")
    );
    assert!(store.release(&stale("released")).await.expect("release"));
    assert!(
        store
            .fail(&stale("dead"), Failure::Dead, "down")
            .await
            .expect("dead")
    );
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    let now_held = store.claim(10, long).await.expect("claim");
    let mut held: Vec<&str> = now_held.iter().map(|c| c.key.id.as_str()).collect();
    held.sort_unstable();
    assert_eq!(held, ["handed-over", "released"]);
    assert_eq!(
        store
            .ack_many(&[
                stale("handed-over"),
                stale("retrying"),
                stale("released"),
                stale("dead"),
            ])
            .await
            .expect("stale acks"),
        [true, true, true, false]
    );
    assert_eq!(
        store.ack_many(&now_held).await.expect("acks"),
        [false, false],
        "already handled"
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (counts.queued, counts.in_flight, counts.dead, counts.done),
        (0, 0, 1, 6)
    );
    assert!(store.claim(10, long).await.expect("claim").is_empty());

    // A retry delay longer than any clock ("never") is not due now: no due time wraps.
    assert_eq!(
        store.store(new_event("never")).await.expect("store"),
        Stored::Stored
    );
    let never = store
        .claim(10, long)
        .await
        .expect("claim")
        .pop()
        .expect("never");
    assert!(
        store
            .fail(&never, Failure::RetryAfter(Duration::MAX), "later")
            .await
            .expect("fail")
    );
    assert!(
        store.claim(10, long).await.expect("claim").is_empty(),
        "a retry after Duration::MAX is not due now"
    );
    assert_eq!(store.counts().await.expect("counts").queued, 1);

    assert!(store.size().await.expect("size") > 0);
}

/// A store that counts what the worker asks of it: how many events each `claim` returned
/// and each `ack_many` was given, and how many single `ack`s.
pub(crate) struct Counting {
    inner: Arc<dyn Store>,
    claims: Arc<Mutex<Vec<usize>>>,
    ack_batches: Mutex<Vec<usize>>,
    single_acks: AtomicUsize,
}

impl Counting {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            claims: Arc::new(Mutex::new(Vec::new())),
            ack_batches: Mutex::new(Vec::new()),
            single_acks: AtomicUsize::new(0),
        }
    }
}

impl Store for Counting {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        self.inner.store(event)
    }
    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>> {
        let (claim, claims) = (self.inner.claim(max, claim_for), self.claims.clone());
        Box::pin(async move {
            let claimed = claim.await?;
            if !claimed.is_empty() {
                claims.lock().expect("not poisoned").push(claimed.len());
            }
            Ok(claimed)
        })
    }
    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        self.inner.extend(claim, claim_for)
    }
    fn ack(&self, claim: &Claimed) -> StoreFuture<bool> {
        self.single_acks.fetch_add(1, Ordering::SeqCst);
        self.inner.ack(claim)
    }
    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        self.ack_batches
            .lock()
            .expect("not poisoned")
            .push(claims.len());
        self.inner.ack_many(claims)
    }
    fn fail(&self, claim: &Claimed, failure: Failure, error: &str) -> StoreFuture<bool> {
        self.inner.fail(claim, failure, error)
    }
    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        self.inner.release(claim)
    }
    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        self.inner.dead(after, max)
    }
    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        self.inner.redrive(key)
    }
    fn counts(&self) -> StoreFuture<Counts> {
        self.inner.counts()
    }
    fn prune(&self, before: SystemTime, max: usize) -> StoreFuture<u64> {
        self.inner.prune(before, max)
    }
    fn size(&self) -> StoreFuture<u64> {
        self.inner.size()
    }
}

/// The worker on `store` (empty): 40 events stored before it starts are claimed in
/// batches and acked in batches, each handled and acked once; the one that fails its first
/// attempt is retried (attempt 2) while the others of its batch are acked.
pub(crate) async fn worker_batch_contract(store: Arc<dyn Store>) {
    let counting = Arc::new(Counting::new(store));
    let inbox = Inbox::from_arc(counting.clone());
    let ids: Vec<String> = (0..40).map(|i| format!("batch-{i:02}")).collect();
    for id in &ids {
        assert_eq!(
            inbox.store().store(new_event(id)).await.expect("store"),
            Stored::Stored
        );
    }
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    let handler = move |delivery: Delivery| {
        let (id, attempt) = (delivery.event.id.clone(), delivery.attempt);
        recorded
            .lock()
            .expect("not poisoned")
            .push((id.clone(), attempt));
        async move {
            match (id.as_str(), attempt) {
                ("batch-07", 1) => Err("downstream down"),
                _ => Ok(()),
            }
        }
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Worker::new(inbox.clone())
            .concurrency(16)
            .backoff(
                Backoff::new(Duration::from_millis(50), Duration::from_secs(1))
                    .attempts(3)
                    .jitter(0.0),
            )
            .poll(Duration::from_millis(20))
            .run(handler, shutdown.clone()),
    );
    eventually("all handled", || async {
        counts(&inbox).await.done == ids.len() as u64
    })
    .await;
    stop(shutdown, task).await;

    let counts = counts(&inbox).await;
    assert_eq!((counts.queued, counts.in_flight, counts.dead), (0, 0, 0));
    let calls = calls.lock().expect("not poisoned").clone();
    for id in &ids {
        let attempts: Vec<u32> = calls
            .iter()
            .filter(|(seen, _)| seen == id)
            .map(|(_, attempt)| *attempt)
            .collect();
        let expected: &[u32] = if id == "batch-07" { &[1, 2] } else { &[1] };
        assert_eq!(attempts, expected, "{id}");
    }
    let claims = counting.claims.lock().expect("not poisoned").clone();
    assert_eq!(
        claims.first(),
        Some(&16),
        "the first claim fills every slot"
    );
    let acks = counting.ack_batches.lock().expect("not poisoned").clone();
    assert_eq!(
        acks.iter().sum::<usize>(),
        ids.len(),
        "each acked once: {acks:?}"
    );
    assert!(acks.iter().any(|&n| n > 1), "acked in batches: {acks:?}");
    assert_eq!(counting.single_acks.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn sqlite_store_keeps_the_contract() {
    let dir = TempDir::new("contract");
    let store = SqliteStore::open(inbox_file(&dir)).expect("open");
    store_contract(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_worker_claims_and_acks_in_batches() {
    let dir = TempDir::new("batch");
    let store = SqliteStore::open(inbox_file(&dir)).expect("open");
    worker_batch_contract(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_store_hands_over_claims_left_in_its_file_at_reopen() {
    let dir = TempDir::new("reopen");
    let store = SqliteStore::open(inbox_file(&dir)).expect("open");
    store.store(new_event("kept")).await.expect("store");
    let claimed = store
        .claim(1, Duration::from_secs(3600))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    drop(store);
    // The writer thread closes the file once the last handle is gone.
    let reopened = {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match SqliteStore::open(inbox_file(&dir)) {
                Ok(store) => break store,
                Err(error) => {
                    assert!(Instant::now() < deadline, "reopen: {error}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    // A claim left in the file was a dead process's: handed over at once, as attempt 2.
    let claimed = reopened
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].key.id.as_str(), claimed[0].attempt),
        ("kept", 2)
    );
}

#[tokio::test]
async fn sqlite_store_file_is_locked_while_open() {
    let dir = TempDir::new("locked");
    let _open = SqliteStore::open(inbox_file(&dir)).expect("open");
    // Waits out SQLite's busy timeout (5 s), then refuses.
    let file = inbox_file(&dir);
    let second = tokio::task::spawn_blocking(move || SqliteStore::open(file).map(drop));
    let error = second
        .await
        .expect("ran")
        .expect_err("a second store on one file");
    assert_eq!(error.to_string(), "inbox file is in use by another process");
}

// ---------------------------------------------------------------------------------------
// The layer and the worker, over a real socket.

/// One received event, as the handler saw it.
#[derive(Debug, Clone)]
struct Call {
    id: String,
    attempt: u32,
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
        let blocking_calls = Arc::new(AtomicUsize::new(0));
        let calls = blocking_calls.clone();
        let router = Router::new().route(
            "/",
            routing::post(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { r#"{"is_allowed":true}"# }
            }),
        );
        let stack = ServiceBuilder::new()
            .layer(VerifySignatureLayer::new(SECRET))
            .layer(inbox.layer())
            .service(router);
        let addr = crate::common::serve(Router::new().fallback_service(stack)).await;
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

async fn stop(shutdown: CancellationToken, task: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("worker stops")
        .expect("worker ran");
}

#[tokio::test]
async fn failing_twice_then_handled_at_attempt_three_after_the_backoff() {
    let harness = Harness::start("retry").await;
    let (calls, shutdown, task) = harness.worker(5, |call| match call.attempt {
        1 | 2 => Err("database down".into()),
        _ => Ok(()),
    });
    assert_eq!(
        harness.post(&event("user.created", "retry")).await.0,
        StatusCode::OK
    );
    eventually("handled", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;

    let seen = calls_of(&calls, "retry");
    let attempts: Vec<u32> = seen.iter().map(|call| call.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    // The backoff (100 ms, then 200 ms, no jitter) was waited, at least.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(100));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(200));
    stop(shutdown, task).await;
}

#[tokio::test]
async fn always_failing_ends_dead_then_is_redriven_and_handled() {
    let harness = Harness::start("dead").await;
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = down.clone();
    let (calls, shutdown, task) = harness.worker(2, move |_| match flag.load(Ordering::SeqCst) {
        true => Err("downstream down".into()),
        false => Ok(()),
    });
    assert_eq!(
        harness.post(&event("user.created", "dead")).await.0,
        StatusCode::OK
    );
    eventually("dead-lettered", || async {
        counts(&harness.inbox).await.dead == 1
    })
    .await;

    let dead = harness
        .inbox
        .dead_letters(None, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].key.id.as_str(), dead[0].attempts), ("dead", 2));
    assert_eq!(dead[0].event_type, "user.created");
    assert_eq!(dead[0].last_error.as_deref(), Some("downstream down"));
    assert_eq!(calls_of(&calls, "dead").len(), 2);

    down.store(false, Ordering::SeqCst);
    assert_eq!(harness.inbox.redrive_all().await.expect("redrive"), 1);
    eventually("handled", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;
    let counts = counts(&harness.inbox).await;
    assert_eq!((counts.queued, counts.in_flight, counts.dead), (0, 0, 0));
    let seen = calls_of(&calls, "dead");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].attempt, 1, "re-driving resets the attempts");
    stop(shutdown, task).await;
}

#[tokio::test]
async fn a_panicking_handler_does_not_kill_the_worker() {
    let harness = Harness::start("panic").await;
    let (calls, shutdown, task) = harness.worker(5, |call| {
        if call.id == "panics" && call.attempt == 1 {
            panic!("handler bug");
        }
        Ok(())
    });
    assert_eq!(
        harness.post(&event("user.created", "panics")).await.0,
        StatusCode::OK
    );
    eventually("retried", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;
    assert_eq!(
        harness.post(&event("user.created", "after")).await.0,
        StatusCode::OK
    );
    eventually("next handled", || async {
        counts(&harness.inbox).await.done == 2
    })
    .await;

    let attempts: Vec<u32> = calls_of(&calls, "panics")
        .iter()
        .map(|c| c.attempt)
        .collect();
    assert_eq!(attempts, [1, 2]);
    assert_eq!(calls_of(&calls, "after").len(), 1);
    stop(shutdown, task).await;
}

/// A handler that panics before returning its future is caught too.
#[tokio::test]
async fn a_handler_panicking_before_its_future_is_a_failure() {
    let harness = Harness::start("panic-sync").await;
    let tries = Arc::new(AtomicU32::new(0));
    let counted = tries.clone();
    let shutdown = CancellationToken::new();
    let handler = move |_: Delivery| {
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("handler bug");
        }
        async { Ok::<_, String>(()) }
    };
    let task = tokio::spawn(
        Worker::new(harness.inbox.clone())
            .backoff(Backoff::new(
                Duration::from_millis(10),
                Duration::from_millis(10),
            ))
            .poll(Duration::from_millis(20))
            .run(handler, shutdown.clone()),
    );
    assert_eq!(
        harness.post(&event("user.created", "sync")).await.0,
        StatusCode::OK
    );
    eventually("handled", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    stop(shutdown, task).await;
}

#[tokio::test]
async fn the_same_delivery_twice_is_stored_once_and_handled_once() {
    let harness = Harness::start("dedup").await;
    let body = event("identity.email.verified", "twice");
    assert_eq!(harness.post(&body).await, (StatusCode::OK, String::new()));
    assert_eq!(harness.post(&body).await, (StatusCode::OK, String::new()));
    let counts_before = counts(&harness.inbox).await;
    assert_eq!(counts_before.queued, 1);

    let (calls, shutdown, task) = harness.worker(5, |_| Ok(()));
    eventually("handled", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;
    // Once more after it was handled: still 200, still not handled again.
    assert_eq!(harness.post(&body).await.0, StatusCode::OK);
    stop(shutdown, task).await;
    assert_eq!(calls_of(&calls, "twice").len(), 1);
    assert_eq!(counts(&harness.inbox).await.done, 1);
}

#[tokio::test]
async fn blocking_and_refused_deliveries_never_enter_the_inbox() {
    let harness = Harness::start("blocking").await;
    let blocking = event("user.pre_create", "blocking");
    let (status, body) = harness.post(&blocking).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"is_allowed":true}"#)
    );
    assert_eq!(harness.blocking_calls.load(Ordering::SeqCst), 1);

    let forged = event("user.created", "forged");
    let (status, _) = post(&harness.url, &forged, "wrong-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An unknown type counts as non-blocking: stored, not passed on.
    let unknown =
        br#"{"id":"unknown","seq":1,"type":"future.event","payload":{},"context":{"timestamp":0}}"#;
    assert_eq!(harness.post(unknown).await.0, StatusCode::OK);
    assert_eq!(harness.blocking_calls.load(Ordering::SeqCst), 1);

    let counts = counts(&harness.inbox).await;
    assert_eq!(counts.queued, 1, "only the unknown event is stored");
    let claimed = harness
        .inbox
        .store()
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(
        claimed[0].body,
        Bytes::from_static(unknown),
        "the exact signed bytes"
    );
}

#[tokio::test]
async fn a_full_store_answers_503_and_keeps_what_it_acknowledged() {
    let harness = Harness::with_store("full", |path| {
        SqliteStore::builder(path)
            .max_size(64 * 1024)
            .open()
            .expect("open")
    })
    .await;
    let (acknowledged, refused) = harness.fill("full").await;
    assert_eq!(
        refused,
        Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "inbox unavailable".to_owned()
        ))
    );
    assert!(!acknowledged.is_empty());
    assert_eq!(
        counts(&harness.inbox).await.queued,
        acknowledged.len() as u64
    );
    let size = harness.inbox.size().await.expect("size");
    assert!(size > 0);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted (lazily: the store may still
/// hold its file open) when dropped. `None` when not running as root (mounting needs it),
/// except under CI (`.ci/run` sets `CI`, and runs as root), where that fails the test.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(name: &str, size: &str) -> Option<Self> {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = TempDir::new(name);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mount a tmpfs as root");
        Some(Self { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_keeps_what_it_acknowledged_and_recovers() {
    let Some(disk) = SmallDisk::mount("disk-full", "2m") else {
        return;
    };
    // Most of the disk taken by another file, so the inbox fills it after a few dozen events.
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1536 * 1024]).expect("filler");
    let file = disk.dir.path().join("inbox.sqlite3");
    let harness =
        Harness::with_store("disk-full", |_| SqliteStore::open(file).expect("open")).await;
    let (mut acknowledged, refused) = harness.fill("disk").await;
    assert_eq!(
        refused,
        Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "inbox unavailable".to_owned()
        )),
        "a full disk refuses the delivery (after {} acknowledged)",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());
    assert_eq!(
        counts(&harness.inbox).await.queued,
        acknowledged.len() as u64
    );

    // Room again: the store takes deliveries, and the worker hands over every event
    // acknowledged before, during and after the full disk.
    std::fs::remove_file(&filler).expect("free the disk");
    let (status, _) = harness.post(&padded_event("disk-after")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the store recovers once there is room"
    );
    acknowledged.push("disk-after".to_owned());
    let (calls, shutdown, task) = harness.worker(3, |_| Ok(()));
    eventually("every acknowledged event handled", || {
        let calls = calls.clone();
        let expected = acknowledged.len();
        async move { calls.lock().expect("not poisoned").len() >= expected }
    })
    .await;
    stop(shutdown, task).await;
    let handled: HashSet<String> = calls
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|call| call.id.clone())
        .collect();
    assert_eq!(handled, acknowledged.into_iter().collect::<HashSet<_>>());
    drop(harness);
}

#[tokio::test]
async fn a_slow_handler_keeps_its_claim_and_runs_once() {
    let harness = Harness::start("slow").await;
    let runs = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    // Two workers, claims of 150 ms, a handler of 600 ms: only the heartbeat keeps the
    // second worker from taking the event over.
    for _ in 0..2 {
        let runs = runs.clone();
        let handler = move |_: Delivery| {
            runs.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok::<_, String>(())
            }
        };
        tasks.push(tokio::spawn(
            Worker::new(harness.inbox.clone())
                .claim_for(Duration::from_millis(150))
                .poll(Duration::from_millis(10))
                .run(handler, shutdown.clone()),
        ));
    }
    assert_eq!(
        harness.post(&event("user.created", "slow")).await.0,
        StatusCode::OK
    );
    eventually("handled", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;
    shutdown.cancel();
    for task in tasks {
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("stops")
            .expect("ran");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_event_left_by_a_dead_worker_is_handed_over() {
    let harness = Harness::start("handover").await;
    assert_eq!(
        harness.post(&event("user.created", "orphan")).await.0,
        StatusCode::OK
    );
    // A worker claims it for 200 ms, then dies (never acks, never extends).
    let claimed = harness
        .inbox
        .store()
        .claim(1, Duration::from_millis(200))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);

    let (calls, shutdown, task) = harness.worker(5, |_| Ok(()));
    eventually("handed over", || async {
        counts(&harness.inbox).await.done == 1
    })
    .await;
    let attempts: Vec<u32> = calls_of(&calls, "orphan")
        .iter()
        .map(|c| c.attempt)
        .collect();
    assert_eq!(attempts, [2]);
    stop(shutdown, task).await;
}

#[tokio::test]
async fn shutdown_gives_unfinished_events_back_to_the_queue() {
    let harness = Harness::start("shutdown").await;
    let started = Arc::new(tokio::sync::Notify::new());
    let notify = started.clone();
    let shutdown = CancellationToken::new();
    let handler = move |_: Delivery| {
        notify.notify_one();
        std::future::pending::<Result<(), String>>()
    };
    let task = tokio::spawn(
        Worker::new(harness.inbox.clone())
            .grace(Duration::from_millis(50))
            .poll(Duration::from_millis(10))
            .run(handler, shutdown.clone()),
    );
    assert_eq!(
        harness.post(&event("user.created", "stuck")).await.0,
        StatusCode::OK
    );
    tokio::time::timeout(TIMEOUT, started.notified())
        .await
        .expect("handler started");
    stop(shutdown, task).await;

    let counts = counts(&harness.inbox).await;
    assert_eq!((counts.queued, counts.in_flight), (1, 0));
    let claimed = harness
        .inbox
        .store()
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(
        claimed[0].attempt, 1,
        "the interrupted attempt is not counted"
    );
}

// ---------------------------------------------------------------------------------------
// The example server as a real process.

/// `axum_server` on a free port with its inbox in `file`.
fn start_example(file: &std::path::Path) -> example::Server {
    let file = file.to_str().expect("a UTF-8 path");
    let server = example::Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_INBOX", file)]);
    assert!(
        server.startup.ends_with(&format!("inbox: sqlite {file})")),
        "{}",
        server.startup
    );
    server
}

#[tokio::test]
async fn example_killed_after_acknowledging_handles_everything_after_restart() {
    let dir = TempDir::new("kill");
    let mut first = start_example(&inbox_file(&dir));
    const N: usize = 64;
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..N {
        let url = first.url();
        sends.spawn(async move {
            let id = format!("kill-{n:03}");
            let (status, _) = post(&url, &event("user.created", &id), SECRET).await;
            (id, status)
        });
    }
    let mut acknowledged = HashSet::new();
    while let Some(sent) = sends.join_next().await {
        let (id, status) = sent.expect("sent");
        assert_eq!(status, StatusCode::OK, "{id}");
        acknowledged.insert(id);
    }
    // SIGKILL right after the last 200: no chance to finish anything.
    first.kill9();
    let before = first.lines_left();
    for id in &acknowledged {
        assert!(
            before.contains(&format!("200 user.created {id}")),
            "{id} acknowledged line"
        );
    }
    let handled_before = first.handled_ids("user.created");
    eprintln!("handled before the kill: {} of {N}", handled_before.len());

    let second = start_example(&inbox_file(&dir));
    eventually("every acknowledged id handled after the restart", || {
        let handled: HashSet<String> = handled_before
            .iter()
            .cloned()
            .chain(second.handled_ids("user.created"))
            .collect();
        let all = acknowledged.is_subset(&handled);
        async move { all }
    })
    .await;
}

#[tokio::test]
async fn example_stops_gracefully_on_sigterm() {
    let dir = TempDir::new("sigterm");
    let mut server = start_example(&inbox_file(&dir));
    let (status, _) = post(&server.url(), &event("user.created", "term"), SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.next_line(), "200 user.created term");
    eventually("the event handled", || {
        let handled = server.handled_ids("user.created");
        async move { handled == ["term"] }
    })
    .await;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}
