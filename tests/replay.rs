//! Replay protection: stale, repeated and field-less deliveries are refused after the
//! signature is verified; in memory and, shared by two instances, in a real Redis.
#![cfg(feature = "replay")]

mod common;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use authgear_webhook::{
    Rejection, RejectionKind, SIGNATURE_HEADER, VerifySignatureLayer,
    replay::{ReplayProtection, SeenIds, StoreError, StoreFuture},
    sign,
};
use axum::{Router, body::Body, routing::post};
use bytes::Bytes;
use common::{TIMEOUT, client, serve};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::ServiceExt;

const SECRET: &str = "Lx8k3mVq2ZpT9wR4yN6bC1dF7gH0jK5s";
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

fn app(protection: ReplayProtection) -> Router {
    Router::new()
        .route("/hooks/a", post(|| async { "ok" }))
        .route("/hooks/b", post(|| async { "ok" }))
        .layer(VerifySignatureLayer::new(SECRET).replay_protection(protection))
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

#[tokio::test]
async fn a_delivery_is_accepted_once_per_endpoint() {
    let app = app(fixed_clock(ReplayProtection::in_memory()));
    let body = delivery("0000000000000001", NOW - 10);
    assert_eq!(
        send(&app, "/hooks/a", &body, SECRET).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        send(&app, "/hooks/a", &body, SECRET).await,
        (StatusCode::UNAUTHORIZED, Some(RejectionKind::Replayed))
    );
    // Authgear sends the same event to every URL: another endpoint accepts it once.
    assert_eq!(
        send(&app, "/hooks/b", &body, SECRET).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        send(&app, "/hooks/b", &body, SECRET).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Another id on the same endpoint is new.
    let other = delivery("0000000000000002", NOW - 10);
    assert_eq!(
        send(&app, "/hooks/a", &other, SECRET).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_named_endpoint_is_shared_by_its_paths() {
    let app = app(fixed_clock(
        ReplayProtection::in_memory().endpoint("authgear"),
    ));
    let body = delivery("1", NOW);
    assert_eq!(
        send(&app, "/hooks/a", &body, SECRET).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, "/hooks/b", &body, SECRET).await.0,
        StatusCode::UNAUTHORIZED
    );
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
    fn insert_if_absent(&self, _: String, _: Duration) -> StoreFuture {
        Box::pin(async { Err(StoreError::new("down", None)) })
    }
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

/// A store that records what it is asked to remember.
#[derive(Default, Clone)]
struct Recording(Arc<std::sync::Mutex<Vec<(String, Duration)>>>);

impl SeenIds for Recording {
    fn insert_if_absent(&self, key: String, ttl: Duration) -> StoreFuture {
        self.0.lock().expect("not poisoned").push((key, ttl));
        Box::pin(async { Ok(true) })
    }
}

#[tokio::test]
async fn ids_are_remembered_for_the_rest_of_the_window() {
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
    let seen = store.0.lock().expect("not poisoned").clone();
    let ttls: Vec<u64> = seen.iter().map(|(_, ttl)| ttl.as_secs()).collect();
    assert_eq!(ttls, [100, 300, 330]);
    assert!(seen[0].0.ends_with("/hooks/a:old"), "{:?}", seen[0].0);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Posts `body` over a real connection; returns the status.
async fn deliver(addr: SocketAddr, body: &str) -> StatusCode {
    let request = Request::post(format!("http://{addr}/hooks/a"))
        .header(SIGNATURE_HEADER, sign(SECRET, body.as_bytes()))
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    tokio::time::timeout(TIMEOUT, client(false).request(request))
        .await
        .expect("in time")
        .expect("a response")
        .status()
}

/// Exactly one of many simultaneous copies of a delivery gets through.
async fn one_of_many_copies(addrs: &[SocketAddr]) {
    let body = Arc::new(delivery(&format!("copy-{}", now()), now()));
    let copies = (0..64).map(|i| {
        let body = body.clone();
        let addr = addrs[i % addrs.len()];
        tokio::spawn(async move { deliver(addr, &body).await })
    });
    let mut statuses = Vec::new();
    for copy in copies {
        statuses.push(copy.await.expect("no panic"));
    }
    let accepted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let replayed = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((accepted, replayed), (1, 63), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_one_of_simultaneous_copies_is_accepted() {
    let addr = serve(app(ReplayProtection::in_memory())).await;
    one_of_many_copies(&[addr]).await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use authgear_webhook::replay::RedisStore;
    use common::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_share_one_redis() {
        let Some(mut redis) = RedisServer::start().await else {
            return;
        };
        // Two instances, each with its own connection, as behind a load balancer.
        let first = serve(app(ReplayProtection::new(
            RedisStore::open(redis.url.as_str()).expect("url"),
        )))
        .await;
        let second = serve(app(ReplayProtection::new(
            RedisStore::open(redis.url.as_str()).expect("url"),
        )))
        .await;

        let body = delivery(&format!("shared-{}", now()), now());
        assert_eq!(deliver(first, &body).await, StatusCode::OK);
        assert_eq!(deliver(second, &body).await, StatusCode::UNAUTHORIZED);
        assert_eq!(deliver(first, &body).await, StatusCode::UNAUTHORIZED);

        one_of_many_copies(&[first, second]).await;

        // Redis gone: fail closed with 503, or open when asked to.
        let open = serve(app(ReplayProtection::new(
            RedisStore::open(redis.url.as_str()).expect("url"),
        )
        .fail_open()))
        .await;
        redis.stop();
        let body = delivery(&format!("down-{}", now()), now());
        assert_eq!(deliver(first, &body).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(deliver(open, &body).await, StatusCode::OK);
    }
}
