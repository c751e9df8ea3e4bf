//! The store contract, written against the `Store` trait and run against every store
//! (SQLite, Redis on a real `redis-server`, Postgres on a real server): what a store must do for the layer and the
//! worker, step by step, and how the worker claims and acks in batches on it.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

#[cfg(feature = "inbox-postgres")]
use super::pg_store;
use super::{counts, eventually, inbox_file, new_event, recovered_event, stop, until_ok};
#[cfg(feature = "inbox-redis")]
use super::{durable_redis, store};
#[cfg(feature = "inbox-postgres")]
use crate::common::PostgresServer;
use crate::common::TempDir;
use authgear_webhook::inbox::{
    Backoff, CancellationToken, Claimed, Counts, DeadLetter, Delivery, EventKey, Failure, Inbox,
    NewEvent, SqliteStore, Store, StoreErrorKind, StoreFuture, Stored, Worker,
};

/// What every [`Store`] must do; `claim_for` short claims are used for the expiry steps.
async fn store_contract(store: Arc<dyn Store>) {
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

/// Recovered events on `store` (which may hold other events, none due): the mark comes back
/// with every claim, through a retry, a release, a dead letter and its re-drive; and a key is
/// stored once whichever way it came, a later copy changing nothing.
async fn recovered_contract(store: Arc<dyn Store>) {
    let long = Duration::from_secs(60);
    let (delivered, recovered) = (new_event("delivered"), recovered_event("recovered"));
    assert_eq!(
        store.store(delivered.clone()).await.expect("store"),
        Stored::Stored
    );
    assert_eq!(
        store.store(recovered.clone()).await.expect("store"),
        Stored::Stored
    );
    // A copy of a stored key, queued, is a duplicate whichever way it came.
    let recovered_copy = |event: &NewEvent| NewEvent {
        body: r#"{"id":"copy"}"#.into(),
        recovered: true,
        ..event.clone()
    };
    let delivered_copy = NewEvent {
        recovered: false,
        ..recovered.clone()
    };
    for copy in [recovered_copy(&delivered), delivered_copy.clone()] {
        assert_eq!(store.store(copy).await.expect("store"), Stored::Duplicate);
    }

    let claims = store.claim(10, long).await.expect("claim");
    let claim = |key: &EventKey| {
        claims
            .iter()
            .find(|c| &c.key == key)
            .expect("claimed")
            .clone()
    };
    assert_eq!(claims.len(), 2);
    let (d1, r1) = (claim(&delivered.key), claim(&recovered.key));
    assert_eq!((d1.recovered, &d1.body), (false, &delivered.body));
    assert_eq!((r1.recovered, &r1.body), (true, &recovered.body));
    // Claimed: still a duplicate.
    for copy in [recovered_copy(&delivered), delivered_copy.clone()] {
        assert_eq!(store.store(copy).await.expect("store"), Stored::Duplicate);
    }

    // The mark outlives a retry, a release, and a dead letter re-driven.
    let delay = Duration::from_millis(100);
    assert!(
        store
            .fail(&r1, Failure::RetryAfter(delay), "down")
            .await
            .expect("fail")
    );
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    let r2 = store
        .claim(10, long)
        .await
        .expect("claim")
        .pop()
        .expect("retried");
    assert_eq!(
        (r2.key.clone(), r2.attempt, r2.recovered),
        (recovered.key.clone(), 2, true)
    );
    assert!(store.release(&r2).await.expect("release"));
    let r2 = store
        .claim(10, long)
        .await
        .expect("claim")
        .pop()
        .expect("released");
    assert_eq!((r2.attempt, r2.recovered), (2, true));
    assert!(store.fail(&r2, Failure::Dead, "down").await.expect("dead"));
    assert!(store.fail(&d1, Failure::Dead, "down").await.expect("dead"));
    // Dead: still a duplicate, and the copy changed nothing (the mark, the body).
    for copy in [recovered_copy(&delivered), delivered_copy.clone()] {
        assert_eq!(store.store(copy).await.expect("store"), Stored::Duplicate);
    }
    assert!(store.redrive(&recovered.key).await.expect("redrive"));
    assert!(store.redrive(&delivered.key).await.expect("redrive"));
    let again = store.claim(10, long).await.expect("claim");
    let mut marks: Vec<_> = again
        .iter()
        .map(|c| (c.key.id.as_str(), c.attempt, c.recovered, c.body.clone()))
        .collect();
    marks.sort_by_key(|mark| mark.0);
    assert_eq!(
        marks,
        [
            ("delivered", 1, false, delivered.body.clone()),
            ("recovered", 1, true, recovered.body.clone()),
        ]
    );
    assert_eq!(store.ack_many(&again).await.expect("ack"), [true, true]);
    // Done: still a duplicate.
    for copy in [recovered_copy(&delivered), delivered_copy] {
        assert_eq!(store.store(copy).await.expect("store"), Stored::Duplicate);
    }
    assert!(store.claim(10, long).await.expect("claim").is_empty());
}

/// [`Store::contains`] on `store` (empty): true from `store` until `prune`, in every state,
/// exactly while `store` would answer [`Stored::Duplicate`].
async fn contains_contract(store: Arc<dyn Store>) {
    let (a, b) = (new_event("contains-a"), new_event("contains-b"));
    let long = Duration::from_secs(60);
    let contains = |key: &EventKey| {
        let (store, key) = (store.clone(), key.clone());
        async move { store.contains(&key).await.expect("contains") }
    };

    assert!(!contains(&a.key).await, "absent");
    assert_eq!(store.store(a.clone()).await.expect("store"), Stored::Stored);
    assert!(contains(&a.key).await, "queued");
    assert!(!contains(&b.key).await, "another id");
    let mut elsewhere = a.key.clone();
    elsewhere.endpoint = "/other".into();
    assert!(!contains(&elsewhere).await, "another endpoint");

    assert_eq!(store.store(b.clone()).await.expect("store"), Stored::Stored);
    let claimed = store.claim(10, long).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    assert!(contains(&a.key).await, "claimed");
    for claim in &claimed {
        if claim.key == a.key {
            assert!(store.ack(claim).await.expect("ack"));
        } else {
            assert!(
                store
                    .fail(claim, Failure::Dead, "gave up")
                    .await
                    .expect("fail")
            );
        }
    }
    assert!(contains(&a.key).await, "done");
    assert!(contains(&b.key).await, "dead");

    let pruned = store
        .prune(SystemTime::now() + Duration::from_secs(1), 100)
        .await
        .expect("prune");
    assert_eq!(pruned, 1);
    assert!(!contains(&a.key).await, "pruned");
    assert!(contains(&b.key).await, "a dead letter is not pruned");
    assert_eq!(store.store(a).await.expect("store"), Stored::Stored);
}

/// The name of the lease and checkpoint [`catch_up_contract`] uses, and the checkpoint it
/// leaves: with a part below the millisecond, which the store cuts.
const CATCH_UP: &str = "catch-up";

fn left_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_460_800_456_999_999)
}

/// The catch-up's lease and checkpoint on `store`: one holder at a time, renewed by it,
/// released, taken over once expired; the checkpoint moved by the holder only, read back to
/// the millisecond. Leaves the checkpoint at [`left_at`] (cut to the millisecond).
async fn catch_up_contract(store: Arc<dyn Store>) {
    let (a, b, long) = ("instance-a", "instance-b", Duration::from_secs(60));
    let ms = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    assert_eq!(store.checkpoint(CATCH_UP).await.expect("checkpoint"), None);

    // One holder at a time; the holder renews.
    assert!(store.lease(CATCH_UP, a, long).await.expect("lease"));
    assert!(!store.lease(CATCH_UP, b, long).await.expect("lease"));
    assert!(store.lease(CATCH_UP, a, long).await.expect("renew"));
    assert!(!store.lease(CATCH_UP, b, long).await.expect("lease"));
    // Another name is another lease, and another checkpoint.
    assert!(store.lease("elsewhere", b, long).await.expect("lease"));

    // Only the holder moves the checkpoint; to the millisecond.
    let first = ms(1_764_460_800_123) + Duration::from_micros(999);
    assert!(!store.set_checkpoint(CATCH_UP, b, first).await.expect("set"));
    assert_eq!(store.checkpoint(CATCH_UP).await.expect("checkpoint"), None);
    assert!(store.set_checkpoint(CATCH_UP, a, first).await.expect("set"));
    assert_eq!(
        store.checkpoint(CATCH_UP).await.expect("checkpoint"),
        Some(ms(1_764_460_800_123))
    );
    assert!(!store.set_checkpoint(CATCH_UP, b, ms(1)).await.expect("set"));
    assert_eq!(
        store.checkpoint(CATCH_UP).await.expect("checkpoint"),
        Some(ms(1_764_460_800_123)),
        "a refused set changes nothing"
    );
    assert_eq!(
        store.checkpoint("elsewhere").await.expect("checkpoint"),
        None
    );

    // Released by its holder only; then another takes it, and the old holder can no
    // longer move the checkpoint.
    store.release_lease(CATCH_UP, b).await.expect("release");
    assert!(
        !store.lease(CATCH_UP, b, long).await.expect("lease"),
        "b does not hold it"
    );
    store.release_lease(CATCH_UP, a).await.expect("release");
    assert!(store.lease(CATCH_UP, b, long).await.expect("lease"));
    assert!(!store.set_checkpoint(CATCH_UP, a, ms(2)).await.expect("set"));
    assert!(!store.lease(CATCH_UP, a, long).await.expect("lease"));
    store.release_lease(CATCH_UP, b).await.expect("release");

    // An expired lease moves nothing, and another holder takes it.
    let short = Duration::from_millis(200);
    assert!(store.lease(CATCH_UP, a, short).await.expect("lease"));
    assert!(!store.lease(CATCH_UP, b, short).await.expect("lease"));
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert!(!store.set_checkpoint(CATCH_UP, a, ms(3)).await.expect("set"));
    assert!(store.lease(CATCH_UP, b, long).await.expect("lease"));
    assert!(!store.lease(CATCH_UP, a, short).await.expect("lease"));

    assert!(
        store
            .set_checkpoint(CATCH_UP, b, left_at())
            .await
            .expect("set")
    );
    assert_eq!(
        store.checkpoint(CATCH_UP).await.expect("checkpoint"),
        Some(ms(1_764_460_800_456))
    );
}

/// After [`catch_up_contract`], on the same data opened again: the checkpoint is kept.
async fn catch_up_kept(store: Arc<dyn Store>) {
    assert_eq!(
        store.checkpoint(CATCH_UP).await.expect("checkpoint"),
        Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_460_800_456))
    );
}

/// A store that counts what the worker asks of it: how many events each `claim` returned
/// and each `ack_many` was given, and how many single `ack`s.
struct Counting {
    inner: Arc<dyn Store>,
    claims: Arc<Mutex<Vec<usize>>>,
    ack_batches: Mutex<Vec<usize>>,
    single_acks: AtomicUsize,
}

impl Counting {
    fn new(inner: Arc<dyn Store>) -> Self {
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
async fn worker_batch_contract(store: Arc<dyn Store>) {
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
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(inbox_file(&dir)).expect("open"));
    store_contract(store.clone()).await;
    recovered_contract(store.clone()).await;
    catch_up_contract(store.clone()).await;
    drop(store);
    // The file's writer lets it go once the last handle is dropped: opened again, as a
    // restart would, once it has.
    let reopened = until_ok("reopen", || async { SqliteStore::open(inbox_file(&dir)) }).await;
    catch_up_kept(Arc::new(reopened)).await;
}

#[tokio::test]
async fn sqlite_store_tells_what_it_holds() {
    let dir = TempDir::new("contains");
    contains_contract(Arc::new(SqliteStore::open(inbox_file(&dir)).expect("open"))).await;
}

#[tokio::test]
async fn sqlite_worker_claims_and_acks_in_batches() {
    let dir = TempDir::new("batch");
    let store = SqliteStore::open(inbox_file(&dir)).expect("open");
    worker_batch_contract(Arc::new(store)).await;
}

#[cfg(feature = "inbox-redis")]
#[tokio::test]
async fn redis_store_keeps_the_contract() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let first: Arc<dyn Store> = Arc::new(store(&redis));
    store_contract(first.clone()).await;
    recovered_contract(first.clone()).await;
    catch_up_contract(first).await;
    catch_up_kept(Arc::new(store(&redis))).await;
}

#[cfg(feature = "inbox-redis")]
#[tokio::test]
async fn redis_store_tells_what_it_holds() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    contains_contract(Arc::new(store(&redis))).await;
}

#[cfg(feature = "inbox-redis")]
#[tokio::test]
async fn redis_worker_claims_and_acks_in_batches() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    worker_batch_contract(Arc::new(store(&redis))).await;
}

#[cfg(feature = "inbox-postgres")]
#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let first: Arc<dyn Store> = Arc::new(pg_store(&postgres).await);
    store_contract(first.clone()).await;
    recovered_contract(first.clone()).await;
    catch_up_contract(first).await;
    catch_up_kept(Arc::new(pg_store(&postgres).await)).await;
}

#[cfg(feature = "inbox-postgres")]
#[tokio::test]
async fn postgres_store_tells_what_it_holds() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    contains_contract(Arc::new(pg_store(&postgres).await)).await;
}

#[cfg(feature = "inbox-postgres")]
#[tokio::test]
async fn postgres_worker_claims_and_acks_in_batches() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    worker_batch_contract(Arc::new(pg_store(&postgres).await)).await;
}

/// A store written before the catch-up and `contains` (its methods left to the defaults)
/// still compiles, and answers them with an error saying so.
#[tokio::test]
async fn a_store_without_catch_up_methods_refuses_them() {
    let dir = TempDir::new("no-catch-up");
    let inner = Arc::new(SqliteStore::open(inbox_file(&dir)).expect("open"));
    let store = Counting::new(inner.clone());
    let errors = [
        store
            .lease(CATCH_UP, "a", Duration::from_secs(60))
            .await
            .err(),
        store.release_lease(CATCH_UP, "a").await.err(),
        store.checkpoint(CATCH_UP).await.err(),
        store
            .set_checkpoint(CATCH_UP, "a", SystemTime::now())
            .await
            .err(),
    ];
    for error in errors {
        let error = error.expect("refused");
        assert_eq!(error.kind(), StoreErrorKind::Unavailable);
        assert_eq!(error.to_string(), "this store keeps no catch-up checkpoint");
    }
    let error = store
        .contains(&EventKey::new("/", "a"))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert_eq!(error.to_string(), "this store cannot tell what it holds");
    // The store it wraps has them.
    assert!(
        inner
            .lease(CATCH_UP, "a", Duration::from_secs(60))
            .await
            .expect("lease")
    );
}
