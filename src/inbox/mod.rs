//! A durable inbox for non-blocking events (feature `inbox`; its stores: `inbox-sqlite`,
//! `inbox-redis`, `inbox-postgres`, or your own [`Store`]).
//!
//! Authgear sends each non-blocking event (`user.created`, `identity.email.verified`, ...)
//! once, waits up to 60 s, and never retries. Without an inbox, an event whose handler
//! fails (database down, a deploy restarting the process, a panic, a kill between the 200
//! and the commit) is lost for good. With it:
//!
//! 1. [`VerifySignatureLayer`](crate::VerifySignatureLayer) verifies the signature, and
//!    [`ReplayLayer`](crate::replay::ReplayLayer), where used, refuses replays, as without
//!    the inbox.
//! 2. [`InboxLayer`], inside them, reads `id` and `type` from the verified
//!    [`Envelope`](crate::Envelope). A
//!    **non-blocking** event (any type but the 9 blocking ones, unknown types included) is
//!    stored in the [`Store`], exact signed bytes, and answered 200 only once the store
//!    has synced it; 503 if the store cannot take it (full, unwritable, unreachable, busy),
//!    never 200. The same `id` on the same endpoint is stored once (Authgear's repeated
//!    deliveries and attackers' replays alike) and answered 200 again. **Blocking** events
//!    and bodies that are not events go to the inner service untouched: Authgear waits for
//!    their answer.
//! 3. A [`Worker`] claims stored events and hands each to your [`Handler`] (an async
//!    function taking a [`Delivery`]: the typed [`Event`](crate::event::Event), the
//!    attempt number, the endpoint), at most [`concurrency`](Worker::concurrency) at a
//!    time. Success marks the event done. A failure or a panic is retried after an
//!    exponential [`Backoff`] with jitter (by default 30 attempts over about 4 days);
//!    after the last attempt the event becomes a **dead letter**, kept until re-driven
//!    ([`Inbox::dead_letters`], [`Inbox::redrive`]), never dropped.
//! 4. Handled events are kept for the [`retention`](Worker::retention) (7 days) to
//!    deduplicate late replays, then pruned; [`Inbox::counts`] and [`Inbox::size`] show
//!    where things stand.
//!
//! # Guarantees
//!
//! **At least once.** A 200 means the event is on disk (synced); from then on it is handed
//! to the handler until the handler succeeds or the event is dead-lettered. An event in
//! flight when its process dies is handed over again when its claim expires (30 s after
//! the last heartbeat by default: within a minute); a live worker renews its claim while
//! the handler runs, so a slow handler is not run twice. Exactly once is impossible across a
//! crash between the handler's commit and the inbox's ack, so make the handler idempotent on
//! the event id (e.g. `INSERT ... ON CONFLICT (event_id) DO NOTHING`, in the same
//! transaction as its work).
//!
//! **Exactly-once effects, on Postgres.** With the Postgres store, a handler made with
//! `PostgresStore::transactional` writes in the transaction that marks its event handled:
//! its writes commit with the acknowledgement or not at all, whatever fails (handler, claim,
//! connection, process).
//!
//! **Durability.** [`SqliteStore`] syncs every commit (`fsync`, SQLite WAL with
//! `synchronous=FULL`) before the 200: an acknowledged event survives a crash of the process
//! and of the machine, given a disk that honours `fsync`. A Redis store is as durable as
//! the Redis server: with `appendonly yes` and `appendfsync always`, an acknowledged event
//! survives a crash of Redis; with `appendfsync everysec` (Redis's default), up to about a
//! second of acknowledged events can be lost if the Redis server (or its machine) crashes;
//! without AOF, everything since the last snapshot.
//! The Postgres store commits each delivery with `synchronous_commit = on` before the 200:
//! an acknowledged event survives a crash of Postgres and of its machine (with `fsync` on,
//! Postgres's default).
//!
//! | fault | delivery answer | events already acknowledged |
//! | --- | --- | --- |
//! | store cannot write (disk full, over its size, busy) | 503 | untouched |
//! | process killed after the 200 | (already 200) | handled after restart |
//! | process killed while handling | (already 200) | handled again when the claim expires |
//! | handler error or panic | (already 200) | retried with backoff, then dead letter |
//! | shutdown ([`CancellationToken`]) | new deliveries still answered until the listener closes | in flight ones finish within the grace, or go back to the queue |
//!
//! # Example
//!
//! [`InboxLayer`] goes inside the verifying layer (and inside replay protection, if any):
//! in the order a request takes them. It reads the verified
//! [`Envelope`](crate::Envelope), so it takes any body: with axum, `Router::layer` or
//! `route_layer`, like any tower-http layer. A request without the envelope (the inbox
//! placed outside the verifying layer) is refused with 500
//! ([`RejectionKind::Unverified`](crate::RejectionKind::Unverified)), never stored.
//!
//! ```
//! use std::time::Duration;
//! use authgear_webhook::{inbox::{CancellationToken, Delivery, Inbox, SqliteStore, Worker}, sign, SIGNATURE_HEADER, VerifySignatureLayer};
//! use axum::{body::Body, http::{Request, StatusCode}, routing::post, Router};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("inbox-mod-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3"))?);
//! let app = Router::new()
//!     // Blocking events only: the inbox answers the others.
//!     .route("/", post(|| async { r#"{"is_allowed":true}"# }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(VerifySignatureLayer::new("secret"))
//!             .layer(inbox.layer()),
//!     );
//!
//! let shutdown = CancellationToken::new();
//! let (handled, mut seen) = tokio::sync::mpsc::channel(1);
//! let worker = tokio::spawn(Worker::new(inbox.clone()).run(
//!     move |delivery: Delivery| {
//!         let handled = handled.clone();
//!         async move { handled.send(delivery.event.id).await.map_err(|_| "closed") }
//!     },
//!     shutdown.clone(),
//! ));
//!
//! let body = r#"{"id":"0001","seq":1,"type":"user.created",
//!     "payload":{"user":{"id":"u1","created_at":"2006-01-02T03:04:05Z",
//!         "updated_at":"2006-01-02T03:04:05Z","is_anonymous":false,"is_verified":true,
//!         "is_disabled":false},"identities":[]},
//!     "context":{"timestamp":1764356838}}"#;
//! let delivery = Request::post("/")
//!     .header(SIGNATURE_HEADER, sign("secret", body.as_bytes()))
//!     .body(Body::from(body))?;
//! // 200: stored and synced. The worker then hands it to the handler.
//! assert_eq!(app.oneshot(delivery).await?.status(), StatusCode::OK);
//! # let seen = tokio::time::timeout(Duration::from_secs(10), seen.recv()).await?;
//! # /*
//! let seen = seen.recv().await;
//! # */
//! assert_eq!(seen.as_deref(), Some("0001"));
//!
//! shutdown.cancel();
//! worker.await?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod backoff;
mod future;
mod layer;
#[cfg(feature = "inbox-postgres")]
mod postgres;
#[cfg(feature = "inbox-redis")]
mod redis;
mod redrive;
mod service;
#[cfg(feature = "inbox-sqlite")]
mod sqlite;
mod store;
mod worker;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

#[cfg(feature = "inbox-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox-postgres")))]
pub use self::postgres::{AckTransaction, PostgresBuilder, PostgresStore, Transactional};
#[cfg(feature = "inbox-redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox-redis")))]
pub use self::redis::{RedisBuilder, RedisStore};
#[cfg(feature = "inbox-sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox-sqlite")))]
pub use self::sqlite::{SqliteBuilder, SqliteStore};
pub use self::{
    backoff::Backoff,
    future::{Receipt, ResponseFuture},
    layer::InboxLayer,
    redrive::Redriven,
    service::InboxService,
    store::{
        Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, Store, StoreError,
        StoreErrorKind, StoreFuture, Stored,
    },
    worker::{Delivery, Handler, HandlerFuture, ServiceHandler, Worker},
};
/// The shutdown signal [`Worker::run`] takes (tokio-util's), re-exported.
pub use tokio_util::sync::CancellationToken;

/// A store of events shared by the [`InboxLayer`] that fills it and the [`Worker`]s that
/// empty it. Cheap to clone (one `Arc`).
///
/// ```
/// use authgear_webhook::inbox::{Inbox, SqliteStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("inbox-handle-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3"))?);
/// let counts = inbox.counts().await?;
/// assert_eq!((counts.queued, counts.in_flight, counts.dead), (0, 0, 0));
/// assert!(inbox.size().await? > 0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Inbox {
    shared: Arc<Shared>,
    /// How long each store call of the methods that read and re-drive may take (`None`:
    /// as long as the store takes): the admin service's clone, [`Inbox::bounded`].
    bound: Option<Duration>,
}

struct Shared {
    store: Arc<dyn Store>,
    /// Wakes an idle worker when the layer stored an event.
    wake: Notify,
    /// How many [`Worker::run`] futures of this inbox are live: the readiness check's
    /// "the worker runs" ([`Health`](crate::admin::Health)).
    workers: AtomicUsize,
}

impl Inbox {
    /// An inbox on `store`.
    ///
    /// ```no_run
    /// use authgear_webhook::inbox::{Inbox, SqliteStore};
    ///
    /// let inbox = Inbox::new(SqliteStore::open("inbox.sqlite3")?);
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn new(store: impl Store) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// An inbox on a store already shared.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use authgear_webhook::inbox::{Inbox, SqliteStore, Store};
    ///
    /// let store: Arc<dyn Store> = Arc::new(SqliteStore::open("inbox.sqlite3")?);
    /// let inbox = Inbox::from_arc(store);
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn from_arc(store: Arc<dyn Store>) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                wake: Notify::new(),
                workers: AtomicUsize::new(0),
            }),
            bound: None,
        }
    }

    /// This inbox (the same store, workers and wake-ups), each store call of
    /// [`counts`](Self::counts), [`size`](Self::size), [`dead_letters`](Self::dead_letters)
    /// and the re-drives given up after `bound`: an error of kind
    /// [`StoreErrorKind::Unavailable`], `inbox store did not answer in time`.
    pub(crate) fn bounded(&self, bound: Duration) -> Self {
        Self {
            shared: self.shared.clone(),
            bound: Some(bound),
        }
    }

    /// `call`'s answer, within the [`bound`](Self::bounded) if there is one.
    async fn call<T>(&self, call: StoreFuture<T>) -> Result<T, StoreError> {
        let Some(bound) = self.bound else {
            return call.await;
        };
        tokio::time::timeout(bound, call).await.unwrap_or_else(|_| {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "inbox store did not answer in time",
                None,
            ))
        })
    }

    /// The layer that stores deliveries in this inbox: [`InboxLayer::new`].
    ///
    /// ```no_run
    /// # let inbox = authgear_webhook::inbox::Inbox::new(
    /// #     authgear_webhook::inbox::SqliteStore::open("inbox.sqlite3")?);
    /// let layer = inbox.layer();
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn layer(&self) -> InboxLayer {
        InboxLayer::new(self.clone())
    }

    /// The store.
    ///
    /// ```no_run
    /// # let inbox = authgear_webhook::inbox::Inbox::new(
    /// #     authgear_webhook::inbox::SqliteStore::open("inbox.sqlite3")?);
    /// let store = inbox.store();
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// How many events are queued, in flight, dead, and done (kept for deduplication).
    ///
    /// ```no_run
    /// # async fn f(inbox: authgear_webhook::inbox::Inbox) -> Result<(), authgear_webhook::inbox::StoreError> {
    /// let counts = inbox.counts().await?;
    /// println!("queued {} in flight {} dead {}", counts.queued, counts.in_flight, counts.dead);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer; its [`kind`](StoreError::kind) says
    /// why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: each store call is atomic, so a dropped future leaves the store as it
    /// was or as the call left it.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        self.call(self.shared.store.counts()).await
    }

    /// How many bytes the store takes.
    ///
    /// ```no_run
    /// # async fn f(inbox: authgear_webhook::inbox::Inbox) -> Result<(), authgear_webhook::inbox::StoreError> {
    /// println!("inbox: {} bytes", inbox.size().await?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer; its [`kind`](StoreError::kind) says
    /// why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: each store call is atomic, so a dropped future leaves the store as it
    /// was or as the call left it.
    pub async fn size(&self) -> Result<u64, StoreError> {
        self.call(self.shared.store.size()).await
    }

    /// Up to `max` dead letters, in key order, after `after` (`None` for the first page):
    /// fewer only when no more are left. A store may answer with fewer
    /// ([`Store::dead`]; the Redis store lists at most 1,000 at a time): this asks it again,
    /// after the last one it gave, until it has `max` or the store has none left.
    ///
    /// ```no_run
    /// # async fn f(inbox: authgear_webhook::inbox::Inbox) -> Result<(), authgear_webhook::inbox::StoreError> {
    /// for dead in inbox.dead_letters(None, 100).await? {
    ///     println!("{} {} after {} attempts: {:?}", dead.event_type, dead.key.id, dead.attempts, dead.last_error);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer; its [`kind`](StoreError::kind) says
    /// why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: each store call is atomic, so a dropped future leaves the store as it
    /// was or as the call left it.
    pub async fn dead_letters(
        &self,
        after: Option<EventKey>,
        max: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let (mut after, mut page) = (after, Vec::new());
        while page.len() < max {
            let mut more = self
                .call(self.shared.store.dead(after.take(), max - page.len()))
                .await?;
            more.truncate(max - page.len());
            let Some(last) = more.last() else { break };
            after = Some(last.key.clone());
            page.append(&mut more);
        }
        Ok(page)
    }

    /// Queues the dead letter `key` again, its attempts reset; `false` if it is not a dead
    /// letter.
    ///
    /// ```no_run
    /// # async fn f(inbox: authgear_webhook::inbox::Inbox) -> Result<(), authgear_webhook::inbox::StoreError> {
    /// use authgear_webhook::inbox::EventKey;
    /// let requeued = inbox.redrive(&EventKey::new("/", "0001")).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot answer; its [`kind`](StoreError::kind) says
    /// why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: each store call is atomic, so a dropped future leaves the store as it
    /// was or as the call left it.
    pub async fn redrive(&self, key: &EventKey) -> Result<bool, StoreError> {
        let requeued = self.call(self.shared.store.redrive(key)).await?;
        if requeued {
            tracing::info!(endpoint = %key.endpoint, id = %key.id, "inbox: re-driven");
            crate::metrics::redriven();
            self.shared.wake.notify_one();
        }
        Ok(requeued)
    }

    /// How many workers of this inbox run in this process.
    pub(crate) fn workers(&self) -> usize {
        self.shared.workers.load(Ordering::Relaxed)
    }

    /// Counts a worker as running until the guard is dropped (with its `run` future,
    /// however it ends: returned, dropped, or its task panicked).
    pub(crate) fn worker_running(&self) -> WorkerRunning {
        self.shared.workers.fetch_add(1, Ordering::Relaxed);
        WorkerRunning(self.shared.clone())
    }

    /// Wakes an idle worker: events were stored by other means than the layer.
    #[cfg(feature = "catch-up")]
    pub(crate) fn wake(&self) {
        self.shared.wake.notify_one();
    }
}

/// A running worker, counted until dropped: [`Inbox::worker_running`].
pub(crate) struct WorkerRunning(Arc<Shared>);

impl Drop for WorkerRunning {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}
