//! Metrics (feature `metrics`) counted from what crosses a real socket: an axum server with
//! the verifying layer, replay protection and the inbox on a real SQLite file, a worker
//! with a handler that fails, a real HTTP client. The counts must match what was sent.
//!
//! The recorder is this test's own, installed on its thread only
//! (`metrics::set_default_local_recorder`): the test runs on a current-thread runtime, so
//! the server's tasks, the client's and the worker's all record on that thread, and no
//! other test of the suite (they run side by side in this process) is seen.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::{SECRET, TIMEOUT, TempDir, serve, stamped_event};
use crate::stores::Faulty;
use ::metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use authgear_webhook::{
    VerifySignatureLayer,
    inbox::{Backoff, CancellationToken, Delivery, Inbox, SqliteStore, Worker},
    metrics as names,
    replay::ReplayProtection,
    sign,
};
use axum::{Router, routing::post};
use http::StatusCode;
use tower::ServiceBuilder;

#[tokio::test]
async fn the_counts_match_what_was_sent_and_the_gauges_return_to_zero() {
    let recorder = TestRecorder::default();
    let _installed = ::metrics::set_default_local_recorder(&recorder);

    let dir = TempDir::new("metrics");
    let inbox = Inbox::new(SqliteStore::open(dir.path().join("inbox.sqlite3")).expect("open"));
    let verify = VerifySignatureLayer::new(SECRET).body_limit(64 * 1024);
    let blocking = || post(|| async { r#"{"is_allowed":true}"# });
    // "/": the signature, replay protection, the inbox; "/plain": no replay protection, so
    // that a repeated delivery reaches the inbox.
    let app = Router::new()
        .route("/", blocking())
        .route_layer(
            ServiceBuilder::new()
                .layer(verify.clone())
                .layer(ReplayProtection::in_memory().layer())
                .layer(inbox.layer()),
        )
        .merge(
            Router::new()
                .route("/plain", blocking())
                .route_layer(ServiceBuilder::new().layer(verify).layer(inbox.layer())),
        );
    let addr = serve(app).await;
    let url = |path: &str| format!("http://{addr}{path}");

    // A worker whose handler fails `user.disabled` twice, and `user.deleted` while `down`.
    let down = Arc::new(AtomicBool::new(true));
    let flag = down.clone();
    let tries = Arc::new(AtomicU64::new(0));
    let counted = tries.clone();
    let handler = move |delivery: Delivery| {
        let outcome = match delivery.event.event_type() {
            "user.disabled" if delivery.attempt < 3 => Err("flaky"),
            "user.deleted" if flag.load(Ordering::SeqCst) => Err("downstream down"),
            _ => Ok(()),
        };
        counted.fetch_add(1, Ordering::SeqCst);
        async move { outcome }
    };
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(inbox.clone())
            .backoff(
                Backoff::new(Duration::from_millis(50), Duration::from_millis(200))
                    .attempts(3)
                    .jitter(0.0),
            )
            .poll(Duration::from_millis(20))
            .run(handler, shutdown.clone()),
    );

    let send = |path: &'static str, body: Vec<u8>, signature: Option<String>| {
        let url = url(path);
        async move { crate::common::post(&url, &body, signature).await.0 }
    };
    let signed = |body: &[u8]| Some(sign(SECRET, body));
    let created = stamped_event("user.created", "created-1");
    // Valid, then the same delivery again: the first answer, given by replay protection.
    assert_eq!(
        send("/", created.clone(), signed(&created)).await,
        StatusCode::OK
    );
    assert_eq!(
        send("/", created.clone(), signed(&created)).await,
        StatusCode::OK
    );
    // Two forgeries, one without a signature, one too large.
    for id in ["forged-1", "forged-2"] {
        let body = stamped_event("user.created", id);
        let forged = Some(sign("not-the-secret", &body));
        assert_eq!(send("/", body, forged).await, StatusCode::UNAUTHORIZED);
    }
    let unsigned = stamped_event("user.created", "unsigned");
    assert_eq!(send("/", unsigned, None).await, StatusCode::UNAUTHORIZED);
    let mut large: serde_json::Value =
        serde_json::from_slice(&stamped_event("user.created", "large")).expect("json");
    large["padding"] = "x".repeat(70 * 1024).into();
    let large = serde_json::to_vec(&large).expect("json");
    assert_eq!(
        send("/", large.clone(), signed(&large)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Twice where only the inbox sees it: stored, then a duplicate.
    let twice = stamped_event("user.created", "twice");
    for _ in 0..2 {
        assert_eq!(
            send("/plain", twice.clone(), signed(&twice)).await,
            StatusCode::OK
        );
    }
    // A blocking event: answered by the handler, never stored.
    let blocking = stamped_event("user.pre_create", "blocking");
    assert_eq!(
        send("/", blocking.clone(), signed(&blocking)).await,
        StatusCode::OK
    );
    // Failed twice, then handled; and failed until dead.
    let flaky = stamped_event("user.disabled", "flaky");
    assert_eq!(
        send("/", flaky.clone(), signed(&flaky)).await,
        StatusCode::OK
    );
    let doomed = stamped_event("user.deleted", "doomed");
    assert_eq!(
        send("/", doomed.clone(), signed(&doomed)).await,
        StatusCode::OK
    );

    eventually("the dead letter, and the gauges read", || {
        recorder.gauge(names::INBOX_DEAD) == Some(1.0)
            && recorder.gauge(names::INBOX_QUEUED) == Some(0.0)
            && recorder.gauge(names::WORKER_IN_FLIGHT) == Some(0.0)
            && recorder.counter(names::WORKER_HANDLED, &[("event_type", "user.disabled")]) == 1
    })
    .await;

    let refused = |reason| recorder.counter(names::DELIVERIES_REFUSED, &[("reason", reason)]);
    assert_eq!(refused("invalid_signature"), 2);
    assert_eq!(refused("missing_signature"), 1);
    assert_eq!(refused("body_too_large"), 1);
    assert_eq!(recorder.sum(names::DELIVERIES_REFUSED), 4, "{recorder:?}");
    // created twice, twice twice, blocking, flaky, doomed.
    assert_eq!(recorder.counter(names::DELIVERIES_VERIFIED, &[]), 7);
    assert_eq!(recorder.counter(names::DELIVERIES_ACCEPTED, &[]), 7);
    assert_eq!(recorder.counter(names::REPLAY_REPEATED, &[]), 1);
    let inbox_took = |outcome| recorder.counter(names::INBOX_DELIVERIES, &[("outcome", outcome)]);
    assert_eq!(inbox_took("stored"), 4);
    assert_eq!(inbox_took("duplicate"), 1);
    assert_eq!(inbox_took("not_stored"), 0);
    assert_eq!(recorder.samples(names::INBOX_STORE_SECONDS).len(), 5);

    let by_type = |name, event_type| recorder.counter(name, &[("event_type", event_type)]);
    assert_eq!(by_type(names::WORKER_HANDLED, "user.created"), 2);
    assert_eq!(by_type(names::WORKER_HANDLED, "user.disabled"), 1);
    assert_eq!(by_type(names::WORKER_HANDLED, "user.deleted"), 0);
    assert_eq!(by_type(names::WORKER_RETRIED, "user.disabled"), 2);
    assert_eq!(by_type(names::WORKER_RETRIED, "user.deleted"), 2);
    assert_eq!(by_type(names::WORKER_DEAD_LETTERED, "user.deleted"), 1);
    assert_eq!(recorder.sum(names::WORKER_DEAD_LETTERED), 1);
    assert_eq!(recorder.counter(names::WORKER_RECOVERED, &[]), 0);
    // One sample per attempt: 2 + 3 + 3.
    assert_eq!(tries.load(Ordering::SeqCst), 8);
    assert_eq!(recorder.samples(names::WORKER_HANDLER_SECONDS).len(), 8);

    // The dead letter re-driven and handled: nothing left anywhere.
    down.store(false, Ordering::SeqCst);
    assert_eq!(inbox.redrive_all().await.expect("redrive"), 1);
    eventually("the re-driven event handled, the gauges at 0", || {
        recorder.gauge(names::INBOX_DEAD) == Some(0.0)
            && recorder.gauge(names::INBOX_QUEUED) == Some(0.0)
            && recorder.gauge(names::WORKER_IN_FLIGHT) == Some(0.0)
            && recorder.counter(names::WORKER_HANDLED, &[("event_type", "user.deleted")]) == 1
    })
    .await;
    assert_eq!(recorder.counter(names::INBOX_REDRIVEN, &[]), 1);
    assert_eq!(recorder.sum(names::WORKER_HANDLED), 4);

    stop(shutdown, worker).await;
}

#[tokio::test]
async fn an_event_recovered_from_the_audit_log_is_counted_as_such() {
    let recorder = TestRecorder::default();
    let _installed = ::metrics::set_default_local_recorder(&recorder);
    let dir = TempDir::new("metrics-recovered");
    let inbox = Inbox::new(SqliteStore::open(dir.path().join("inbox.sqlite3")).expect("open"));
    store_event(&inbox, "user.created", "recovered", true).await;
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(inbox.clone())
            .poll(Duration::from_millis(20))
            .run(
                |_: Delivery| async { Ok::<_, String>(()) },
                shutdown.clone(),
            ),
    );
    eventually("handled", || {
        recorder.counter(names::WORKER_RECOVERED, &[]) == 1
    })
    .await;
    assert_eq!(recorder.sum(names::WORKER_HANDLED), 1);
    stop(shutdown, worker).await;
}

#[tokio::test]
async fn an_attempt_whose_claim_was_lost_is_not_counted_handled_or_dead() {
    let recorder = TestRecorder::default();
    let _installed = ::metrics::set_default_local_recorder(&recorder);
    let dir = TempDir::new("metrics-lost");
    let store = SqliteStore::open(dir.path().join("inbox.sqlite3")).expect("open");
    let inbox = Inbox::new(Faulty {
        loses_claims: true,
        ..Faulty::new(store)
    });
    for (id, event_type) in [
        ("lost-handled", "user.created"),
        ("lost-dead", "user.disabled"),
    ] {
        store_event(&inbox, event_type, id, false).await;
    }
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(inbox.clone())
            .poll(Duration::from_millis(20))
            // The last attempt is the first: a failure makes a dead letter, if recorded.
            .backoff(Backoff::default().attempts(1))
            .run(
                |delivery: Delivery| async move {
                    match delivery.event.event_type() {
                        "user.disabled" => Err("fails".to_owned()),
                        _ => Ok(()),
                    }
                },
                shutdown.clone(),
            ),
    );
    // Both handler runs timed, so both ended: the one acked, the other failed for good.
    eventually("both handler runs", || {
        recorder.samples(names::WORKER_HANDLER_SECONDS).len() >= 2
    })
    .await;
    // The ack's answer (nothing recorded) comes after the handler's time: give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.sum(names::WORKER_HANDLED), 0);
    assert_eq!(recorder.sum(names::WORKER_DEAD_LETTERED), 0);
    stop(shutdown, worker).await;
}

/// Stores an event of `event_type` with `id` on endpoint `/` straight into the inbox's
/// store, as the catch-up (`recovered`) or the layer would.
async fn store_event(inbox: &Inbox, event_type: &str, id: &str, recovered: bool) {
    inbox
        .store()
        .store(authgear_webhook::inbox::NewEvent {
            key: authgear_webhook::inbox::EventKey::new("/", id),
            event_type: event_type.into(),
            body: stamped_event(event_type, id).into(),
            recovered,
        })
        .await
        .expect("store");
}

/// Stops the worker and waits for it, within `TIMEOUT`.
async fn stop(shutdown: CancellationToken, worker: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(TIMEOUT, worker)
        .await
        .expect("the worker stops")
        .expect("the worker ran");
}

/// Polls `condition` (on this thread, letting the runtime's tasks run) until it holds; fails
/// the test after `TIMEOUT`.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A recorder that keeps every value it is given, by name and labels, and never resets
/// them when read.
#[derive(Debug, Default)]
struct TestRecorder {
    counters: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<Key, Arc<Samples>>>,
}

#[derive(Debug, Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().expect("not poisoned").push(value);
    }
}

impl TestRecorder {
    /// The counter `name` with exactly `labels`; 0 if never registered.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = key(name, labels);
        self.counters
            .lock()
            .expect("not poisoned")
            .get(&key)
            .map_or(0, |value| value.load(Ordering::SeqCst))
    }

    /// The counter `name` summed over all its labels.
    fn sum(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(key, _)| key.name() == name)
            .map(|(_, value)| value.load(Ordering::SeqCst))
            .sum()
    }

    /// The gauge `name` (without labels), if ever set.
    fn gauge(&self, name: &str) -> Option<f64> {
        self.gauges
            .lock()
            .expect("not poisoned")
            .get(&key(name, &[]))
            .map(|value| f64::from_bits(value.load(Ordering::SeqCst)))
    }

    /// Every sample of the histogram `name`, over all its labels.
    fn samples(&self, name: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(key, _)| key.name() == name)
            .flat_map(|(_, samples)| samples.0.lock().expect("not poisoned").clone())
            .collect()
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let labels: Vec<::metrics::Label> = labels
        .iter()
        .map(|(label, value)| ::metrics::Label::new(label.to_string(), value.to_string()))
        .collect();
    Key::from_parts(name.to_owned(), labels)
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().expect("not poisoned");
        Counter::from_arc(counters.entry(key.clone()).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = self.gauges.lock().expect("not poisoned");
        Gauge::from_arc(gauges.entry(key.clone()).or_default().clone())
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().expect("not poisoned");
        Histogram::from_arc(histograms.entry(key.clone()).or_default().clone())
    }
}
