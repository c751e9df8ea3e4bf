//! Where the inbox keeps events: one interface for the embedded store and Redis.
//!
//! The worker and the layer hold an `Arc<dyn Store>`, so every method returns a boxed
//! future ([`StoreFuture`]), as [`SeenIds`](crate::replay::SeenIds) does.
//!
//! # States of one event
//!
//! ```text
//!  store ──> queued ──claim──> claimed ──ack──> done ──prune (after the retention)──> gone
//!              ^  ^               │ │
//!              │  └─fail(retry)───┘ │ claim deadline passes (worker died): claimable again
//!              │                    └─fail(dead)──> dead
//!              └──────────────redrive───────────────┘
//! ```
//!
//! A claim is held until a deadline (`claim_for` after the claim, moved on by
//! [`extend`](Store::extend)). An event whose claim deadline has passed is claimable again,
//! exactly as a queued event that is due: this is how events in flight in a process that
//! died are handed over. Each claim gets a fresh [`Claimed::token`]; `extend`, `ack`, `fail`
//! and `release` act only while that token still holds the claim (except `ack`, see there).
//!
//! # Crashes
//!
//! Every method is atomic: a crash (of the process or the machine) leaves the store either
//! as it was before the call or as the call left it, never in between. What a crash
//! *between* calls leaves is the point of each method's docs.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

pub use crate::store_error::{StoreError, StoreErrorKind, StoreFuture};

/// Which event: the endpoint it was delivered to, and its `id`.
///
/// Authgear sends the same event, with the same `id`, to every configured URL; the endpoint
/// keeps those deliveries apart (it is the request path unless the layer names it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    /// The endpoint the delivery arrived on.
    pub endpoint: String,
    /// The event's `id`.
    pub id: String,
}

impl EventKey {
    /// The key of event `id` on `endpoint`.
    ///
    /// ```
    /// use authgear_webhook::inbox::EventKey;
    ///
    /// let key = EventKey::new("/hooks/authgear", "0001");
    /// assert_eq!(key.id, "0001");
    /// ```
    pub fn new(endpoint: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            id: id.into(),
        }
    }
}

/// An event to store: a verified delivery (the exact signed bytes and what the inbox read
/// from them), or an event recovered from Authgear's audit log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Endpoint and `id`: the deduplication key.
    pub key: EventKey,
    /// The event's `type`.
    pub event_type: String,
    /// The body exactly as signed by Authgear; for a [`recovered`](Self::recovered) event,
    /// the event's JSON as the audit log gave it.
    pub body: Bytes,
    /// `true`: the event came from Authgear's audit log, not a webhook delivery, and its
    /// `body` is not bytes Authgear signed. Stored with the event and handed back on
    /// [`Claimed::recovered`]; it takes no part in deduplication (a recovered event whose key
    /// is stored already is a [`Stored::Duplicate`], and so is a delivery of a key recovered
    /// already).
    pub recovered: bool,
}

/// What [`Store::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The event is new: it is stored, queued and due now.
    Stored,
    /// An event with this key is already stored (in any state, until pruned): nothing
    /// changed.
    Duplicate,
}

/// An event handed to a worker by [`Store::claim`].
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Endpoint and `id`.
    pub key: EventKey,
    /// The event's `type`.
    pub event_type: String,
    /// The body exactly as stored.
    pub body: Bytes,
    /// Whether the event was stored as [`recovered`](NewEvent::recovered) from the audit
    /// log.
    pub recovered: bool,
    /// Which attempt this is: 1 for the first claim, counting every claim since the event
    /// was stored or last re-driven (a claim that expired because its worker died counts;
    /// a [`release`](Store::release)d one does not).
    pub attempt: u32,
    /// Identifies this claim; opaque to the worker, meaningful to the store that made it.
    pub token: String,
}

/// What to do with an event whose handler failed: [`Store::fail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Queue it again, due after this delay.
    RetryAfter(Duration),
    /// No more attempts: make it a dead letter.
    Dead,
}

/// An event that exhausted its attempts: [`Store::dead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Endpoint and `id`.
    pub key: EventKey,
    /// The event's `type`.
    pub event_type: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// When it became a dead letter.
    pub died_at: SystemTime,
    /// The last failure, as the worker described it (never the body).
    pub last_error: Option<String>,
}

/// How many events are in each state: [`Store::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for a worker: new, or waiting for a retry (due now or later).
    pub queued: u64,
    /// Claimed by a worker (including claims whose deadline has passed and that are
    /// about to be handed over).
    pub in_flight: u64,
    /// Dead letters, until re-driven.
    pub dead: u64,
    /// Handled and kept for deduplication until pruned (a store that deduplicates by
    /// other means may report 0).
    pub done: u64,
}

/// A durable store of events for the inbox: implemented by
/// [`SqliteStore`](super::SqliteStore) (embedded, one file) and, for many instances, by a
/// Redis store and a Postgres store.
///
/// Durable means: once a method's future resolves `Ok`, what it did survives a crash of
/// the process and, for stores that promise it ([`SqliteStore`](super::SqliteStore)
/// always; Redis with `appendfsync always`; Postgres with `fsync` on), of the machine.
///
/// A store error is never a partial success: if a future resolves `Err`, the call either
/// had no effect or (when the store cannot tell, e.g. a connection lost after the write)
/// had its full effect; callers must be right either way, which the inbox is (a `store`
/// error is a 503, and Authgear's delivery is not retried anyway; an `ack` error leaves
/// the event to be handled again).
///
/// Besides the events, a store keeps the catch-up's leases and checkpoints (where the
/// recovery of undelivered events from Authgear's audit log has read up to):
/// [`lease`](Self::lease), [`release_lease`](Self::release_lease),
/// [`checkpoint`](Self::checkpoint), [`set_checkpoint`](Self::set_checkpoint). Methods
/// added to this trait later, those and [`contains`](Self::contains) included, have default
/// implementations: a store of your own written before them still compiles (they resolve
/// to an error).
pub trait Store: Send + Sync + 'static {
    /// Stores `event` durably, queued and due now, unless an event with the same key is
    /// already stored (in any state, `done` included, until [`prune`](Self::prune)d).
    ///
    /// Atomic check-and-insert: of two concurrent calls with one key, one gets
    /// [`Stored::Stored`], the other [`Stored::Duplicate`]. `Ok` only after the event is
    /// synced: the layer answers 200 on it. A crash before `Ok` may or may not leave the
    /// event stored (the delivery was not acknowledged, so either is right).
    ///
    /// Errors when the store cannot take it (full, unwritable, unreachable, too busy): the
    /// layer answers 503.
    fn store(&self, event: NewEvent) -> StoreFuture<Stored>;

    /// Claims up to `max` events that are due (queued with their due time past, or claimed
    /// with their claim deadline past), oldest due first, until `claim_for` from now.
    ///
    /// Each claimed event's attempt count goes up by one, and it gets a fresh token.
    /// Atomic per event: two concurrent claims never get the same event (the first takes
    /// it, its deadline is then in the future). A crash after `Ok` leaves the events
    /// claimed until the deadline, then claimable again: handed over, never lost.
    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>>;

    /// Moves the claim deadline of `claim` to `claim_for` from now, if `claim`'s token
    /// still holds it. Resolves `true` if it did, `false` if the claim was lost (the
    /// deadline passed and another worker claimed the event, or it was acked).
    ///
    /// A worker calls it while its handler runs, well before the deadline, so that a slow
    /// handler is not handed to a second worker.
    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool>;

    /// Marks the event handled (`done`, kept for deduplication until pruned; its body may
    /// be dropped), if it is queued or claimed, whoever holds the claim: a handler
    /// succeeded, so no other attempt is needed. Resolves `false` if it was neither (already
    /// done, dead, or pruned).
    ///
    /// A crash between the handler's success and this call's `Ok` leaves the event claimed:
    /// it is handled again after the deadline (at least once; the handler gets the id and
    /// attempt to be idempotent).
    fn ack(&self, claim: &Claimed) -> StoreFuture<bool>;

    /// [`ack`](Self::ack) for each of `claims`, in one call to the store where it can (one
    /// transaction, one script): the worker acks the events its handlers finished in the
    /// same moment together, so that a fast handler does not cost one store round trip per
    /// event. Resolves to one `bool` per claim, in order, as `ack` would have (a key given
    /// twice: `true` the first time only).
    ///
    /// [`SqliteStore`](super::SqliteStore) does it in one transaction (all or none), the
    /// Redis store in one script per thousand events; the default calls `ack` for each in
    /// turn. So an `Err` may leave the first ones acked and the others not: right for at
    /// least once either way, as an event whose ack failed is handed over again.
    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        let acks: Vec<_> = claims.iter().map(|claim| self.ack(claim)).collect();
        Box::pin(async move {
            let mut acked = Vec::with_capacity(acks.len());
            for ack in acks {
                acked.push(ack.await?);
            }
            Ok(acked)
        })
    }

    /// Records a failed attempt, if `claim`'s token still holds the claim: queued again due
    /// after the delay, or dead. `error` is a short description kept with the event (the
    /// worker never puts the body in it). Resolves `false` if the claim was lost (another
    /// worker has the event now; nothing changed).
    ///
    /// A crash before `Ok` leaves the event claimed: claimable again after the deadline,
    /// as one more attempt.
    fn fail(&self, claim: &Claimed, failure: Failure, error: &str) -> StoreFuture<bool>;

    /// Gives the event back unhandled (shutdown): queued, due now, this claim not counted
    /// as an attempt, if `claim`'s token still holds it. Resolves `false` otherwise.
    ///
    /// A crash before `Ok` leaves it claimed until the deadline (and the attempt counted).
    fn release(&self, claim: &Claimed) -> StoreFuture<bool>;

    /// Up to `max` dead letters in key order (endpoint, then id), from the one after
    /// `after` (the last key of the previous page; `None` for the first page). Fewer than
    /// `max` does not mean none are left (a store may cap its pages): only an empty answer
    /// does. [`Inbox::dead_letters`](super::Inbox::dead_letters) asks again until its page
    /// is full or the store has none left.
    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>>;

    /// Queues the dead letter `key` again, due now, with its attempts reset to 0. Resolves
    /// `false` if `key` is not a dead letter. Atomic.
    fn redrive(&self, key: &EventKey) -> StoreFuture<bool>;

    /// How many events are in each state: a consistent snapshot where the store can take
    /// one, approximate otherwise (documented by the store).
    fn counts(&self) -> StoreFuture<Counts>;

    /// Removes up to `max` `done` events handled before `before` (their deduplication
    /// ends). Resolves to how many were removed: call again while it is `max`. Small
    /// batches keep the store responsive.
    fn prune(&self, before: SystemTime, max: usize) -> StoreFuture<u64>;

    /// How many bytes the store takes (on disk for the embedded store, in memory for
    /// Redis), for monitoring and for its bound.
    fn size(&self) -> StoreFuture<u64>;

    /// Whether an event with `key` is stored, in any state (`done` and dead included),
    /// until [`prune`](Self::prune)d: exactly when [`store`](Self::store) would answer
    /// [`Stored::Duplicate`]. A snapshot: a concurrent `store` or `prune` may change it
    /// right after.
    ///
    /// For tools that ask what the inbox is missing without storing anything (the
    /// catch-up's dry run). The default, for stores written before it existed, resolves to
    /// an error of kind [`StoreErrorKind::Unavailable`], "this store cannot tell what it
    /// holds"; the crate's stores implement it, in one round trip.
    ///
    /// ```
    /// use authgear_webhook::inbox::{EventKey, NewEvent, SqliteStore, Store};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("inbox-contains-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = SqliteStore::open(dir.join("inbox.sqlite3"))?;
    /// let key = EventKey::new("/", "0001");
    /// assert!(!store.contains(&key).await?);
    /// store
    ///     .store(NewEvent {
    ///         key: key.clone(),
    ///         event_type: "user.created".into(),
    ///         body: "{}".into(),
    ///         recovered: false,
    ///     })
    ///     .await?;
    /// assert!(store.contains(&key).await?);
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    fn contains(&self, key: &EventKey) -> StoreFuture<bool> {
        let _ = key;
        Box::pin(std::future::ready(Err(StoreError::new(
            StoreErrorKind::Unavailable,
            "this store cannot tell what it holds",
            None,
        ))))
    }

    /// Takes or renews the lease `name` for `holder` until `ttl` from now (the store's
    /// clock where it has one: Redis's, Postgres's; the process's for
    /// [`SqliteStore`](super::SqliteStore)). Resolves `true` if `holder` holds it now,
    /// `false` if another holder's lease has not expired (nothing changed).
    ///
    /// Atomic: of two holders asking at once, one gets it. So that one catch-up pass runs
    /// at a time across the instances sharing the store: a pass takes the lease, renews it
    /// well before `ttl` runs out, moves the checkpoint with
    /// [`set_checkpoint`](Self::set_checkpoint) and [`release_lease`](Self::release_lease)s
    /// it at the end. A holder that dies keeps it until `ttl` has passed.
    ///
    /// The default, for stores written before leases existed, resolves to an error of kind
    /// [`StoreErrorKind::Unavailable`], "this store keeps no catch-up checkpoint"; the
    /// crate's stores implement it.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use authgear_webhook::inbox::{SqliteStore, Store};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("inbox-lease-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = SqliteStore::open(dir.join("inbox.sqlite3"))?;
    /// let ttl = Duration::from_secs(60);
    /// assert!(store.lease("catch-up", "instance-a", ttl).await?);
    /// assert!(!store.lease("catch-up", "instance-b", ttl).await?, "a holds it");
    ///
    /// // Only the holder moves the checkpoint.
    /// let read_up_to = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_460_800_123);
    /// assert!(!store.set_checkpoint("catch-up", "instance-b", read_up_to).await?);
    /// assert!(store.set_checkpoint("catch-up", "instance-a", read_up_to).await?);
    /// assert_eq!(store.checkpoint("catch-up").await?, Some(read_up_to));
    ///
    /// store.release_lease("catch-up", "instance-a").await?;
    /// assert!(store.lease("catch-up", "instance-b", ttl).await?);
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreFuture<bool> {
        let _ = (name, holder, ttl);
        no_catch_up()
    }

    /// Gives up the lease `name` if `holder` holds it (expired or not); nothing otherwise.
    ///
    /// The default resolves to an error, as [`lease`](Self::lease)'s.
    fn release_lease(&self, name: &str, holder: &str) -> StoreFuture<()> {
        let _ = (name, holder);
        no_catch_up()
    }

    /// The checkpoint `name`: where the catch-up has read the audit log up to; `None`
    /// before it was first set. Durable as the store's events are.
    ///
    /// Milliseconds since the Unix epoch: the time [`set_checkpoint`](Self::set_checkpoint)
    /// was given, cut to the millisecond (a time before the epoch reads back as the epoch).
    ///
    /// The default resolves to an error, as [`lease`](Self::lease)'s.
    fn checkpoint(&self, name: &str) -> StoreFuture<Option<SystemTime>> {
        let _ = name;
        no_catch_up()
    }

    /// Sets the checkpoint `name` to `at` (cut to the millisecond) if `holder` holds the
    /// lease `name`, unexpired: resolves `true` if it did, `false` (nothing changed)
    /// otherwise, so that an instance whose lease expired never moves the checkpoint
    /// another instance now owns. Atomic with the check of the lease.
    ///
    /// The default resolves to an error, as [`lease`](Self::lease)'s.
    fn set_checkpoint(&self, name: &str, holder: &str, at: SystemTime) -> StoreFuture<bool> {
        let _ = (name, holder, at);
        no_catch_up()
    }

    /// Whether the store can take a write now: a small durable write, answered as the
    /// store answers its others (down, unreachable, read-only, disk full: an error).
    /// [`Health`](crate::admin::Health) calls it on every readiness check.
    ///
    /// The default renews a lease of its own, `health probe`, for one second with
    /// [`lease`](Self::lease): a real write, synced like an event, on every store that keeps
    /// leases, and one that never delays the catch-up's (another name). Every instance
    /// writes it as the same holder, so it always writes. A store without leases fails it,
    /// and is never ready: implement `probe` there. What each store of this crate checks:
    ///
    /// - [`SqliteStore`](super::SqliteStore): the default's write, and room: it fails with
    ///   [`StoreErrorKind::Full`] once its file is at its
    ///   [`max_size`](super::SqliteBuilder::max_size) with no free page left.
    /// - [`RedisStore`](super::RedisStore): a write of its own, refused as a new event is
    ///   (out of memory at Redis's `maxmemory`: `Full`; read-only, cannot persist:
    ///   `Unavailable`), and room: `Full` once less is left under its
    ///   [`max_size`](super::RedisBuilder::max_size) than the least event counts for.
    /// - [`PostgresStore`](super::PostgresStore): the default's write; it has no size
    ///   bound of its own to check.
    ///
    /// ```
    /// use authgear_webhook::inbox::{SqliteStore, Store};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("inbox-probe-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = SqliteStore::open(dir.join("inbox.sqlite3"))?;
    /// store.probe().await?;
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    fn probe(&self) -> StoreFuture<()> {
        let lease = self.lease(PROBE, PROBE, Duration::from_secs(1));
        Box::pin(async move { lease.await.map(drop) })
    }
}

/// The lease [`Store::probe`] writes by default (and its holder): a name no catch-up
/// takes (theirs start with `catch-up `).
pub(super) const PROBE: &str = "health probe";

/// What the catch-up methods of a store without leases and checkpoints resolve to.
fn no_catch_up<T: Send + 'static>() -> StoreFuture<T> {
    Box::pin(std::future::ready(Err(StoreError::new(
        StoreErrorKind::Unavailable,
        "this store keeps no catch-up checkpoint",
        None,
    ))))
}

/// Milliseconds since the Unix epoch of a checkpoint: cut to the millisecond, the epoch for
/// an earlier time, `i64::MAX` for a later one than that holds.
#[cfg_attr(
    not(any(
        feature = "inbox-sqlite",
        feature = "inbox-redis",
        feature = "inbox-postgres"
    )),
    allow(dead_code)
)]
pub(super) fn checkpoint_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The checkpoint [`checkpoint_ms`] made.
#[cfg_attr(
    not(any(
        feature = "inbox-sqlite",
        feature = "inbox-redis",
        feature = "inbox-postgres"
    )),
    allow(dead_code)
)]
pub(super) fn checkpoint_at(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
