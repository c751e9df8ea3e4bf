//! The shared store: Redis Streams and a consumer group, for many instances.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use redis::{
    Client, IntoConnectionInfo, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::store::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, Store, StoreError, StoreErrorKind,
    StoreFuture, Stored,
};

/// The consumer group every instance reads the stream with.
const GROUP: &str = "workers";

/// A claim's deadline is kept as the stream entry's delivery time, `WINDOW` before the
/// deadline, so that `XAUTOCLAIM ... WINDOW` takes over exactly the entries whose deadline
/// has passed, whatever each claim's length. Claims longer than this are cut to it.
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Most events one `claim` takes (the script's reply is built in one piece), and one ack
/// script is given.
const MAX_CLAIM: usize = 1000;

/// Bytes counted per event besides its body, type and key (the hash, its fields, the
/// stream entry and index members): an estimate, for [`RedisStore::size`].
const OVERHEAD: u64 = 256;

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
/// 503, the worker backs off. The connection is remade in the background; when Redis is
/// back, the store works again. Scripts run whole or not at all (Redis refuses a writing
/// script up front when it cannot write), and an AOF cut by a crash is loaded without its
/// torn last script.
///
/// # Layout
///
/// All keys start with `{prefix}:` (default `{authgear-webhook:inbox}`; the braces put them
/// in one Cluster hash slot, which the scripts need):
///
/// - `stream`: the queue, read by the consumer group `workers`. One group for all
///   endpoints: every worker handles every endpoint, so one stream is one read per claim
///   however many endpoints there are (per-endpoint streams would need discovering the
///   endpoints and reading them all). An entry names its event; its place in the group's
///   pending list is its claim.
/// - `e:{endpoint}\0\0{id}`: one hash per event (type, body, state, attempts, token, last
///   error). It is the deduplication record too: stored once, kept in every state until
///   pruned. A separate `SET NX PX` key would expire while its event is still queued or
///   dead (dead letters are kept until re-driven), and a replay would then be stored
///   twice; instead the hash gets its expiry (`PEXPIRE`, the
///   [`retention`](RedisBuilder::retention)) only when the event is handled.
/// - `retry`: failed events by due time (a sorted set); `claim` moves the due ones back to
///   the stream in the same script, so no mover task or lock is needed.
/// - `dead`: dead letters, in key order (a sorted set read by `ZRANGEBYLEX`), so that they
///   can be listed page by page and re-driven one by one; their hashes keep the body.
/// - `done`: handled events by the time they were handled, for [`prune`](Store::prune).
/// - `bytes`: the size estimate; `cursor`: where `XAUTOCLAIM` goes on; `cleanup`: a short
///   lock so that one instance at a time removes leftover consumers.
///
/// # Claims
///
/// Each `RedisStore` is one consumer of the group, with a unique name. A claim is
/// `XREADGROUP` (new entries), after `XAUTOCLAIM` (entries whose claim deadline passed: a
/// dead instance's) and the due retries; a claim's deadline is the entry's delivery time
/// (`XCLAIM ... TIME ... JUSTID`), which [`extend`](Store::extend) moves on. Attempts and
/// tokens are counted in the event's hash (in Redis, not in memory), exactly as the
/// [`Store`] docs say. A done or failed event leaves the stream at once (`XACK` and
/// `XDEL`), so the stream holds only queued and claimed events. Consumers of instances
/// that are gone, with nothing pending, are removed once idle for
/// [`idle_consumers`](RedisBuilder::idle_consumers).
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
    retention: Duration,
    idle_consumers: Duration,
    timeout: Duration,
}

struct Shared {
    keys: Keys,
    consumer: String,
    max_size: u64,
    retention: Duration,
    idle_consumers: Duration,
    scripts: Scripts,
}

/// The store's fixed keys, and the start of every event hash's key.
struct Keys {
    stream: String,
    retry: String,
    dead: String,
    done: String,
    bytes: String,
    cursor: String,
    cleanup: String,
    event: String,
}

struct Scripts {
    store: Script,
    claim: Script,
    extend: Script,
    ack: Script,
    fail: Script,
    release: Script,
    dead: Script,
    redrive: Script,
    counts: Script,
    prune: Script,
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
            retention: Duration::from_secs(7 * 24 * 3600),
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
    /// acks, failures and pruning go on. Redis's own `maxmemory` (with `noeviction`) is
    /// the hard bound.
    ///
    /// ```
    /// let builder = authgear_webhook::inbox::RedisStore::builder().max_size(64 << 20);
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// How long a handled event's hash lives at most (default 7 days): its expiry in
    /// Redis, so that handled events go even if no worker prunes. Set it to at least the
    /// [`Worker::retention`](super::Worker::retention), which prunes them on time.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = authgear_webhook::inbox::RedisStore::builder()
    ///     .retention(Duration::from_secs(14 * 24 * 3600));
    /// ```
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::from_millis(1));
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
        let base = format!("{{{}}}:", self.prefix);
        let key = |name: &str| format!("{base}{name}");
        RedisStore {
            connection,
            shared: Arc::new(Shared {
                keys: Keys {
                    stream: key("stream"),
                    retry: key("retry"),
                    dead: key("dead"),
                    done: key("done"),
                    bytes: key("bytes"),
                    cursor: key("cursor"),
                    cleanup: key("cleanup"),
                    event: key("e:"),
                },
                consumer: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
                max_size: self.max_size,
                retention: self.retention,
                idle_consumers: self.idle_consumers,
                scripts: Scripts {
                    store: Script::new(STORE),
                    claim: Script::new(CLAIM),
                    extend: Script::new(EXTEND),
                    ack: Script::new(ACK),
                    fail: Script::new(FAIL),
                    release: Script::new(RELEASE),
                    dead: Script::new(DEAD),
                    redrive: Script::new(REDRIVE),
                    counts: Script::new(COUNTS),
                    prune: Script::new(PRUNE),
                },
            }),
        }
    }
}

/// The member naming `key` in the indexes and the stream: the endpoint (each NUL written
/// as NUL 0x01), two NULs, the id. Unique, and sorted as (endpoint, id) for endpoints
/// without NUL.
fn member(key: &EventKey) -> Vec<u8> {
    let mut member = Vec::with_capacity(key.endpoint.len() + key.id.len() + 2);
    for &byte in key.endpoint.as_bytes() {
        member.push(byte);
        if byte == 0 {
            member.push(1);
        }
    }
    member.extend_from_slice(&[0, 0]);
    member.extend_from_slice(key.id.as_bytes());
    member
}

impl Shared {
    fn event_key(&self, member: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.keys.event.len() + member.len());
        key.extend_from_slice(self.keys.event.as_bytes());
        key.extend_from_slice(member);
        key
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn error(error: redis::RedisError) -> StoreError {
    let (kind, message) = match error.code() {
        Some("FULL") => (StoreErrorKind::Full, "inbox store is full"),
        Some("OOM") => (StoreErrorKind::Full, "Redis is out of memory"),
        Some("READONLY") => (StoreErrorKind::Unavailable, "Redis is read-only"),
        Some("MISCONF") => (StoreErrorKind::Unavailable, "Redis cannot persist writes"),
        _ => (StoreErrorKind::Unavailable, "Redis is unavailable"),
    };
    StoreError::new(kind, message, Some(Box::new(error)))
}

/// One claimed event as the claim script returns it: endpoint, id, type, body, attempt,
/// token.
type ClaimRow = (String, String, String, Vec<u8>, u32, i64);

/// One dead letter as the dead script returns it: endpoint, id, type, attempts, died at
/// (Unix ms), last error.
type DeadRow = (String, String, String, u32, u64, Option<String>);

impl Store for RedisStore {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move {
            let member = member(&event.key);
            let stored: i64 = shared
                .scripts
                .store
                .key(&shared.keys.stream)
                .key(&shared.keys.bytes)
                .key(shared.event_key(&member))
                .arg(&member)
                .arg(&event.key.endpoint)
                .arg(&event.key.id)
                .arg(&event.event_type)
                .arg(&event.body[..])
                .arg(shared.max_size)
                .arg(OVERHEAD)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(match stored {
                1 => Stored::Stored,
                _ => Stored::Duplicate,
            })
        })
    }

    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let max = max.min(MAX_CLAIM);
        let claim_for = millis(claim_for.clamp(Duration::from_millis(1), WINDOW));
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let rows: Vec<ClaimRow> = shared
                .scripts
                .claim
                .key(&shared.keys.stream)
                .key(&shared.keys.retry)
                .key(&shared.keys.cursor)
                .key(&shared.keys.cleanup)
                .arg(GROUP)
                .arg(&shared.consumer)
                .arg(max)
                .arg(claim_for)
                .arg(millis(WINDOW))
                .arg(&shared.keys.event)
                .arg(millis(shared.idle_consumers))
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(rows
                .into_iter()
                .map(|(endpoint, id, event_type, body, attempt, token)| Claimed {
                    key: EventKey { endpoint, id },
                    event_type,
                    body: Bytes::from(body),
                    attempt,
                    token: token.to_string(),
                })
                .collect())
        })
    }

    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let (key, token) = (claim.key.clone(), claim.token.clone());
        let claim_for = millis(claim_for.clamp(Duration::from_millis(1), WINDOW));
        Box::pin(async move {
            let extended: i64 = shared
                .scripts
                .extend
                .key(&shared.keys.stream)
                .key(shared.event_key(&member(&key)))
                .arg(GROUP)
                .arg(&shared.consumer)
                .arg(&token)
                .arg(claim_for)
                .arg(millis(WINDOW))
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(extended == 1)
        })
    }

    fn ack(&self, claim: &Claimed) -> StoreFuture<bool> {
        let acked = self.ack_many(std::slice::from_ref(claim));
        Box::pin(async move { Ok(acked.await?.first() == Some(&true)) })
    }

    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let members: Vec<Vec<u8>> = claims.iter().map(|claim| member(&claim.key)).collect();
        Box::pin(async move {
            // One script (atomic, one round trip) per `MAX_CLAIM` events.
            let mut acked = Vec::with_capacity(members.len());
            for chunk in members.chunks(MAX_CLAIM) {
                let mut invocation = shared.scripts.ack.prepare_invoke();
                invocation
                    .key(&shared.keys.stream)
                    .key(&shared.keys.retry)
                    .key(&shared.keys.done)
                    .key(&shared.keys.bytes)
                    .arg(GROUP)
                    .arg(millis(shared.retention).max(1))
                    .arg(&shared.keys.event);
                for member in chunk {
                    invocation.arg(member);
                }
                let replies: Vec<i64> = invocation
                    .invoke_async(&mut connection)
                    .await
                    .map_err(error)?;
                acked.extend(replies.into_iter().map(|acked| acked == 1));
            }
            Ok(acked)
        })
    }

    fn fail(&self, claim: &Claimed, failure: Failure, error_text: &str) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let (key, token) = (claim.key.clone(), claim.token.clone());
        let last_error: String = error_text.chars().take(1000).collect();
        // -1: dead.
        let delay = match failure {
            Failure::RetryAfter(delay) => i64::try_from(millis(delay)).unwrap_or(i64::MAX),
            Failure::Dead => -1,
        };
        Box::pin(async move {
            let member = member(&key);
            let failed: i64 = shared
                .scripts
                .fail
                .key(&shared.keys.stream)
                .key(&shared.keys.retry)
                .key(&shared.keys.dead)
                .key(shared.event_key(&member))
                .arg(GROUP)
                .arg(&member)
                .arg(&token)
                .arg(delay)
                .arg(&last_error)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(failed == 1)
        })
    }

    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let (key, token) = (claim.key.clone(), claim.token.clone());
        Box::pin(async move {
            let member = member(&key);
            let released: i64 = shared
                .scripts
                .release
                .key(&shared.keys.stream)
                .key(shared.event_key(&member))
                .arg(GROUP)
                .arg(&member)
                .arg(&token)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(released == 1)
        })
    }

    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let max = max.min(MAX_CLAIM);
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            // ZRANGEBYLEX: `-` is the first member, `(m` the first after m.
            let start = after.map_or_else(
                || b"-".to_vec(),
                |key| {
                    let mut start = b"(".to_vec();
                    start.extend_from_slice(&member(&key));
                    start
                },
            );
            let rows: Vec<DeadRow> = shared
                .scripts
                .dead
                .key(&shared.keys.dead)
                .arg(start)
                .arg(max)
                .arg(&shared.keys.event)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(rows
                .into_iter()
                .map(
                    |(endpoint, id, event_type, attempts, died_at, last_error)| DeadLetter {
                        key: EventKey { endpoint, id },
                        event_type,
                        attempts,
                        died_at: UNIX_EPOCH + Duration::from_millis(died_at),
                        last_error,
                    },
                )
                .collect())
        })
    }

    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let key = key.clone();
        Box::pin(async move {
            let member = member(&key);
            let requeued: i64 = shared
                .scripts
                .redrive
                .key(&shared.keys.stream)
                .key(&shared.keys.dead)
                .key(shared.event_key(&member))
                .arg(&member)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(requeued == 1)
        })
    }

    fn counts(&self) -> StoreFuture<Counts> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move {
            let (queued, in_flight, dead, done): (u64, u64, u64, u64) = shared
                .scripts
                .counts
                .key(&shared.keys.stream)
                .key(&shared.keys.retry)
                .key(&shared.keys.dead)
                .key(&shared.keys.done)
                .arg(GROUP)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(Counts {
                queued,
                in_flight,
                dead,
                done,
            })
        })
    }

    fn prune(&self, before: SystemTime, max: usize) -> StoreFuture<u64> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let before = before.duration_since(UNIX_EPOCH).map_or(0, millis);
        let max = max.min(MAX_CLAIM);
        Box::pin(async move {
            if max == 0 {
                return Ok(0);
            }
            shared
                .scripts
                .prune
                .key(&shared.keys.done)
                .key(&shared.keys.bytes)
                .arg(before)
                .arg(max)
                .arg(&shared.keys.event)
                .arg(OVERHEAD)
                .invoke_async(&mut connection)
                .await
                .map_err(error)
        })
    }

    fn size(&self) -> StoreFuture<u64> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move {
            let bytes: Option<u64> = redis::cmd("GET")
                .arg(&shared.keys.bytes)
                .query_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(bytes.unwrap_or(0))
        })
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

// The scripts. Each runs atomically; a writing one is refused whole when Redis cannot
// write (read-only, cannot persist; out of memory for `store` only: the others free
// memory or take little). Event states in the hash's `state`: q queued, c claimed, d done,
// x dead. `entry` is the event's stream entry while it has one.

/// Prelude: Redis's clock in Unix ms, and integers as Redis arguments.
macro_rules! script {
    ($flags:literal, $body:literal) => {
        concat!(
            "#!lua",
            $flags,
            "\n",
            "local t = redis.call('TIME')\n",
            "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n",
            "local function int(n) return string.format('%d', n) end\n",
            $body
        )
    };
}

/// KEYS stream, bytes, event; ARGV member, endpoint, id, type, body, max size, overhead.
const STORE: &str = script!(
    "",
    r"
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local cost = tonumber(ARGV[7]) + 2 * #ARGV[1] + #ARGV[4] + #ARGV[5]
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + cost > tonumber(ARGV[6]) then
  return redis.error_reply('FULL the inbox store is at its maximum size')
end
local entry = redis.call('XADD', KEYS[1], '*', 'k', ARGV[1])
redis.call('HSET', KEYS[3], 'ep', ARGV[2], 'id', ARGV[3], 'type', ARGV[4], 'body', ARGV[5],
  'state', 'q', 'att', 0, 'seq', 0, 'entry', entry, 'at', int(now))
redis.call('INCRBY', KEYS[2], cost)
return 1
"
);

/// KEYS stream, retry, cursor, cleanup; ARGV group, consumer, max, claim for (ms), window
/// (ms), event key prefix, idle consumers (ms).
const CLAIM: &str = script!(
    " flags=allow-oom",
    r"
local stream, group, me, prefix = KEYS[1], ARGV[1], ARGV[2], ARGV[6]
local max, window = tonumber(ARGV[3]), tonumber(ARGV[5])
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
local ids, members = {}, {}
local function take(entries)
  for _, e in ipairs(entries) do
    if type(e) == 'table' and type(e[2]) == 'table' then
      ids[#ids + 1] = e[1]
      members[#members + 1] = e[2][2]
    end
  end
end
-- Claims whose deadline passed: a dead instance's.
local cursor = redis.call('GET', KEYS[3]) or '0-0'
local r = redis.call('XAUTOCLAIM', stream, group, me, window, cursor, 'COUNT', max)
redis.call('SET', KEYS[3], r[1])
take(r[2])
-- Retries that are due join the stream.
if #ids < max then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(now), 'LIMIT', 0, max - #ids)
  for _, m in ipairs(due) do
    local entry = redis.call('XADD', stream, '*', 'k', m)
    redis.call('HSET', prefix .. m, 'entry', entry)
    redis.call('ZREM', KEYS[2], m)
  end
end
-- New entries, oldest first.
if #ids < max then
  local new = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', max - #ids, 'STREAMS', stream, '>')
  if new then take(new[1][2]) end
end
local out, kept = {}, {'XCLAIM', stream, group, me, 0}
for i, id in ipairs(ids) do
  local key = prefix .. members[i]
  local h = redis.call('HMGET', key, 'state', 'entry', 'att', 'seq', 'ep', 'id', 'type', 'body')
  if (h[1] == 'q' or h[1] == 'c') and h[2] == id then
    local att = tonumber(h[3] or '0') + 1
    local seq = tonumber(h[4] or '0') + 1
    redis.call('HSET', key, 'state', 'c', 'att', int(att), 'seq', int(seq), 'tok', int(seq))
    out[#out + 1] = {h[5], h[6], h[7], h[8], att, seq}
    kept[#kept + 1] = id
  else
    -- Left over: its event was handled, failed or re-driven meanwhile.
    redis.call('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
  end
end
-- The deadline, as the delivery time `window` before it.
if #kept > 5 then
  kept[#kept + 1] = 'TIME'
  kept[#kept + 1] = int(now + tonumber(ARGV[4]) - window)
  kept[#kept + 1] = 'JUSTID'
  redis.call(unpack(kept))
end
-- Leftover consumers, by one instance at a time.
local idle = tonumber(ARGV[7])
if redis.call('SET', KEYS[4], me, 'NX', 'PX', ARGV[7]) then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local info = {}
    for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
    if info['name'] ~= me and info['pending'] == 0 and info['idle'] >= idle then
      redis.call('XGROUP', 'DELCONSUMER', stream, group, info['name'])
    end
  end
end
return out
"
);

/// KEYS stream, event; ARGV group, consumer, token, claim for (ms), window (ms).
const EXTEND: &str = script!(
    " flags=allow-oom",
    r"
local h = redis.call('HMGET', KEYS[2], 'state', 'tok', 'entry')
if h[1] ~= 'c' or h[2] ~= ARGV[3] then return 0 end
local time = int(now + tonumber(ARGV[4]) - tonumber(ARGV[5]))
local r = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, h[3], 'TIME', time, 'JUSTID')
if #r == 1 then return 1 end
return 0
"
);

/// KEYS stream, retry, done, bytes; ARGV group, retention (ms), event key prefix, then the
/// members to ack. One 0 or 1 per member, in order.
const ACK: &str = script!(
    " flags=allow-oom",
    r"
-- Each event's hash here; the indexes once for all, at the end.
local out, freed, entries, members, done = {}, 0, {}, {}, {}
for i = 4, #ARGV do
  local m = ARGV[i]
  local key = ARGV[3] .. m
  local h = redis.call('HMGET', key, 'state', 'entry', 'type', 'body')
  if h[1] ~= 'q' and h[1] ~= 'c' then
    out[#out + 1] = 0
  else
    if h[2] and h[2] ~= '' then entries[#entries + 1] = h[2] end
    redis.call('HDEL', key, 'type', 'body', 'tok', 'err')
    redis.call('HSET', key, 'state', 'd', 'entry', '', 'at', int(now))
    redis.call('PEXPIRE', key, ARGV[2])
    members[#members + 1] = m
    done[#done + 1] = int(now)
    done[#done + 1] = m
    freed = freed + #(h[3] or '') + #(h[4] or '')
    out[#out + 1] = 1
  end
end
if #entries > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
  redis.call('XDEL', KEYS[1], unpack(entries))
end
if #members > 0 then
  redis.call('ZREM', KEYS[2], unpack(members))
  redis.call('ZADD', KEYS[3], unpack(done))
  redis.call('DECRBY', KEYS[4], freed)
end
return out
"
);

/// KEYS stream, retry, dead, event; ARGV group, member, token, delay (ms, -1: dead), error.
const FAIL: &str = script!(
    " flags=allow-oom",
    r"
local h = redis.call('HMGET', KEYS[4], 'state', 'tok', 'entry')
if h[1] ~= 'c' or h[2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], h[3])
redis.call('XDEL', KEYS[1], h[3])
local delay = tonumber(ARGV[4])
if delay >= 0 then
  redis.call('ZADD', KEYS[2], int(now + delay), ARGV[2])
  redis.call('HSET', KEYS[4], 'state', 'q', 'entry', '', 'tok', '', 'err', ARGV[5])
else
  redis.call('ZADD', KEYS[3], 0, ARGV[2])
  redis.call('HSET', KEYS[4], 'state', 'x', 'entry', '', 'tok', '', 'err', ARGV[5], 'at', int(now))
end
return 1
"
);

/// KEYS stream, event; ARGV group, member, token.
const RELEASE: &str = script!(
    " flags=allow-oom",
    r"
local h = redis.call('HMGET', KEYS[2], 'state', 'tok', 'entry', 'att')
if h[1] ~= 'c' or h[2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], h[3])
redis.call('XDEL', KEYS[1], h[3])
local entry = redis.call('XADD', KEYS[1], '*', 'k', ARGV[2])
local att = math.max(tonumber(h[4] or '0') - 1, 0)
redis.call('HSET', KEYS[2], 'state', 'q', 'entry', entry, 'tok', '', 'att', att)
return 1
"
);

/// KEYS dead; ARGV start (ZRANGEBYLEX), max, event key prefix.
const DEAD: &str = script!(
    " flags=no-writes,allow-oom",
    r"
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, ARGV[2])) do
  local f = redis.call('HMGET', ARGV[3] .. m, 'ep', 'id', 'type', 'att', 'at', 'err')
  if f[1] then
    out[#out + 1] = {f[1], f[2], f[3], tonumber(f[4] or '0'), tonumber(f[5] or '0'), f[6]}
  end
end
return out
"
);

/// KEYS stream, dead, event; ARGV member.
const REDRIVE: &str = script!(
    "",
    r"
if redis.call('HGET', KEYS[3], 'state') ~= 'x' then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local entry = redis.call('XADD', KEYS[1], '*', 'k', ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'q', 'entry', entry, 'att', 0)
return 1
"
);

/// KEYS stream, retry, dead, done; ARGV group. The stream holds exactly the queued
/// entries not yet read and the claimed ones (the group's pending list).
const COUNTS: &str = script!(
    " flags=no-writes,allow-oom",
    r"
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and type(p[1]) == 'number' then pending = p[1] end
local queued = redis.call('XLEN', KEYS[1]) - pending + redis.call('ZCARD', KEYS[2])
return {queued, pending, redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4])}
"
);

/// KEYS done, bytes; ARGV before (Unix ms), max, event key prefix, overhead.
const PRUNE: &str = script!(
    " flags=allow-oom",
    r"
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(members) do
  local key = ARGV[3] .. m
  local state = redis.call('HGET', key, 'state')
  -- Its hash may have expired and the id been stored again since: keep that one.
  if not state or state == 'd' then redis.call('DEL', key) end
  redis.call('ZREM', KEYS[1], m)
  redis.call('DECRBY', KEYS[2], tonumber(ARGV[4]) + 2 * #m)
end
return #members
"
);
