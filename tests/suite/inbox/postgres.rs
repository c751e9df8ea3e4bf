//! What only the Postgres store does, on real servers: its tables migrated once when
//! instances start together, in the schema and with the prefix chosen, and refused when a
//! newer release wrote them; two instances share one queue and take over a dead one's
//! claims; a delivery commits with `synchronous_commit = on` whatever the server's
//! setting; a transactional handler's writes commit with its event's acknowledgement or
//! not at all (handler error, panic, claim lost, future dropped, connection killed).

use std::{collections::HashSet, sync::Arc, time::Duration};

use super::{counts, eventually, new_event, pg_pool, pg_store, stop};
use crate::common::{PostgresServer, TIMEOUT};
use authgear_webhook::{
    inbox::{
        AckTransaction, Backoff, CancellationToken, Delivery, Inbox, NewEvent, PostgresStore,
        Store, StoreErrorKind, Stored, Worker,
    },
    sqlx::{self, PgPool},
};
use tokio::sync::{Notify, mpsc};

#[tokio::test]
async fn instances_starting_together_migrate_once_in_their_own_schema_and_prefix() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let pool = pg_pool(&postgres).await;
    let builder = || {
        PostgresStore::builder(pool.clone())
            .schema("hooks")
            .table_prefix("billing_")
    };
    // Eight at once, each on a connection of its own; spawned (`open` is `Send`).
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..8 {
        opens.spawn(builder().open());
    }
    let mut stores = Vec::new();
    while let Some(opened) = opens.join_next().await {
        stores.push(opened.expect("ran").expect("open"));
    }
    assert_eq!(
        postgres.psql("SELECT store, version FROM hooks.billing_versions"),
        "inbox|1"
    );
    assert_eq!(
        postgres.psql(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables
             WHERE schemaname = 'hooks'"
        ),
        "billing_catchup,billing_inbox,billing_versions"
    );
    let hooks = stores.pop().expect("a store");
    assert_eq!(hooks.table(), "hooks.billing_inbox");
    assert!(format!("{hooks:?}").contains("hooks"));

    // Another schema and prefix is another inbox, in the same database.
    let default = PostgresStore::open(pool.clone()).await.expect("open");
    assert_eq!(default.table(), "public.authgear_webhook_inbox");
    let event = new_event("one");
    assert_eq!(
        hooks.store(event.clone()).await.expect("store"),
        Stored::Stored
    );
    assert_eq!(default.store(event).await.expect("store"), Stored::Stored);
    assert_eq!(counts(&Inbox::new(hooks.clone())).await.queued, 1);

    // Names that are not plain lower-case identifiers are refused before anything is sent.
    for (schema, prefix) in [
        ("Hooks", "p_"),
        ("hooks", "x\"; DROP TABLE t; --"),
        ("", ""),
    ] {
        let error = PostgresStore::builder(pool.clone())
            .schema(schema)
            .table_prefix(prefix)
            .open()
            .await
            .expect_err("invalid names");
        assert_eq!(error.to_string(), "invalid Postgres schema or table prefix");
    }

    // Tables a later release wrote are refused, and left as they are.
    postgres.psql("UPDATE hooks.billing_versions SET version = 2");
    let error = builder().open().await.expect_err("a newer version");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert_eq!(
        error.to_string(),
        "inbox tables were written by a newer version of authgear-webhook"
    );
    assert_eq!(
        postgres.psql("SELECT version FROM hooks.billing_versions"),
        "2"
    );
    assert_eq!(
        postgres.psql("SELECT count(*) FROM hooks.billing_inbox"),
        "1"
    );
}

#[tokio::test]
async fn two_instances_share_one_queue_and_take_over_a_dead_one_s_claims() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    // Two processes: two pools.
    let (a, b) = (pg_store(&postgres).await, pg_store(&postgres).await);
    const N: usize = 200;
    for n in 0..N {
        let store = if n % 2 == 0 { &a } else { &b };
        let stored = store
            .store(new_event(&format!("e{n}")))
            .await
            .expect("store");
        assert_eq!(stored, Stored::Stored);
    }
    // Both claim at the same time, in small batches: every event goes to exactly one.
    let long = Duration::from_secs(60);
    let drain = |store: PostgresStore| async move {
        let mut ids = Vec::new();
        loop {
            let batch = store.claim(7, long).await.expect("claim");
            if batch.is_empty() {
                return ids;
            }
            assert!(batch.iter().all(|claim| claim.attempt == 1));
            let acked = store.ack_many(&batch).await.expect("ack");
            assert!(acked.iter().all(|&acked| acked));
            ids.extend(batch.into_iter().map(|claim| claim.key.id));
        }
    };
    let (from_a, from_b) = tokio::join!(drain(a.clone()), drain(b.clone()));
    let all: HashSet<&String> = from_a.iter().chain(&from_b).collect();
    assert_eq!(from_a.len() + from_b.len(), N, "each claimed once");
    assert_eq!(all.len(), N);
    eprintln!("a took {}, b took {}", from_a.len(), from_b.len());

    // An instance that dies holding claims: the other takes them over once they expire,
    // as the next attempt, with the exact bytes.
    let dying = pg_store(&postgres).await;
    // Kept to compare bytes: an event made again later may carry a later timestamp.
    let orphans: Vec<NewEvent> = (0..3).map(|n| new_event(&format!("orphan{n}"))).collect();
    for orphan in &orphans {
        dying.store(orphan.clone()).await.expect("store");
    }
    let short = Duration::from_millis(300);
    assert_eq!(dying.claim(10, short).await.expect("claim").len(), 3);
    dying.pool().close().await;
    drop(dying);
    assert!(
        b.claim(10, long).await.expect("claim").is_empty(),
        "not yet"
    );
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    let taken = b.claim(10, long).await.expect("claim");
    let mut ids: Vec<&str> = taken.iter().map(|c| c.key.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["orphan0", "orphan1", "orphan2"]);
    assert!(taken.iter().all(|c| c.attempt == 2));
    for claim in &taken {
        let orphan = orphans.iter().find(|orphan| orphan.key == claim.key);
        assert_eq!(Some(&claim.body), orphan.map(|orphan| &orphan.body));
    }
}

/// `store` commits with `synchronous_commit = on` whatever the server's setting: on a
/// server whose default is `off`, with a synchronous standby named that never connects, a
/// commit with `on` (which flushes the WAL first) waits for that standby, and one with the
/// server's `off` does not. So the store's delivery waits, while a plain insert on the same
/// pool returns at once; the delivery is acknowledged once the standby is no longer
/// required.
#[tokio::test]
async fn store_commits_synchronously_whatever_the_server_s_setting() {
    let Some(mut postgres) = PostgresServer::start().await else {
        return;
    };
    // Set before the server starts, so every process has it from its first command.
    postgres.psql("ALTER SYSTEM SET synchronous_commit = off");
    postgres.psql("ALTER SYSTEM SET synchronous_standby_names = 'never_connects'");
    postgres.stop();
    postgres.start_again();
    let pool = pg_pool(&postgres).await;
    let store = PostgresStore::builder(pool.clone())
        .timeout(Duration::from_secs(60))
        .open()
        .await
        .expect("open");

    // The server's own setting: a commit does not wait for the standby.
    sqlx::query("CREATE TABLE plain (n int)")
        .execute(&pool)
        .await
        .expect("create");
    let plain = sqlx::query("INSERT INTO plain VALUES (1)").execute(&pool);
    tokio::time::timeout(TIMEOUT, plain)
        .await
        .expect("a commit with the server's setting returns at once")
        .expect("insert");

    // The store's: the commit waits for the standby, after its own WAL flush.
    let stored = tokio::spawn({
        let store = store.clone();
        async move { store.store(new_event("durable")).await }
    });
    eventually("the delivery's commit to wait for the standby", || async {
        postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == "1"
    })
    .await;
    assert!(!stored.is_finished(), "not acknowledged while it waits");

    // No standby required any more: the waiting commit completes.
    postgres.psql("ALTER SYSTEM RESET synchronous_standby_names");
    postgres.psql("SELECT pg_reload_conf()");
    let stored = tokio::time::timeout(TIMEOUT, stored)
        .await
        .expect("acknowledged once the standby is not required")
        .expect("ran")
        .expect("store");
    assert_eq!(stored, Stored::Stored);
    assert_eq!(
        postgres.psql("SELECT count(*) FROM authgear_webhook_inbox WHERE id = 'durable'"),
        "1"
    );
}

/// A table for the handlers' writes, as an application's: no unique constraint, so a
/// write committed twice shows twice.
async fn handled_table(pool: &PgPool) {
    sqlx::raw_sql("CREATE TABLE handled (event_id text NOT NULL, attempt integer NOT NULL)")
        .execute(pool)
        .await
        .expect("create table");
}

/// Every committed write: (event id, attempt), in order.
async fn handled(pool: &PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT event_id, attempt FROM handled ORDER BY event_id, attempt")
        .fetch_all(pool)
        .await
        .expect("select")
}

/// The handler's write, in its transaction.
async fn record(tx: &mut AckTransaction, delivery: &Delivery) -> Result<(), String> {
    sqlx::query("INSERT INTO handled (event_id, attempt) VALUES ($1, $2)")
        .bind(&delivery.event.id)
        .bind(i32::try_from(delivery.attempt).expect("small"))
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A worker with a short schedule (50 ms, no jitter, 5 attempts) that polls often.
fn worker(store: &PostgresStore) -> Worker {
    Worker::new(Inbox::new(store.clone()))
        .backoff(
            Backoff::new(Duration::from_millis(50), Duration::from_secs(1))
                .attempts(5)
                .jitter(0.0),
        )
        .poll(Duration::from_millis(20))
}

#[tokio::test]
async fn a_transactional_handler_s_writes_commit_with_the_ack_exactly_once() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let store = pg_store(&postgres).await;
    let pool = store.pool().clone();
    handled_table(&pool).await;
    let ids: Vec<String> = (0..40).map(|n| format!("e{n:02}")).collect();
    for id in &ids {
        store.store(new_event(id)).await.expect("store");
    }
    // Each writes, then: e07 fails its first attempt, e08 panics in its first attempt.
    let handler = store.transactional(|mut tx: AckTransaction, delivery: Delivery| async move {
        record(&mut tx, &delivery).await?;
        match (delivery.event.id.as_str(), delivery.attempt) {
            ("e07", 1) => Err("downstream down".to_owned()),
            ("e08", 1) => panic!("the handler panics after its write"),
            _ => Ok(tx),
        }
    });
    let inbox = Inbox::new(store.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker(&store).concurrency(8).run(handler, shutdown.clone()));
    eventually("every event handled", || async {
        counts(&inbox).await.done == ids.len() as u64
    })
    .await;
    stop(shutdown, task).await;

    // One write per event, none from a failed attempt.
    let expected: Vec<(String, i32)> = ids
        .iter()
        .map(|id| (id.clone(), if id == "e07" || id == "e08" { 2 } else { 1 }))
        .collect();
    assert_eq!(handled(&pool).await, expected);
    let counts = counts(&inbox).await;
    assert_eq!((counts.queued, counts.in_flight, counts.dead), (0, 0, 0));
}

#[tokio::test]
async fn a_transactional_handler_whose_claim_was_taken_over_commits_nothing() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let store = pg_store(&postgres).await;
    let pool = store.pool().clone();
    handled_table(&pool).await;
    store.store(new_event("lost")).await.expect("store");
    let (inside, mut entered) = mpsc::channel(1);
    let go = Arc::new(Notify::new());
    let resume = go.clone();
    let handler = store.transactional(move |mut tx: AckTransaction, delivery: Delivery| {
        let (inside, resume) = (inside.clone(), resume.clone());
        async move {
            record(&mut tx, &delivery).await?;
            inside.send(()).await.map_err(|e| e.to_string())?;
            resume.notified().await;
            Ok::<_, String>(tx)
        }
    });
    // One slot, taken by the handler: this worker claims nothing more meanwhile.
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker(&store).concurrency(1).run(handler, shutdown.clone()));
    tokio::time::timeout(TIMEOUT, entered.recv())
        .await
        .expect("the handler runs");

    // Its claim passes its deadline (as when this worker's heartbeats stop reaching
    // Postgres) and another instance claims the event.
    postgres.psql("UPDATE authgear_webhook_inbox SET due_at = now() - interval '1 second'");
    let other = pg_store(&postgres).await;
    let taken = other
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim")
        .pop()
        .expect("taken over");
    assert_eq!(taken.attempt, 2);
    // The first handler gives its transaction back: the ack finds the claim gone, and
    // its write is rolled back with it.
    go.notify_one();
    stop(shutdown, task).await;
    assert_eq!(handled(&pool).await, []);
    let counts = counts(&Inbox::new(other.clone())).await;
    assert_eq!((counts.in_flight, counts.done), (1, 0), "the other's claim");
    assert!(other.ack(&taken).await.expect("ack"));
}

#[tokio::test]
async fn a_transactional_handler_dropped_or_cut_off_midway_commits_nothing() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let store = pg_store(&postgres).await;
    let pool = store.pool().clone();
    handled_table(&pool).await;

    // Dropped: a shutdown with no grace drops the handler after its write.
    store.store(new_event("dropped")).await.expect("store");
    let (inside, mut entered) = mpsc::channel(1);
    let handler = store.transactional(move |mut tx: AckTransaction, delivery: Delivery| {
        let inside = inside.clone();
        async move {
            record(&mut tx, &delivery).await?;
            inside.send(()).await.map_err(|e| e.to_string())?;
            std::future::pending::<()>().await;
            Ok::<_, String>(tx)
        }
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        worker(&store)
            .grace(Duration::ZERO)
            .run(handler, shutdown.clone()),
    );
    tokio::time::timeout(TIMEOUT, entered.recv())
        .await
        .expect("the handler runs");
    stop(shutdown, task).await;
    // Given back, not handled, nothing committed.
    assert_eq!(counts(&Inbox::new(store.clone())).await.queued, 1);
    assert_eq!(handled(&pool).await, []);

    // Cut off: the handler's connection is killed after its write (a crash of its process,
    // as Postgres sees it); the next attempt writes and commits once.
    store.store(new_event("cut")).await.expect("store");
    let (pids, mut pid) = mpsc::channel(1);
    let go = Arc::new(Notify::new());
    let resume = go.clone();
    let handler = store.transactional(move |mut tx: AckTransaction, delivery: Delivery| {
        let (pids, resume) = (pids.clone(), resume.clone());
        async move {
            record(&mut tx, &delivery).await?;
            if (delivery.event.id.as_str(), delivery.attempt) == ("cut", 1) {
                let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                pids.send(backend).await.map_err(|e| e.to_string())?;
                resume.notified().await;
            }
            Ok::<_, String>(tx)
        }
    });
    let inbox = Inbox::new(store.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker(&store).run(handler, shutdown.clone()));
    let backend = tokio::time::timeout(TIMEOUT, pid.recv())
        .await
        .expect("the handler runs")
        .expect("a pid");
    assert_eq!(
        postgres.psql(&format!("SELECT pg_terminate_backend({backend})")),
        "t"
    );
    go.notify_one();
    eventually("both handled", || async { counts(&inbox).await.done == 2 }).await;
    stop(shutdown, task).await;
    assert_eq!(
        handled(&pool).await,
        [("cut".to_owned(), 2), ("dropped".to_owned(), 1)]
    );
}
