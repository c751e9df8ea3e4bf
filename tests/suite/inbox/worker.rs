//! The worker, fed through the layer over a real socket: retries after the backoff, dead
//! letters re-driven, panicking handlers, a slow handler keeping its claim by heartbeats, an
//! event left by a dead worker handed over, shutdown giving unfinished events back, and an
//! event recovered from the audit log handed to the handler as such.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use super::{Harness, calls_of, counts, event, eventually, recovered_event, stop};
use crate::common::TIMEOUT;
use authgear_webhook::inbox::{Backoff, CancellationToken, Delivery, Stored, Worker};
use http::StatusCode;

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
    let down = Arc::new(AtomicBool::new(true));
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

#[tokio::test]
async fn a_recovered_event_reaches_the_handler_marked_recovered() {
    let harness = Harness::start("recovered").await;
    let (calls, shutdown, task) = harness.worker(5, |_| Ok(()));
    assert_eq!(
        harness.post(&event("user.created", "delivered")).await.0,
        StatusCode::OK
    );
    // As the catch-up stores what it recovers from the audit log: straight in the store.
    let stored = harness.inbox.store().store(recovered_event("recovered"));
    assert_eq!(stored.await.expect("store"), Stored::Stored);
    eventually("both handled", || async {
        counts(&harness.inbox).await.done == 2
    })
    .await;
    stop(shutdown, task).await;

    let marks = |id: &str| -> Vec<bool> {
        calls_of(&calls, id)
            .iter()
            .map(|call| call.recovered)
            .collect()
    };
    assert_eq!(marks("recovered"), [true]);
    assert_eq!(marks("delivered"), [false]);
}
