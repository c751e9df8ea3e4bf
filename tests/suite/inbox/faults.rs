//! Nothing acknowledged is lost when the store's ground gives way: a full SQLite store and
//! a full disk answer 503 and keep what they acknowledged (and the disk recovers); Redis
//! killed and restarted keeps every acknowledged event once; Redis down, read-only, unable to
//! persist, out of memory or the store at its max size is a store error, and fails the
//! readiness probe, and the store recovers; Postgres crashed
//! answers 503 and, restarted, hands over every acknowledged event; Postgres read-only or
//! cancelling statements (statement timeout) answers 503, and the store recovers.

use std::collections::HashSet;
#[cfg(feature = "inbox-redis")]
use std::time::{Duration, Instant, SystemTime};

use super::{Harness, counts, handled_ids, padded_event};
#[cfg(feature = "inbox-redis")]
use super::{durable_redis, small_event, store, until_ok};
#[cfg(feature = "inbox-postgres")]
use super::{event, new_event, pg_store};
#[cfg(feature = "inbox-postgres")]
use crate::common::PostgresServer;
#[cfg(any(feature = "inbox-redis", feature = "inbox-postgres"))]
use crate::common::TIMEOUT;
#[cfg(feature = "inbox-postgres")]
use crate::common::TempDir;
use crate::common::small_disk::SmallDisk;
use authgear_webhook::inbox::SqliteStore;
#[cfg(feature = "inbox-redis")]
use authgear_webhook::inbox::{EventKey, NewEvent, RedisStore, Stored};
#[cfg(feature = "inbox-postgres")]
use authgear_webhook::inbox::{Inbox, PostgresStore, StoreError};
#[cfg(any(feature = "inbox-redis", feature = "inbox-postgres"))]
use authgear_webhook::inbox::{Store, StoreErrorKind};
#[cfg(feature = "inbox-redis")]
use bytes::Bytes;
use http::StatusCode;

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

#[tokio::test]
async fn a_full_disk_answers_503_keeps_what_it_acknowledged_and_recovers() {
    let Some(disk) = SmallDisk::mount("disk-full", "2m") else {
        return;
    };
    // Most of the disk taken by another file, so the inbox fills it after a few dozen events.
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1536 * 1024]).expect("filler");
    let file = disk.path().join("inbox.sqlite3");
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
    let handled: HashSet<String> = handled_ids(&calls, acknowledged.len(), shutdown, task)
        .await
        .into_iter()
        .collect();
    assert_eq!(handled, acknowledged.into_iter().collect::<HashSet<_>>());
    drop(harness);
}

#[cfg(feature = "inbox-redis")]
#[tokio::test]
async fn nothing_acknowledged_is_lost_when_redis_is_killed_and_restarted() {
    let Some(mut redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    const N: usize = 300;
    // Concurrent stores; SIGKILL Redis right after the last one is acknowledged.
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..N {
        let store = store.clone();
        sends.spawn(async move { store.store(small_event(&format!("r{n}"))).await });
    }
    let mut acknowledged = 0;
    while let Some(sent) = sends.join_next().await {
        assert_eq!(sent.expect("ran").expect("stored"), Stored::Stored);
        acknowledged += 1;
    }
    let claimed = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 10);
    redis.kill();
    let down = store.counts().await;
    assert_eq!(
        down.expect_err("Redis is down").kind(),
        StoreErrorKind::Unavailable
    );
    redis.restart().await;

    // The same handle works again once the connection is remade.
    let counts = until_ok("counts after restart", || store.counts()).await;
    assert_eq!(
        (counts.queued, counts.in_flight),
        (acknowledged as u64 - 10, 10)
    );
    // Every acknowledged event is still there, once; the claims too (not handed out again).
    let mut seen = HashSet::new();
    loop {
        let batch = store
            .claim(100, Duration::from_secs(60))
            .await
            .expect("claim");
        if batch.is_empty() {
            break;
        }
        for claim in batch {
            assert_eq!(claim.attempt, 1);
            assert!(seen.insert(claim.key.id));
        }
    }
    assert_eq!(seen.len(), N - 10);
    for claim in &claimed {
        assert!(!seen.contains(&claim.key.id));
        assert!(store.ack(claim).await.expect("ack"), "{}", claim.key.id);
    }
    assert_eq!(
        store.store(small_event("r0")).await.expect("store"),
        Stored::Duplicate
    );
}

#[cfg(feature = "inbox-redis")]
#[tokio::test]
async fn redis_faults_are_store_errors_and_the_store_recovers() {
    let Some(mut redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    assert_eq!(
        store.store(small_event("before")).await.expect("store"),
        Stored::Stored
    );

    // Down: an error, quickly (bounded by the one-second timeouts), then back.
    redis.kill();
    let started = Instant::now();
    let error = store.store(small_event("down")).await.expect_err("down");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert!(started.elapsed() < TIMEOUT, "bounded");
    redis.restart().await;
    let stored = until_ok("store after restart", || store.store(small_event("down"))).await;
    assert_eq!(stored, Stored::Stored);

    // Read-only (a replica): -READONLY.
    assert_eq!(redis.cli(&["REPLICAOF", "127.0.0.1", "1"]), "OK");
    let error = store
        .store(small_event("readonly"))
        .await
        .expect_err("read-only");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert_eq!(error.to_string(), "Redis is read-only");
    let error = store
        .probe()
        .await
        .expect_err("the probe fails on a replica");
    assert_eq!(error.to_string(), "Redis is read-only");
    // Reading still works.
    assert_eq!(store.counts().await.expect("counts").queued, 2);
    assert_eq!(redis.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
    let stored = until_ok("store as primary", || store.store(small_event("readonly"))).await;
    assert_eq!(stored, Stored::Stored);

    // Cannot persist (-MISCONF): a snapshot fails (its directory is gone) and Redis refuses
    // writes, as it does when the disk is full.
    let gone = redis.dir().join("gone");
    std::fs::create_dir_all(&gone).expect("dir");
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "dir", gone.to_str().expect("utf-8")]),
        "OK"
    );
    std::fs::remove_dir_all(&gone).expect("removed");
    assert_eq!(redis.cli(&["CONFIG", "SET", "save", "3600 1"]), "OK");
    redis.cli(&["BGSAVE"]);
    let deadline = Instant::now() + TIMEOUT;
    while !redis
        .cli(&["INFO", "persistence"])
        .contains("rdb_last_bgsave_status:err")
    {
        assert!(Instant::now() < deadline, "the snapshot fails");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = store
        .store(small_event("misconf"))
        .await
        .expect_err("misconf");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert_eq!(error.to_string(), "Redis cannot persist writes");
    let error = store.probe().await.expect_err("the probe fails");
    assert_eq!(error.to_string(), "Redis cannot persist writes");
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "dir", redis.dir().to_str().expect("utf-8")]),
        "OK"
    );
    redis.cli(&["BGSAVE"]);
    let stored = until_ok("store after a good snapshot", || {
        store.store(small_event("misconf"))
    })
    .await;
    assert_eq!(stored, Stored::Stored);

    store.probe().await.expect("the probe passes again");

    // Full: over the store's bound (and Redis's maxmemory: -OOM).
    let bounded = |prefix: &str, max_size: u64| {
        RedisStore::builder()
            .prefix(prefix)
            .max_size(max_size)
            .timeout(Duration::from_secs(5))
            .open(redis.url.as_str())
            .expect("url")
    };
    // What the least event (empty key, type and body) counts for.
    let least_event = || NewEvent {
        key: EventKey::new("", ""),
        event_type: String::new(),
        body: Bytes::new(),
        recovered: false,
    };
    let measure = bounded("least", 1 << 20);
    assert_eq!(
        measure.store(least_event()).await.expect("store"),
        Stored::Stored
    );
    let least = measure.size().await.expect("size");
    let small = bounded("small", 2_000);
    small.probe().await.expect("room in an empty store");
    let mut stored = 0;
    let error = loop {
        match small.store(small_event(&format!("f{stored}"))).await {
            Ok(_) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 100, "never full");
    };
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert!(stored > 0);
    // The probe fails once less is left than the least event counts for, and passes with
    // room for it: a store whose room is exactly that takes the least event, then is full.
    let used = small.size().await.expect("size");
    let short = bounded("small", used + least - 1);
    let error = short
        .probe()
        .await
        .expect_err("no room for the least event");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert_eq!(error.to_string(), "inbox store is full");
    let error = short.store(least_event()).await.expect_err("full");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    let exact = bounded("small", used + least);
    exact.probe().await.expect("room for the least event");
    assert_eq!(
        exact.store(least_event()).await.expect("store"),
        Stored::Stored
    );
    assert_eq!(small.size().await.expect("size"), used + least);
    let error = exact.probe().await.expect_err("at its max size");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert_eq!(error.to_string(), "inbox store is full");
    let error = exact.store(small_event("over")).await.expect_err("full");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    // Handling and pruning make room again.
    let claims = small
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim");
    for claim in &claims {
        assert!(small.ack(claim).await.expect("ack"));
    }
    let later = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(
        small.prune(later, 100).await.expect("prune"),
        stored as u64 + 1
    );
    exact.probe().await.expect("room again");
    assert_eq!(
        small.store(small_event("room")).await.expect("store"),
        Stored::Stored
    );

    // Redis over its maxmemory, with noeviction (its default policy): a write let in just
    // under it (another key, 2 MiB at once) takes it 1 MiB over; Redis then refuses every
    // write that takes memory: every new event, and the probe.
    assert_eq!(
        redis.cli(&["CONFIG", "GET", "maxmemory-policy"]),
        "maxmemory-policy\nnoeviction"
    );
    let used_memory = redis
        .cli(&["INFO", "memory"])
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .expect("used_memory")
        .trim()
        .parse::<u64>()
        .expect("a number");
    let maxmemory = (used_memory + (1 << 20)).to_string();
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", &maxmemory]), "OK");
    let filler = (2 << 20).to_string();
    assert_eq!(redis.cli(&["SETRANGE", "filler", &filler, "x"]), "2097153");
    let refused = redis.cli(&["SET", "other", "x"]);
    assert!(refused.contains("OOM"), "{refused}");
    let error = store.probe().await.expect_err("out of memory");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert_eq!(error.to_string(), "Redis is out of memory");
    let error = store.store(small_event("oom")).await.expect_err("oom");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    // Acks still work when Redis is out of memory.
    let claim = store
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim")
        .pop()
        .expect("one");
    assert!(store.ack(&claim).await.expect("ack"));
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    store
        .probe()
        .await
        .expect("the probe passes without maxmemory");
}

/// Posts `body` until the answer is `status`; fails the test after `TIMEOUT`.
#[cfg(feature = "inbox-postgres")]
async fn until_answered(harness: &Harness, body: &[u8], status: StatusCode) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (got, _) = harness.post(body).await;
        if got == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {status}, last {got}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Calls `store.store` with fresh ids until it fails; that error. Fails the test after
/// `TIMEOUT` (a setting reloaded reaches each connection at its next statement).
#[cfg(feature = "inbox-postgres")]
async fn until_refused(store: &PostgresStore, prefix: &str) -> StoreError {
    let deadline = std::time::Instant::now() + TIMEOUT;
    for n in 0.. {
        if let Err(error) = store.store(new_event(&format!("{prefix}-{n}"))).await {
            return error;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{prefix}: never refused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    unreachable!()
}

#[cfg(feature = "inbox-postgres")]
#[tokio::test]
async fn postgres_crashed_answers_503_and_restarted_loses_nothing_acknowledged() {
    let Some(mut postgres) = PostgresServer::start().await else {
        return;
    };
    let store = pg_store(&postgres).await;
    let harness = Harness::serve(Inbox::new(store), TempDir::new("pg-crash")).await;
    let mut acknowledged = HashSet::new();
    for n in 0..30 {
        let id = format!("before-{n}");
        let (status, _) = harness.post(&event("user.created", &id)).await;
        assert_eq!(status, StatusCode::OK);
        acknowledged.insert(id);
    }
    // A crash: every Postgres process quits at once, no checkpoint.
    postgres.kill();
    for n in 0..3 {
        let (status, body) = harness
            .post(&event("user.created", &format!("down-{n}")))
            .await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "inbox unavailable")
        );
    }
    // The worker starts while Postgres is down: it cannot claim, and waits.
    let (calls, shutdown, task) = harness.worker(3, |_| Ok(()));
    postgres.start_again();
    // The pool reconnects: deliveries are taken again, and the worker resumes.
    until_answered(&harness, &event("user.created", "after"), StatusCode::OK).await;
    acknowledged.insert("after".to_owned());
    let handled = handled_ids(&calls, acknowledged.len(), shutdown, task).await;
    assert_eq!(handled.len(), acknowledged.len(), "each once: {handled:?}");
    assert_eq!(handled.into_iter().collect::<HashSet<_>>(), acknowledged);
    assert_eq!(counts(&harness.inbox).await.done, acknowledged.len() as u64);
}

#[cfg(feature = "inbox-postgres")]
#[tokio::test]
async fn postgres_read_only_or_cancelling_statements_answers_503_and_recovers() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let store = pg_store(&postgres).await;
    let harness = Harness::serve(Inbox::new(store.clone()), TempDir::new("pg-faults")).await;

    // Read-only, as a standby or a failover in progress: every transaction is.
    postgres.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    postgres.psql("SELECT pg_reload_conf()");
    let error = until_refused(&store, "read-only").await;
    assert_eq!(
        (error.kind(), error.to_string().as_str()),
        (StoreErrorKind::Unavailable, "Postgres is read-only")
    );
    until_answered(
        &harness,
        &event("user.created", "read-only"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    // Reading still works.
    assert!(store.counts().await.is_ok());
    postgres.psql("ALTER SYSTEM RESET default_transaction_read_only");
    postgres.psql("SELECT pg_reload_conf()");
    until_answered(&harness, &event("user.created", "writable"), StatusCode::OK).await;

    // A statement that waits past `statement_timeout` (a lock held elsewhere) is cancelled.
    postgres.psql("ALTER SYSTEM SET statement_timeout = '200ms'");
    postgres.psql("SELECT pg_reload_conf()");
    let mut lock = store.pool().begin().await.expect("begin");
    authgear_webhook::sqlx::query("LOCK TABLE authgear_webhook_inbox IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let error = until_refused(&store, "slow").await;
    assert_eq!(
        (error.kind(), error.to_string().as_str()),
        (
            StoreErrorKind::Unavailable,
            "Postgres cancelled the statement (timeout)"
        )
    );
    until_answered(
        &harness,
        &event("user.created", "slow"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    lock.rollback().await.expect("unlock");
    postgres.psql("ALTER SYSTEM RESET statement_timeout");
    postgres.psql("SELECT pg_reload_conf()");
    until_answered(&harness, &event("user.created", "fast"), StatusCode::OK).await;
    let (status, _) = harness.post(&event("user.created", "fast")).await;
    assert_eq!(status, StatusCode::OK, "a duplicate, stored once");
}
