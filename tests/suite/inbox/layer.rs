//! The layer decides what enters the inbox: a delivery stored once however often it comes,
//! handled once; blocking deliveries answered by the inner service and refused ones never
//! stored; the exact signed bytes kept.

use std::{sync::atomic::Ordering, time::Duration};

use super::{Harness, calls_of, counts, event, eventually, post, stop};
use bytes::Bytes;
use http::StatusCode;

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
