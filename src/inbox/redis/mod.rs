//! The shared store: Redis Streams and a consumer group, for many instances.
//!
//! [`RedisStore`] and [`RedisBuilder`] here; the keys and how an event is named in them in
//! `keys.rs`; the Lua scripts in `lua/`, each bound by one typed function in `scripts.rs`;
//! the [`Store`] methods, each one script, in `store_impl.rs`.

mod keys;
mod scripts;
mod store_impl;

use std::{fmt, sync::Arc, time::Duration};

use redis::{
    Client, IntoConnectionInfo,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use self::{keys::Keys, scripts::Scripts};
// For the docs' links: the store's methods are implemented in `store_impl.rs`.
#[cfg(doc)]
use super::store::Store;
use super::store::{StoreError, StoreErrorKind};

/// The embedded store's alternative for many instances: one queue in Redis that every
/// instance fills and empties, so each event is handled by one of them.
///
/// # Durability: configure Redis for it
///
/// A 200 means Redis has applied the write and answered. Whether the event survives a
/// crash of Redis depends on Redis's persistence settings, not on this crate:
///
/// | Redis setting | what a crash of Redis (or its machine) can lose |
/// | --- | --- |
/// | `appendonly yes`, `appendfsync always` | nothing acknowledged: each write is in the AOF, synced, before Redis answers |
/// | `appendonly yes`, `appendfsync everysec` (Redis's default) | up to about one second of acknowledged events |
/// | RDB snapshots only (`appendonly no`) | everything since the last snapshot: not durable |
///
/// So for "acknowledged = not lost", run Redis with `appendonly yes` and `appendfsync
/// always`. Redis batches the syncs of all the writes it handles in one turn of its event
/// loop, so concurrent deliveries share one `fsync` (group commit, as the embedded store
/// does). Also set `maxmemory-policy noeviction`: any eviction policy may delete queued
/// events under memory pressure; with `noeviction` a full Redis refuses new events (503)
/// instead. Replication is asynchronous: a replica promoted after its primary crashed may
/// lack the last acknowledged events.
///
/// Requires Redis 7.0 or later (script flags, `XAUTOCLAIM`).
///
/// # Faults
///
/// Every call has a one-second [`timeout`](RedisBuilder::timeout) (connecting and
/// answering, as the Redis replay store). Redis unreachable or slow, read-only (`-READONLY`, a replica), unable to persist
/// (`-MISCONF`, e.g. its disk is full for the AOF or RDB) is
/// [`StoreErrorKind::Unavailable`]; out of memory (`-OOM`) or over this store's
/// [`max_size`](RedisBuilder::max_size) is [`StoreErrorKind::Full`]: the layer answers
/// 503, the worker backs off, and [`probe`](Store::probe) (the readiness check) fails
/// alike. The connection is remade in the background; when Redis is
/// back, the store works again. Scripts run whole or not at all (Redis refuses a writing
/// script up front when it cannot write), and an AOF cut by a crash is loaded without its
/// torn last script.
///
/// # Layout
///
/// All keys start with `{prefix}:v2:` (default prefix `{authgear-webhook:inbox}`; the
/// braces put them in one Cluster hash slot, which the scripts need). The layout keeps the
/// work Redis does per event small: storing an event is one script of four commands, and
/// claiming and acking a batch of events costs a few commands for the whole batch, none
/// per event.
///
/// - `stream`: the queue, read by the consumer group `workers`. Each entry holds one whole
///   event (key, type, body, attempts before this entry, and a mark if it was recovered
///   from Authgear's audit log), so a claim reads the events
///   with the entries. One group for all endpoints: every worker handles every endpoint,
///   so one stream is one read per claim however many endpoints there are. An entry's
///   place in the group's pending list is its claim. A handled or failed event's entry is
///   acked and deleted at once, so the stream holds only queued and claimed events.
/// - `seen`: a hash with a field per stored event, the deduplication record: stored once,
///   kept in every state until [`prune`](Store::prune)d after it was handled (its value
///   names the event's latest stream entry when it was queued again). It has no expiry: an
///   expiry would end the deduplication of an event still queued or dead (dead letters are
///   kept until re-driven), and a replay would then be stored twice.
/// - `retry`: failed events by due time (a sorted set); `claim` moves the due ones back to
///   the stream in the same script, so no mover task or lock is needed. `dead`: dead
///   letters, in key order (a sorted set read by `ZRANGEBYLEX`), so that they can be listed
///   page by page and re-driven one by one. While an event waits in either, its type,
///   body, attempts, last error and recovered mark are in a hash `p:{endpoint}\0\0{id}`.
/// - `done`: handled events in the order they were handled (a list of `time:key`), for
///   [`prune`](Store::prune).
/// - `lease:{name}`: the catch-up's lease `name` ([`lease`](Store::lease)), its holder,
///   expiring with the lease (`PX`, Redis's clock); `checkpoints`: a hash of the catch-up's
///   checkpoints, name to Unix ms ([`checkpoint`](Store::checkpoint)), kept as the events
///   are (no expiry).
/// - `probe`: written by each [`probe`](Store::probe) (the readiness check), expiring a
///   second later.
/// - `bytes`: the size estimate; `next`: when a claim deadline may next pass; `cursor`:
///   where `XAUTOCLAIM` goes on; `cleanup`: a short lock so that one instance at a time
///   removes leftover consumers.
///
/// The inbox of version 0.1.0 kept its events in other keys (`{prefix}:stream`, `retry`,
/// `dead`), which this store neither reads nor writes. While they hold events, every
/// [`claim`](Store::claim) fails (the worker logs it and retries): drain them with 0.1.0
/// first, so that no event acknowledged by it is left unhandled (CHANGELOG.md).
///
/// # Claims
///
/// Each `RedisStore` is one consumer of the group, with a unique name. A claim is
/// `XREADGROUP` (new entries), after the due retries and, when a claim deadline may have
/// passed, `XAUTOCLAIM` (entries whose deadline passed: a dead instance's; looked for at
/// least once a second while instances claim). A claim's deadline is the entry's delivery
/// time (`XCLAIM ... TIME ... JUSTID`), which [`extend`](Store::extend) moves on. The
/// attempt is the entry's attempts before it plus its delivery count in the group, and the
/// token names the entry and that count: both in Redis, not in memory, exactly as the
/// [`Store`] docs say. Consumers of instances that are gone, with nothing pending, are
/// removed once idle for [`idle_consumers`](RedisBuilder::idle_consumers). Handled events
/// are kept in `seen` until the [`Worker`](super::Worker) prunes them, after its
/// [`retention`](super::Worker::retention).
///
/// Times (due, deadlines, handled) are Redis's clock, one for all instances; only
/// [`prune`](Store::prune)'s `before` comes from the caller's.
///
/// [`counts`](Store::counts) is a consistent snapshot (one script). [`size`](Store::size)
/// is an estimate: the bytes of the bodies, types and keys stored, plus a fixed overhead
/// per event.
///
/// ```no_run
/// use authgear_webhook::inbox::{Inbox, RedisStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let inbox = Inbox::new(RedisStore::open("redis://127.0.0.1:6379")?);
/// println!("{:?}", inbox.counts().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    shared: Arc<Shared>,
}

/// Settings for [`RedisStore`]: [`RedisStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisBuilder {
    prefix: String,
    max_size: u64,
    idle_consumers: Duration,
    timeout: Duration,
}

/// What the clones of a store share.
struct Shared {
    keys: Keys,
    consumer: String,
    max_size: u64,
    idle_consumers: Duration,
    scripts: Scripts,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://host:port/db`), with the default settings,
    /// connected lazily. Must be called within a Tokio runtime. Fails only if the URL is
    /// invalid.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authgear_webhook::inbox::StoreError> {
    /// let store = authgear_webhook::inbox::RedisStore::open("redis://127.0.0.1:6379")?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`RedisBuilder::open`].
    pub fn open(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::builder().open(url)
    }

    /// Settings for a store.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authgear_webhook::inbox::StoreError> {
    /// let store = authgear_webhook::inbox::RedisStore::builder()
    ///     .prefix("billing-inbox")
    ///     .max_size(256 << 20)
    ///     .open("redis://127.0.0.1:6379")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> RedisBuilder {
        RedisBuilder {
            prefix: "authgear-webhook:inbox".to_owned(),
            max_size: 1 << 30,
            idle_consumers: Duration::from_secs(600),
            timeout: Duration::from_secs(1),
        }
    }

    /// This store's consumer name in the group (unique per store).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authgear_webhook::inbox::StoreError> {
    /// let store = authgear_webhook::inbox::RedisStore::open("redis://127.0.0.1:6379")?;
    /// println!("consumer {}", store.consumer());
    /// # Ok(())
    /// # }
    /// ```
    pub fn consumer(&self) -> &str {
        &self.shared.consumer
    }
}

impl RedisBuilder {
    /// The start of every key (default `authgear-webhook:inbox`), put in braces (one hash
    /// slot). Stores with different prefixes are independent queues on one Redis.
    ///
    /// ```
    /// let builder = authgear_webhook::inbox::RedisStore::builder().prefix("staging-inbox");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most the store may hold (default 1 GiB, counted as [`size`](Store::size)
    /// counts). Past it, new events are refused ([`StoreErrorKind::Full`], 503) while
    /// acks, failures and pruning go on; [`probe`](Store::probe) fails once even the
    /// least event (an empty key, type and body) would be. Redis's own `maxmemory` (with `noeviction`) is
    /// the hard bound.
    ///
    /// ```
    /// let builder = authgear_webhook::inbox::RedisStore::builder().max_size(64 << 20);
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// How long a consumer with nothing pending may stay idle before it is removed from
    /// the group (default 10 minutes; checked at most once per this period, by one
    /// instance). Instances that exit leave their consumer behind; a live one removed by
    /// mistake comes back on its next read, and one with pending events is never removed.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = authgear_webhook::inbox::RedisStore::builder()
    ///     .idle_consumers(Duration::from_secs(3600));
    /// ```
    pub fn idle_consumers(mut self, idle: Duration) -> Self {
        self.idle_consumers = idle.max(Duration::from_millis(1));
        self
    }

    /// How long connecting, and each call, may take before it fails (default 1 s; as the
    /// Redis replay store): a delivery gets 503 this soon when Redis is unreachable or
    /// stalled. Only for [`open`](Self::open).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = authgear_webhook::inbox::RedisStore::builder().timeout(Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// A store on the Redis at `url`, connected lazily, with the [`timeout`](Self::timeout). Must be
    /// called within a Tokio runtime. Fails only if the URL is invalid.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authgear_webhook::inbox::StoreError> {
    /// let store = authgear_webhook::inbox::RedisStore::builder().open("redis://127.0.0.1:6379")?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] of kind [`Unavailable`](StoreErrorKind::Unavailable) when `url` is
    /// not a Redis URL. Redis is not reached here: an unreachable server is an error of
    /// each store call (the layer answers 503, the worker retries).
    pub fn open(self, url: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        let invalid = |error: redis::RedisError| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                "invalid Redis URL",
                Some(Box::new(error)),
            )
        };
        let client = Client::open(url).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(self.connect(connection))
    }

    /// A store on an existing connection manager, configured as you like.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let connection = redis::aio::ConnectionManager::new(client).await?;
    /// let store = authgear_webhook::inbox::RedisStore::builder().connect(connection);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(self, connection: ConnectionManager) -> RedisStore {
        RedisStore {
            connection,
            shared: Arc::new(Shared {
                keys: Keys::new(&self.prefix),
                consumer: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
                max_size: self.max_size,
                idle_consumers: self.idle_consumers,
                scripts: Scripts::new(),
            }),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may hold a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.keys.stream)
            .field("consumer", &self.shared.consumer)
            .finish_non_exhaustive()
    }
}
