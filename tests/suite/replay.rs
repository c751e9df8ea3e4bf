//! Replay protection: stale and field-less deliveries are refused after the signature is
//! verified; a repeated delivery runs the handler once and every copy gets the first answer;
//! in memory and, shared by two instances, in a real Redis; through the layer and through
//! the public check.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::common::{TIMEOUT, serve};
use authgear_webhook::{
    Rejection, RejectionKind, SIGNATURE_HEADER, VerifySignatureLayer,
    replay::{
        Checked, MemoryStore, RecordedAnswer, Repeated, ReplayLayer, ReplayProtection, SeenIds,
        StoreError, StoreErrorKind, StoreFuture,
    },
    sign,
};
use axum::{
    Router,
    body::Body,
    http::header,
    response::{IntoResponse, Response},
    routing::post,
};
use bytes::Bytes;
use http::{Request, StatusCode};
use tower::{
    ServiceBuilder, ServiceExt,
    layer::util::{Identity, Stack},
};

use crate::common::SECRET;
/// The injected "now" of the in-process tests.
const NOW: u64 = 1_750_000_000;

fn delivery(id: &str, timestamp: u64) -> String {
    format!(
        r#"{{"id":"{id}","seq":1,"type":"user.created","payload":{{}},"context":{{"timestamp":{timestamp},"user_id":null}}}}"#
    )
}

fn fixed_clock(protection: ReplayProtection) -> ReplayProtection {
    protection.clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
}

/// The layers in the order a request takes them: the signature, then replay protection.
type Layers = ServiceBuilder<Stack<ReplayLayer, Stack<VerifySignatureLayer, Identity>>>;

fn layers(verify: VerifySignatureLayer, protection: ReplayProtection) -> Layers {
    ServiceBuilder::new()
        .layer(verify)
        .layer(protection.layer())
}

fn verified(protection: ReplayProtection) -> Layers {
    layers(VerifySignatureLayer::new(SECRET), protection)
}

fn app(protection: ReplayProtection) -> Router {
    Router::new()
        .route("/hooks/a", post(|| async { "ok" }))
        .route("/hooks/b", post(|| async { "ok" }))
        .layer(verified(protection))
}

/// Sends `body` to `path` in process; returns the status and the rejection kind, if any.
async fn send(
    app: &Router,
    path: &str,
    body: &str,
    secret: &str,
) -> (StatusCode, Option<RejectionKind>) {
    let request = Request::post(path)
        .header(SIGNATURE_HEADER, sign(secret, body.as_bytes()))
        .body(Body::from(body.to_owned()))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let kind = response
        .extensions()
        .get::<Rejection>()
        .map(Rejection::kind);
    (response.status(), kind)
}

/// An app whose handlers count their runs and answer with the run's number, so that a
/// repeated answer can be told from a second run: `/blocking` answers a JSON decision,
/// `/nonblocking` an empty 200, `/fail` a 500, `/large` a body of `LARGE` bytes.
struct Counting {
    app: Router,
    runs: Arc<AtomicUsize>,
}

const LARGE: usize = 64 * 1024 + 1;

fn counting(protection: ReplayProtection) -> Counting {
    counting_behind(VerifySignatureLayer::new(SECRET), protection)
}

fn counting_behind(verify: VerifySignatureLayer, protection: ReplayProtection) -> Counting {
    let runs = Arc::new(AtomicUsize::new(0));
    let run = {
        let runs = runs.clone();
        move || {
            let runs = runs.clone();
            async move {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                // Long enough for simultaneous copies to find the first one in flight.
                tokio::time::sleep(Duration::from_millis(20)).await;
                run
            }
        }
    };
    let (blocking, nonblocking, fail, large) = (run.clone(), run.clone(), run.clone(), run);
    let app = Router::new()
        .route(
            "/blocking",
            post(move || async move {
                let run = blocking().await;
                let decision = format!(r#"{{"is_allowed":false,"reason":"run {run}"}}"#);
                ([(header::CONTENT_TYPE, "application/json")], decision).into_response()
            }),
        )
        .route(
            "/nonblocking",
            post(move || async move {
                nonblocking().await;
                StatusCode::OK.into_response()
            }),
        )
        .route(
            "/fail",
            post(move || async move {
                fail().await;
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }),
        )
        .route(
            "/large",
            post(move || async move {
                large().await;
                vec![b'x'; LARGE].into_response()
            }),
        )
        .layer(layers(verify, protection));
    Counting { app, runs }
}

/// What a client sees of a response.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
    repeated: bool,
    kind: Option<RejectionKind>,
}

async fn seen(response: Response) -> Seen {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii").to_owned());
    let repeated = response.extensions().get::<Repeated>().is_some();
    let kind = response
        .extensions()
        .get::<Rejection>()
        .map(Rejection::kind);
    let body = tokio::time::timeout(
        TIMEOUT,
        axum::body::to_bytes(response.into_body(), usize::MAX),
    )
    .await
    .expect("in time")
    .expect("a body");
    Seen {
        status,
        content_type,
        body,
        repeated,
        kind,
    }
}

/// Sends one signed copy of `body` to `path` in process.
async fn copy(app: &Router, path: &str, body: &str) -> Seen {
    let request = Request::post(path)
        .header(SIGNATURE_HEADER, sign(SECRET, body.as_bytes()))
        .body(Body::from(body.to_owned()))
        .expect("request");
    let response = tokio::time::timeout(TIMEOUT, app.clone().oneshot(request))
        .await
        .expect("in time")
        .expect("infallible");
    seen(response).await
}

/// Sends `n` copies of `body` to `path` at once; returns what each got.
async fn copies(app: &Router, path: &str, body: &str, n: usize) -> Vec<Seen> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (app, path, body) = (app.clone(), path.to_owned(), body.to_owned());
            tokio::spawn(async move { copy(&app, &path, &body).await })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.expect("no panic"));
    }
    seen
}

/// Every copy got the first answer: one was answered by the handler, the others repeat it.
fn assert_one_answer(seen: &[Seen], status: StatusCode, body: &str) {
    for copy in seen {
        assert_eq!(
            (copy.status, copy.body.as_ref()),
            (status, body.as_bytes()),
            "{seen:?}"
        );
        assert_eq!(copy.kind, None);
    }
    assert_eq!(
        seen.iter().filter(|copy| !copy.repeated).count(),
        1,
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_delivery_runs_the_handler_once_and_gets_the_first_answer() {
    let app = counting(fixed_clock(ReplayProtection::in_memory()));
    let decision = r#"{"is_allowed":false,"reason":"run 1"}"#;

    // One after the other, as Authgear calls a blocking hook configured twice.
    let body = delivery("blocking-sequential", NOW);
    let mut seen = vec![copy(&app.app, "/blocking", &body).await];
    seen.push(copy(&app.app, "/blocking", &body).await);
    seen.push(copy(&app.app, "/blocking", &body).await);
    assert_one_answer(&seen, StatusCode::OK, decision);
    assert!(seen[1].repeated && seen[2].repeated);
    assert!(
        seen.iter()
            .all(|copy| copy.content_type.as_deref() == Some("application/json"))
    );
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);

    let body = delivery("nonblocking-sequential", NOW);
    let seen = [
        copy(&app.app, "/nonblocking", &body).await,
        copy(&app.app, "/nonblocking", &body).await,
    ];
    assert_one_answer(&seen, StatusCode::OK, "");
    assert_eq!(app.runs.load(Ordering::SeqCst), 2);

    // 16 at once: the first runs the handler, the others wait for its answer.
    let body = delivery("blocking-simultaneous", NOW);
    let seen = copies(&app.app, "/blocking", &body, 16).await;
    assert_one_answer(
        &seen,
        StatusCode::OK,
        r#"{"is_allowed":false,"reason":"run 3"}"#,
    );
    assert_eq!(app.runs.load(Ordering::SeqCst), 3);

    let body = delivery("nonblocking-simultaneous", NOW);
    let seen = copies(&app.app, "/nonblocking", &body, 16).await;
    assert_one_answer(&seen, StatusCode::OK, "");
    assert_eq!(app.runs.load(Ordering::SeqCst), 4);

    // Authgear sends the same event to every URL: each endpoint runs its handler once.
    let body = delivery("fan-out", NOW);
    copy(&app.app, "/blocking", &body).await;
    copy(&app.app, "/nonblocking", &body).await;
    copy(&app.app, "/blocking", &body).await;
    assert_eq!(app.runs.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn an_attackers_replay_is_answered_without_the_handler_then_refused_as_stale() {
    let now = Arc::new(AtomicUsize::new(NOW as usize));
    let clock = now.clone();
    let protection = ReplayProtection::in_memory()
        .window(Duration::from_secs(300))
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst) as u64));
    let app = counting(protection);
    let body = delivery("captured", NOW);
    let first = copy(&app.app, "/blocking", &body).await;
    assert_eq!(first.status, StatusCode::OK);

    // Within the window: the first answer again, the handler does not run.
    now.store(NOW as usize + 299, Ordering::SeqCst);
    let replay = copy(&app.app, "/blocking", &body).await;
    assert_eq!((replay.body, replay.repeated), (first.body, true));
    // Outside it: stale, as before this delivery was ever seen.
    now.store(NOW as usize + 301, Ordering::SeqCst);
    let replay = copy(&app.app, "/blocking", &body).await;
    assert_eq!(
        (replay.status, replay.kind),
        (StatusCode::UNAUTHORIZED, Some(RejectionKind::Stale))
    );
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_copy_frees_the_delivery_and_no_copy_inherits_a_5xx() {
    let app = counting(fixed_clock(ReplayProtection::in_memory()));
    let body = delivery("fails", NOW);
    let first = copy(&app.app, "/fail", &body).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The failure is not recorded: the next copy runs the handler again.
    let second = copy(&app.app, "/fail", &body).await;
    assert!(!second.repeated);
    assert_eq!(app.runs.load(Ordering::SeqCst), 2);

    // A request cancelled while its handler runs frees the delivery too.
    let body = delivery("cancelled", NOW);
    let request = Request::post("/blocking")
        .header(SIGNATURE_HEADER, sign(SECRET, body.as_bytes()))
        .body(Body::from(body.clone()))
        .expect("request");
    let mut cancelled = Box::pin(app.app.clone().oneshot(request));
    // Poll it until the handler has started, then drop it.
    let started = async {
        while app.runs.load(Ordering::SeqCst) < 3 {
            let _ = futures_poll_once(cancelled.as_mut()).await;
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(TIMEOUT, started)
        .await
        .expect("in time");
    drop(cancelled);
    let after = copy(&app.app, "/blocking", &body).await;
    assert_eq!(
        (after.status, after.repeated, after.body.as_ref()),
        (
            StatusCode::OK,
            false,
            &br#"{"is_allowed":false,"reason":"run 4"}"#[..]
        )
    );
}

/// Polls `future` once.
async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
    let mut future = future;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn answers_above_the_record_limit_are_not_kept() {
    let app = counting(fixed_clock(ReplayProtection::in_memory()));
    let body = delivery("large", NOW);
    let first = copy(&app.app, "/large", &body).await;
    assert_eq!((first.status, first.body.len()), (StatusCode::OK, LARGE));
    let second = copy(&app.app, "/large", &body).await;
    assert_eq!(
        (second.status, second.kind),
        (StatusCode::UNAUTHORIZED, Some(RejectionKind::Replayed))
    );
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);

    // At the limit, it is kept.
    let app = counting(fixed_clock(
        ReplayProtection::in_memory().record_limit(LARGE),
    ));
    copy(&app.app, "/large", &body).await;
    let second = copy(&app.app, "/large", &body).await;
    assert_eq!((second.status, second.body.len()), (StatusCode::OK, LARGE));
    assert!(second.repeated);
}

#[tokio::test]
async fn a_streamed_answer_is_recorded_whole_and_a_broken_one_not_at_all() {
    let app = Router::new()
        .route(
            "/streamed",
            post(|| async {
                Body::new(crate::common::Script::split(
                    b"{\"is_allowed\":true}",
                    &[3, 5],
                ))
            }),
        )
        .route(
            "/broken",
            post(|| async {
                Body::new(crate::common::Script::split(b"{\"is_", &[2]).then_error())
            }),
        )
        .layer(verified(fixed_clock(ReplayProtection::in_memory())));
    let body = delivery("streamed", NOW);
    let first = copy(&app, "/streamed", &body).await;
    let second = copy(&app, "/streamed", &body).await;
    assert_eq!(second.body.as_ref(), br#"{"is_allowed":true}"#);
    assert_eq!((first.body, second.repeated), (second.body, true));

    // The first copy's answer broke off: the handler did run, there is nothing to repeat.
    let request = Request::post("/broken")
        .header(SIGNATURE_HEADER, sign(SECRET, body.as_bytes()))
        .body(Body::from(body.clone()))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert!(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .is_err()
    );
    let second = copy(&app, "/broken", &body).await;
    assert_eq!(
        (second.status, second.kind),
        (StatusCode::UNAUTHORIZED, Some(RejectionKind::Replayed))
    );
}

#[tokio::test]
async fn a_copy_waits_for_the_first_at_most_the_wait_then_gets_401_not_5xx() {
    let release = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let (gate, start) = (release.clone(), started.clone());
    let app = Router::new()
        .route(
            "/",
            post(move || async move {
                start.notify_one();
                gate.notified().await;
                "done"
            }),
        )
        .layer(verified(fixed_clock(
            ReplayProtection::in_memory().wait_for_first(Duration::from_millis(50)),
        )));
    let body = delivery("slow", NOW);
    let first = tokio::spawn({
        let (app, body) = (app.clone(), body.clone());
        async move { copy(&app, "/", &body).await }
    });
    tokio::time::timeout(TIMEOUT, started.notified())
        .await
        .expect("the handler starts");
    let waited = copy(&app, "/", &body).await;
    assert_eq!(
        (waited.status, waited.kind),
        (StatusCode::UNAUTHORIZED, Some(RejectionKind::Replayed))
    );
    release.notify_one();
    let first = first.await.expect("no panic");
    assert_eq!(
        (first.status, first.body.as_ref()),
        (StatusCode::OK, &b"done"[..])
    );
    // Answered now: the next copy gets the answer.
    let after = copy(&app, "/", &body).await;
    assert_eq!((after.body.as_ref(), after.repeated), (&b"done"[..], true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_check_works_outside_tower() {
    let protection = fixed_clock(ReplayProtection::in_memory());
    let body = delivery("outside", NOW);
    let runs = Arc::new(AtomicUsize::new(0));

    // A framework-neutral receiver: 16 copies at once, as a queue consumer or an actix-web
    // handler would see them.
    let receive = |protection: ReplayProtection, runs: Arc<AtomicUsize>, body: String| async move {
        match protection.check("/hook", body.as_bytes()).await {
            Ok(Checked::Fresh(claim)) => {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                let answer = RecordedAnswer::new(StatusCode::OK, r#"{"is_allowed":true}"#)
                    .with_content_type("application/json");
                claim.record(&answer);
                Ok((answer, false))
            }
            Ok(Checked::Repeat(answer)) => Ok((answer, true)),
            Err(kind) => Err(kind),
        }
    };
    let tasks: Vec<_> = (0..16)
        .map(|_| tokio::spawn(receive(protection.clone(), runs.clone(), body.clone())))
        .collect();
    let mut repeats = 0;
    for task in tasks {
        let (answer, repeated) = task.await.expect("no panic").expect("accepted");
        assert_eq!(answer.body().as_ref(), br#"{"is_allowed":true}"#);
        assert_eq!(answer.content_type(), Some("application/json"));
        repeats += usize::from(repeated);
    }
    assert_eq!((runs.load(Ordering::SeqCst), repeats), (1, 15));

    // A claim dropped without an answer frees the delivery.
    let body = delivery("dropped", NOW);
    let Ok(Checked::Fresh(claim)) = protection.check("/hook", body.as_bytes()).await else {
        panic!("fresh");
    };
    claim.release();
    assert!(matches!(
        protection.check("/hook", body.as_bytes()).await,
        Ok(Checked::Fresh(_))
    ));

    // Stale and field-less bodies are refused as the layer refuses them.
    assert_eq!(
        protection
            .check("/hook", delivery("old", NOW - 301).as_bytes())
            .await
            .unwrap_err(),
        RejectionKind::Stale
    );
    assert_eq!(
        protection.check("/hook", b"{}").await.unwrap_err(),
        RejectionKind::MissingReplayFields
    );
    // A queue consumer checks at the time the delivery was received.
    let received = UNIX_EPOCH + Duration::from_secs(NOW - 500);
    let old = delivery("queued", NOW - 510);
    assert!(matches!(
        protection.check_at("queue", old.as_bytes(), received).await,
        Ok(Checked::Fresh(_))
    ));
}

#[tokio::test]
async fn a_full_memory_store_fails_closed_and_keeps_what_fits() {
    // Room for about one answer: the second delivery's claim does not fit.
    let store = MemoryStore::default().max_bytes(120);
    let app = counting(fixed_clock(ReplayProtection::new(store)));
    let first = delivery("full-1", NOW);
    copy(&app.app, "/blocking", &first).await;
    let second = copy(
        &app.app,
        "/blocking",
        &delivery("full-2-with-a-longer-id", NOW),
    )
    .await;
    assert_eq!(
        (second.status, second.kind),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(RejectionKind::StoreUnavailable)
        )
    );
    assert!(copy(&app.app, "/blocking", &first).await.repeated);
}

#[tokio::test]
async fn replay_protection_outside_the_verifying_layer_refuses_with_500() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    // The wrong order: replay protection first, the signature after.
    let app = Router::new()
        .route(
            "/",
            post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(fixed_clock(ReplayProtection::in_memory()).layer())
                .layer(VerifySignatureLayer::new(SECRET)),
        );
    let body = delivery("order", NOW);
    for _ in 0..2 {
        assert_eq!(
            send(&app, "/", &body, SECRET).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(RejectionKind::Unverified)
            )
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the handler never runs");
}

#[tokio::test]
async fn a_named_endpoint_is_shared_by_its_paths() {
    let app = counting_behind(
        VerifySignatureLayer::new(SECRET).endpoint("authgear"),
        fixed_clock(ReplayProtection::in_memory()),
    );
    let body = delivery("1", NOW);
    copy(&app.app, "/blocking", &body).await;
    let other_path = copy(&app.app, "/nonblocking", &body).await;
    assert!(other_path.repeated);
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn timestamps_outside_the_window_are_stale() {
    let app = app(fixed_clock(
        ReplayProtection::in_memory()
            .window(Duration::from_secs(300))
            .clock_skew(Duration::from_secs(60)),
    ));
    let stale = (StatusCode::UNAUTHORIZED, Some(RejectionKind::Stale));
    let cases = [
        (NOW - 300, (StatusCode::OK, None)),
        (NOW - 301, stale),
        (NOW - 86_400 * 365, stale),
        (NOW + 60, (StatusCode::OK, None)),
        (NOW + 61, stale),
        (0, stale),
    ];
    for (i, (timestamp, want)) in cases.into_iter().enumerate() {
        let body = delivery(&i.to_string(), timestamp);
        assert_eq!(
            send(&app, "/hooks/a", &body, SECRET).await,
            want,
            "{timestamp}"
        );
    }
}

#[tokio::test]
async fn bodies_without_id_or_timestamp_are_refused_unless_allowed() {
    let bodies = [
        r#"{"type":"user.created"}"#.to_owned(),
        r#"{"id":"1","context":{}}"#.to_owned(),
        r#"{"id":"1","context":{"timestamp":"yesterday"}}"#.to_owned(),
        r#"{"context":{"timestamp":1750000000}}"#.to_owned(),
        "not json".to_owned(),
    ];
    let strict = app(fixed_clock(ReplayProtection::in_memory()));
    let lenient = app(fixed_clock(
        ReplayProtection::in_memory().allow_missing_fields(),
    ));
    for body in &bodies {
        assert_eq!(
            send(&strict, "/hooks/a", body, SECRET).await,
            (
                StatusCode::UNAUTHORIZED,
                Some(RejectionKind::MissingReplayFields)
            ),
            "{body}"
        );
        assert_eq!(
            send(&lenient, "/hooks/a", body, SECRET).await.0,
            StatusCode::OK,
            "{body}"
        );
    }
}

#[tokio::test]
async fn forged_deliveries_do_not_use_up_the_id() {
    let app = app(fixed_clock(ReplayProtection::in_memory()));
    let body = delivery("1", NOW);
    assert_eq!(
        send(&app, "/hooks/a", &body, "forger").await,
        (
            StatusCode::UNAUTHORIZED,
            Some(RejectionKind::InvalidSignature)
        )
    );
    assert_eq!(
        send(&app, "/hooks/a", &body, SECRET).await.0,
        StatusCode::OK
    );
}

/// A store that cannot answer.
struct Down;

impl SeenIds for Down {
    fn insert_if_absent(&self, _: String, _: Bytes, _: Duration) -> StoreFuture<Option<Bytes>> {
        Box::pin(async { Err(StoreError::new(StoreErrorKind::Unavailable, "down", None)) })
    }
    fn replace(&self, _: String, _: Bytes, _: Bytes, _: Duration) {}
    fn remove(&self, _: String, _: Bytes) {}
}

#[tokio::test]
async fn an_unavailable_store_fails_closed_unless_told_otherwise() {
    let body = delivery("1", NOW);
    let closed = app(fixed_clock(ReplayProtection::new(Down)));
    assert_eq!(
        send(&closed, "/hooks/a", &body, SECRET).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(RejectionKind::StoreUnavailable)
        )
    );
    let open = app(fixed_clock(ReplayProtection::new(Down).fail_open()));
    assert_eq!(
        send(&open, "/hooks/a", &body, SECRET).await.0,
        StatusCode::OK
    );
}

/// What a store was asked: the operation, the key and the ttl.
type Call = (&'static str, String, Duration);

/// A store that records what it is asked to do, on top of a memory store.
#[derive(Default, Clone)]
struct Recording {
    calls: Arc<std::sync::Mutex<Vec<Call>>>,
    store: MemoryStore,
}

impl Recording {
    fn push(&self, call: &'static str, key: &str, ttl: Duration) {
        let mut calls = self.calls.lock().expect("not poisoned");
        calls.push((call, key.to_owned(), ttl));
    }
}

impl SeenIds for Recording {
    fn insert_if_absent(
        &self,
        key: String,
        value: Bytes,
        ttl: Duration,
    ) -> StoreFuture<Option<Bytes>> {
        self.push("insert", &key, ttl);
        self.store.insert_if_absent(key, value, ttl)
    }
    fn replace(&self, key: String, current: Bytes, value: Bytes, ttl: Duration) {
        self.push("replace", &key, ttl);
        self.store.replace(key, current, value, ttl);
    }
    fn remove(&self, key: String, current: Bytes) {
        self.push("remove", &key, Duration::ZERO);
        self.store.remove(key, current);
    }
}

#[tokio::test]
async fn deliveries_are_remembered_for_the_rest_of_the_window() {
    let store = Recording::default();
    let app = app(fixed_clock(
        ReplayProtection::new(store.clone()).window(Duration::from_secs(300)),
    ));
    for (id, timestamp) in [("old", NOW - 200), ("new", NOW), ("ahead", NOW + 30)] {
        assert_eq!(
            send(&app, "/hooks/a", &delivery(id, timestamp), SECRET)
                .await
                .0,
            StatusCode::OK
        );
    }
    let calls = store.calls.lock().expect("not poisoned").clone();
    let ttls: Vec<(&str, u64)> = calls
        .iter()
        .map(|(call, _, ttl)| (*call, ttl.as_secs()))
        .collect();
    // Claimed, then the answer recorded, each for the rest of the window.
    assert_eq!(
        ttls,
        [
            ("insert", 100),
            ("replace", 100),
            ("insert", 300),
            ("replace", 300),
            ("insert", 330),
            ("replace", 330)
        ]
    );
    assert!(calls[0].1.ends_with("/hooks/a:old"), "{:?}", calls[0].1);
    assert_eq!(calls[0].1, calls[1].1);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Posts `body` to `path` over a real connection; returns the status and the body.
async fn deliver(addr: SocketAddr, path: &str, body: &str) -> (StatusCode, Bytes) {
    let url = format!("http://{addr}{path}");
    let signature = sign(SECRET, body.as_bytes());
    let (status, _, body) = crate::common::post(&url, body.as_bytes(), Some(signature)).await;
    (status, Bytes::from(body))
}

/// 64 simultaneous copies of a blocking delivery, spread over `addrs`: every copy gets the
/// same 200 decision; returns it.
async fn many_copies(addrs: &[SocketAddr]) -> Bytes {
    let body = Arc::new(delivery(&format!("copy-{}", now()), now()));
    // Spawned all before the first is awaited: at once.
    let copies: Vec<_> = (0..64)
        .map(|i| {
            let body = body.clone();
            let addr = addrs[i % addrs.len()];
            tokio::spawn(async move { deliver(addr, "/blocking", &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.expect("no panic"));
    }
    let first = answers[0].clone();
    assert_eq!(first.0, StatusCode::OK);
    assert!(answers.iter().all(|answer| *answer == first), "{answers:?}");
    first.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_simultaneous_copies_over_sockets_run_the_handler_once() {
    let app = counting(ReplayProtection::in_memory());
    let addr = serve(app.app).await;
    many_copies(&[addr]).await;
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);
}

/// Two instances on one shared store (each with its own connection, as behind a load
/// balancer) behave as one; `stop` takes the store away: 503, or 200 from `open` (an
/// instance that fails open).
#[cfg(any(feature = "replay-redis", feature = "replay-postgres"))]
async fn two_instances_share_one_store(
    one: ReplayProtection,
    two: ReplayProtection,
    open: ReplayProtection,
    stop: impl FnOnce(),
) {
    let (one, two) = (counting(one), counting(two));
    let runs = || one.runs.load(Ordering::SeqCst) + two.runs.load(Ordering::SeqCst);
    let (first, second) = (serve(one.app.clone()).await, serve(two.app.clone()).await);

    // One after the other, alternating instances.
    let body = delivery(&format!("shared-{}", now()), now());
    let answer = deliver(first, "/blocking", &body).await;
    assert_eq!(answer.0, StatusCode::OK);
    assert_eq!(deliver(second, "/blocking", &body).await, answer);
    assert_eq!(deliver(first, "/blocking", &body).await, answer);
    let nonblocking = delivery(&format!("shared-nb-{}", now()), now());
    for addr in [first, second, first] {
        assert_eq!(
            deliver(addr, "/nonblocking", &nonblocking).await,
            (StatusCode::OK, Bytes::new())
        );
    }
    assert_eq!(runs(), 2);

    // At once, on both.
    many_copies(&[first, second]).await;
    assert_eq!(runs(), 3);

    // A failed first copy frees the delivery for the other instance.
    let body = delivery(&format!("shared-fail-{}", now()), now());
    assert_eq!(
        deliver(first, "/fail", &body).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let retried = async {
        // The release runs in the background: the copy waits for it if it comes first.
        deliver(second, "/fail", &body).await
    };
    assert_eq!(retried.await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(runs(), 5);

    // The store gone: fail closed with 503, or open when asked to.
    let open = serve(counting(open.fail_open()).app).await;
    stop();
    let body = delivery(&format!("down-{}", now()), now());
    assert_eq!(
        deliver(first, "/blocking", &body).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(deliver(open, "/blocking", &body).await.0, StatusCode::OK);
}

#[cfg(feature = "replay-redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis() {
    use crate::common::RedisServer;
    use authgear_webhook::replay::RedisStore;

    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let instance = || ReplayProtection::new(RedisStore::open(redis.url.as_str()).expect("url"));
    let (one, two, open) = (instance(), instance(), instance());
    two_instances_share_one_store(one, two, open, || redis.kill()).await;
}

#[cfg(feature = "replay-postgres")]
mod postgres {
    use super::*;
    use crate::common::PostgresServer;
    use authgear_webhook::{
        replay::PostgresStore,
        sqlx::{PgPool, postgres::PgPoolOptions},
    };

    async fn pool(postgres: &PostgresServer) -> PgPool {
        PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(1))
            .connect(&postgres.url)
            .await
            .expect("connect to Postgres")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_share_one_postgres() {
        let Some(mut postgres) = PostgresServer::start().await else {
            return;
        };
        // Each instance with a pool of its own, as separate processes.
        let mut instances = Vec::new();
        for _ in 0..3 {
            let store = PostgresStore::open(pool(&postgres).await)
                .await
                .expect("open");
            instances.push(ReplayProtection::new(store));
        }
        let [one, two, open] = <[_; 3]>::try_from(instances).expect("three");
        two_instances_share_one_store(one, two, open, || postgres.stop()).await;
    }

    /// The store's contract on a real table: claim, read, compare and set, compare and
    /// delete, a row past its window claimable again; the schema and prefix chosen.
    #[tokio::test]
    async fn a_key_is_claimed_once_within_its_window_and_again_after() {
        let Some(postgres) = PostgresServer::start().await else {
            return;
        };
        let store = PostgresStore::builder(pool(&postgres).await)
            .schema("hooks")
            .table_prefix("replay_test_")
            .open()
            .await
            .expect("open");
        assert_eq!(store.table(), "hooks.replay_test_replay");
        assert_eq!(
            postgres.psql("SELECT store, version FROM hooks.replay_test_versions"),
            "replay|1"
        );
        let long = Duration::from_secs(60);
        let bytes = |text: &'static str| Bytes::from_static(text.as_bytes());
        let insert = |value, ttl| store.insert_if_absent("k".into(), bytes(value), ttl);

        assert_eq!(insert("a", long).await.expect("insert"), None);
        assert_eq!(insert("b", long).await.expect("insert"), Some(bytes("a")));
        // Compare and set: a stale value changes nothing; the current one is replaced.
        store.replace("k".into(), bytes("x"), bytes("no"), long);
        store.replace("k".into(), bytes("a"), bytes("answer"), long);
        eventually(async || insert("c", long).await.expect("insert") == Some(bytes("answer")))
            .await;
        // Compare and delete, likewise.
        store.remove("k".into(), bytes("a"));
        store.remove("k".into(), bytes("answer"));
        eventually(async || postgres.psql("SELECT count(*) FROM hooks.replay_test_replay") == "0")
            .await;
        // A row past its window counts as absent: the next copy claims it.
        assert_eq!(
            insert("d", Duration::from_millis(1)).await.expect("insert"),
            None
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(insert("e", long).await.expect("insert"), None);
        assert_eq!(insert("f", long).await.expect("insert"), Some(bytes("e")));
        assert!(!format!("{store:?}").contains("postgres://"));

        // Rows past their window are swept: by a store's first call, then once a minute.
        let gone = store.insert_if_absent("gone".into(), bytes("g"), Duration::from_millis(1));
        assert_eq!(gone.await.expect("insert"), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let another = PostgresStore::builder(pool(&postgres).await)
            .schema("hooks")
            .table_prefix("replay_test_")
            .open()
            .await
            .expect("open");
        let other = another.insert_if_absent("other".into(), bytes("o"), long);
        assert_eq!(other.await.expect("insert"), None);
        let count = "SELECT count(*) FROM hooks.replay_test_replay WHERE key = 'gone'";
        eventually(async || postgres.psql(count) == "0").await;
    }

    async fn eventually(mut done: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !done().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
