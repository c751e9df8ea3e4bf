//! The layer decides what enters the inbox: a delivery stored once however often it comes,
//! handled once; blocking deliveries answered by the inner service and refused ones never
//! stored; the exact signed bytes kept.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use super::{Harness, calls_of, counts, event, eventually, inbox_file, post, stop};
use crate::common::{SECRET, TempDir, serve};
use authgear_webhook::{
    VerifySignatureLayer,
    inbox::{EventKey, Inbox, SqliteStore},
};
use axum::{Router, routing};
use bytes::Bytes;
use http::StatusCode;
use tower::ServiceBuilder;

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
async fn the_endpoint_named_on_the_verifying_layer_keys_the_inbox() {
    let dir = TempDir::new("inbox-endpoint");
    let inbox = Inbox::new(SqliteStore::open(inbox_file(&dir)).expect("open"));
    let router = Router::new()
        .route("/a", routing::post(|| async { "blocking" }))
        .route("/b", routing::post(|| async { "blocking" }))
        .route_layer(
            ServiceBuilder::new()
                .layer(VerifySignatureLayer::new(SECRET).endpoint("authgear-production"))
                .layer(inbox.layer()),
        );
    let addr = serve(router).await;
    let body = event("user.created", "named");
    // The same event through two paths of one named endpoint: stored once.
    for path in ["a", "b"] {
        let (status, answer) = post(&format!("http://{addr}/{path}"), &body, SECRET).await;
        assert_eq!((status, answer.as_str()), (StatusCode::OK, ""), "{path}");
    }
    assert_eq!(counts(&inbox).await.queued, 1);
    let claimed = inbox
        .store()
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].key,
        EventKey::new("authgear-production", "named")
    );
}

#[tokio::test]
async fn an_inbox_outside_the_verifying_layer_refuses_with_500_and_stores_nothing() {
    let dir = TempDir::new("inbox-order");
    let inbox = Inbox::new(SqliteStore::open(inbox_file(&dir)).expect("open"));
    let calls = Arc::new(AtomicUsize::new(0));
    let handler_calls = calls.clone();
    // The wrong order: the inbox first, the signature after.
    let router = Router::new()
        .route(
            "/",
            routing::post(move || {
                handler_calls.fetch_add(1, Ordering::SeqCst);
                async { "handled inline" }
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(inbox.layer())
                .layer(VerifySignatureLayer::new(SECRET)),
        );
    let addr = serve(router).await;
    for body in [
        event("user.created", "order"),
        event("user.pre_create", "order-2"),
    ] {
        let (status, answer) = post(&format!("http://{addr}/"), &body, SECRET).await;
        assert_eq!(
            (status, answer.as_str()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "webhook layers in the wrong order"
            )
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never runs");
    let counts = counts(&inbox).await;
    assert_eq!((counts.queued, counts.in_flight, counts.done), (0, 0, 0));
}
