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

/// How long after a full pass of `XAUTOCLAIM` the next one is due at the latest (sooner
/// when a claim made since has an earlier deadline): an instance's claims are handed over
/// within this of their deadline, while other instances claim.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);

/// Most events one `claim` takes (the script's reply is built in one piece), and one ack
/// script is given.
const MAX_CLAIM: usize = 1000;

/// The longest retry delay given to the fail script, in ms (about 285,000 years: never in
/// practice). Lua's numbers are doubles, and a due time past 2^63 ms would be written as a
/// negative one: due at once.
const MAX_DELAY_MS: u64 = 1 << 53;

/// Bytes counted per event besides its body, type and key (its `seen` field, its stream
/// entry, its `done` element): an estimate, for [`RedisStore::size`].
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
/// All keys start with `{prefix}:v2:` (default prefix `{authgear-webhook:inbox}`; the
/// braces put them in one Cluster hash slot, which the scripts need). The layout keeps the
/// work Redis does per event small: storing an event is one script of four commands, and
/// claiming and acking a batch of events costs a few commands for the whole batch, none
/// per event.
///
/// - `stream`: the queue, read by the consumer group `workers`. Each entry holds one whole
///   event (key, type, body, attempts before this entry), so a claim reads the events
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
///   body, attempts and last error are in a hash `p:{endpoint}\0\0{id}`.
/// - `done`: handled events in the order they were handled (a list of `time:key`), for
///   [`prune`](Store::prune).
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

struct Shared {
    keys: Keys,
    consumer: String,
    max_size: u64,
    idle_consumers: Duration,
    scripts: Scripts,
}

/// The store's fixed keys, and the start of every parked event's key.
struct Keys {
    stream: String,
    seen: String,
    retry: String,
    dead: String,
    done: String,
    bytes: String,
    next: String,
    cursor: String,
    cleanup: String,
    parked: String,
    /// The keys of version 0.1.0 that held events: stream, retry, dead.
    older: [String; 3],
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
        let older = |name: &str| format!("{{{}}}:{name}", self.prefix);
        let base = format!("{{{}}}:v2:", self.prefix);
        let key = |name: &str| format!("{base}{name}");
        RedisStore {
            connection,
            shared: Arc::new(Shared {
                keys: Keys {
                    stream: key("stream"),
                    seen: key("seen"),
                    retry: key("retry"),
                    dead: key("dead"),
                    done: key("done"),
                    bytes: key("bytes"),
                    next: key("next"),
                    cursor: key("cursor"),
                    cleanup: key("cleanup"),
                    parked: key("p:"),
                    older: [older("stream"), older("retry"), older("dead")],
                },
                consumer: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
                max_size: self.max_size,
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

/// The key a [`member`] names; `None` if it is not one.
fn key_of(member: &[u8]) -> Option<EventKey> {
    let mut endpoint = Vec::with_capacity(member.len());
    let mut bytes = member.iter().copied();
    loop {
        let byte = bytes.next()?;
        if byte == 0 {
            match bytes.next()? {
                0 => break,
                1 => {}
                _ => return None,
            }
        }
        endpoint.push(byte);
    }
    let id = bytes.collect();
    Some(EventKey {
        endpoint: String::from_utf8(endpoint).ok()?,
        id: String::from_utf8(id).ok()?,
    })
}

/// A claim's token: its stream entry and the entry's delivery count in the group, which
/// every new claim of the entry raises.
fn token(entry: &str, deliveries: u64) -> String {
    format!("{entry}:{deliveries}")
}

/// The stream entry and delivery count a [`token`] names; `None` unless the entry is a
/// stream id (`<ms>-<seq>`): Redis would refuse any other with an error, failing a whole
/// batch of acks for one token that is not this store's.
fn parse_token(token: &str) -> Option<(&str, u64)> {
    let (entry, deliveries) = token.rsplit_once(':')?;
    let (ms, seq) = entry.split_once('-')?;
    ms.parse::<u64>().ok()?;
    seq.parse::<u64>().ok()?;
    Some((entry, deliveries.parse().ok()?))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn error(error: redis::RedisError) -> StoreError {
    let (kind, message) = match error.code() {
        Some("FULL") => (StoreErrorKind::Full, "inbox store is full"),
        Some("OLDER") => (
            StoreErrorKind::Unavailable,
            "Redis holds events of the inbox's 0.1.0 layout: drain them with 0.1.0 first",
        ),
        Some("OOM") => (StoreErrorKind::Full, "Redis is out of memory"),
        Some("READONLY") => (StoreErrorKind::Unavailable, "Redis is read-only"),
        Some("MISCONF") => (StoreErrorKind::Unavailable, "Redis cannot persist writes"),
        _ => (StoreErrorKind::Unavailable, "Redis is unavailable"),
    };
    StoreError::new(kind, message, Some(Box::new(error)))
}

fn malformed() -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "Redis returned a malformed event",
        None,
    )
}

/// One claimed event as the claim script returns it: stream entry, delivery count, member,
/// type, body, attempt.
type ClaimRow = (String, u64, Vec<u8>, String, Vec<u8>, u32);

/// One dead letter as the dead script returns it: member, type, attempts, died at (Unix
/// ms), last error.
type DeadRow = (Vec<u8>, String, u32, u64, Option<String>);

impl Store for RedisStore {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        Box::pin(async move {
            let stored: i64 = shared
                .scripts
                .store
                .key(&shared.keys.seen)
                .key(&shared.keys.stream)
                .key(&shared.keys.bytes)
                .arg(member(&event.key))
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
                .key(&shared.keys.seen)
                .key(&shared.keys.next)
                .key(&shared.keys.cursor)
                .key(&shared.keys.cleanup)
                .key(&shared.keys.older[0])
                .key(&shared.keys.older[1])
                .key(&shared.keys.older[2])
                .arg(GROUP)
                .arg(&shared.consumer)
                .arg(max)
                .arg(claim_for)
                .arg(millis(WINDOW))
                .arg(&shared.keys.parked)
                .arg(millis(shared.idle_consumers))
                .arg(millis(RECLAIM_EVERY))
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            rows.into_iter()
                .map(|(entry, deliveries, member, event_type, body, attempt)| {
                    Ok(Claimed {
                        key: key_of(&member).ok_or_else(malformed)?,
                        event_type,
                        body: Bytes::from(body),
                        attempt,
                        token: token(&entry, deliveries),
                    })
                })
                .collect()
        })
    }

    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let token = claim.token.clone();
        let claim_for = millis(claim_for.clamp(Duration::from_millis(1), WINDOW));
        Box::pin(async move {
            let Some((entry, deliveries)) = parse_token(&token) else {
                return Ok(false);
            };
            let extended: i64 = shared
                .scripts
                .extend
                .key(&shared.keys.stream)
                .key(&shared.keys.next)
                .arg(GROUP)
                .arg(&shared.consumer)
                .arg(entry)
                .arg(deliveries)
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
        // Entry, member, and the bytes the event's type and body count for.
        let acks: Vec<Option<(String, Vec<u8>, usize)>> = claims
            .iter()
            .map(|claim| {
                let (entry, _) = parse_token(&claim.token)?;
                let size = claim.event_type.len() + claim.body.len();
                Some((entry.to_owned(), member(&claim.key), size))
            })
            .collect();
        Box::pin(async move {
            // One script (atomic, one round trip) per `MAX_CLAIM` events; a token that is
            // not this store's acks nothing.
            let mut acked = Vec::with_capacity(acks.len());
            for chunk in acks.chunks(MAX_CLAIM) {
                let mut invocation = shared.scripts.ack.prepare_invoke();
                invocation
                    .key(&shared.keys.stream)
                    .key(&shared.keys.retry)
                    .key(&shared.keys.dead)
                    .key(&shared.keys.seen)
                    .key(&shared.keys.done)
                    .key(&shared.keys.bytes)
                    .arg(GROUP)
                    .arg(&shared.keys.parked);
                for (entry, member, size) in chunk.iter().flatten() {
                    invocation.arg(entry).arg(member).arg(size);
                }
                let replies: Vec<i64> = if chunk.iter().any(Option::is_some) {
                    invocation
                        .invoke_async(&mut connection)
                        .await
                        .map_err(error)?
                } else {
                    Vec::new()
                };
                let mut replies = replies.into_iter();
                acked.extend(
                    chunk
                        .iter()
                        .map(|ack| ack.is_some() && replies.next() == Some(1)),
                );
            }
            Ok(acked)
        })
    }

    fn fail(&self, claim: &Claimed, failure: Failure, error_text: &str) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let token = claim.token.clone();
        let last_error: String = error_text.chars().take(1000).collect();
        // -1: dead.
        let delay = match failure {
            Failure::RetryAfter(delay) => {
                i64::try_from(millis(delay).min(MAX_DELAY_MS)).unwrap_or(i64::MAX)
            }
            Failure::Dead => -1,
        };
        Box::pin(async move {
            let Some((entry, deliveries)) = parse_token(&token) else {
                return Ok(false);
            };
            let failed: i64 = shared
                .scripts
                .fail
                .key(&shared.keys.stream)
                .key(&shared.keys.retry)
                .key(&shared.keys.dead)
                .arg(GROUP)
                .arg(&shared.consumer)
                .arg(entry)
                .arg(deliveries)
                .arg(delay)
                .arg(&last_error)
                .arg(&shared.keys.parked)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            Ok(failed == 1)
        })
    }

    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let token = claim.token.clone();
        Box::pin(async move {
            let Some((entry, deliveries)) = parse_token(&token) else {
                return Ok(false);
            };
            let released: i64 = shared
                .scripts
                .release
                .key(&shared.keys.stream)
                .key(&shared.keys.seen)
                .arg(GROUP)
                .arg(&shared.consumer)
                .arg(entry)
                .arg(deliveries)
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
                .arg(&shared.keys.parked)
                .invoke_async(&mut connection)
                .await
                .map_err(error)?;
            rows.into_iter()
                .map(|(member, event_type, attempts, died_at, last_error)| {
                    Ok(DeadLetter {
                        key: key_of(&member).ok_or_else(malformed)?,
                        event_type,
                        attempts,
                        died_at: UNIX_EPOCH + Duration::from_millis(died_at),
                        last_error,
                    })
                })
                .collect()
        })
    }

    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        let (mut connection, shared) = (self.connection.clone(), self.shared.clone());
        let member = member(key);
        Box::pin(async move {
            let requeued: i64 = shared
                .scripts
                .redrive
                .key(&shared.keys.stream)
                .key(&shared.keys.dead)
                .key(&shared.keys.seen)
                .arg(member)
                .arg(&shared.keys.parked)
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
                .key(&shared.keys.seen)
                .key(&shared.keys.bytes)
                .arg(before)
                .arg(max)
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
// write (read-only, cannot persist; out of memory for `store` and `redrive` only: the
// others free memory or take little). A stream entry's fields, in this order: m (member),
// t (type), b (body), a (attempts before this entry). Every entry in the stream is queued
// or claimed: whatever ends a claim acks and deletes its entry in the same script.

/// Prelude: Redis's clock in Unix ms, and integers as Redis arguments.
macro_rules! script {
    ($flags:literal, $($body:expr),+) => {
        concat!(
            "#!lua",
            $flags,
            "\n",
            "local function now()\n",
            "  local t = redis.call('TIME')\n",
            "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n",
            "end\n",
            "local function int(n) return string.format('%d', n) end\n",
            $($body),+
        )
    };
}

/// The start of the scripts that act on one claim (KEYS[1] stream; ARGV[1] group, ARGV[2]
/// consumer, ARGV[3] entry, ARGV[4] delivery count): they answer 0 unless the claim still
/// holds, that is the entry is pending to this consumer with this delivery count, which is
/// then `deliveries`.
macro_rules! held {
    () => {
        r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1]
if not p or p[2] ~= ARGV[2] or p[4] ~= tonumber(ARGV[4]) then return 0 end
local deliveries = p[4]"
    };
}

/// KEYS seen, stream, bytes; ARGV member, type, body, max size, overhead.
const STORE: &str = script!(
    "",
    r"
if redis.call('HSETNX', KEYS[1], ARGV[1], 'q') == 0 then return 0 end
local cost = tonumber(ARGV[5]) + 2 * #ARGV[1] + #ARGV[2] + #ARGV[3]
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used + cost > tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return redis.error_reply('FULL the inbox store is at its maximum size')
end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[1], 't', ARGV[2], 'b', ARGV[3], 'a', '0')
redis.call('INCRBY', KEYS[3], cost)
return 1
"
);

/// KEYS stream, retry, seen, next, cursor, cleanup, then 0.1.0's stream, retry, dead; ARGV
/// group, consumer, max, claim for (ms), window (ms), parked key prefix, idle consumers
/// (ms), reclaim every (ms). One row per event: entry, delivery count, member, type, body,
/// attempt.
const CLAIM: &str = script!(
    " flags=allow-oom",
    r"
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local max, window, t = tonumber(ARGV[3]), tonumber(ARGV[5]), now()
local deadline = t + tonumber(ARGV[4])
local out, ids = {}, {'XCLAIM', stream, group, me, 0}
local function take(e, deliveries)
  local f = e[2]
  out[#out + 1] = {e[1], deliveries, f[2], f[4], f[6], tonumber(f[8]) + deliveries}
  ids[#ids + 1] = e[1]
end
-- Claims whose deadline passed (a dead instance's), when one may have.
local reclaim_at = tonumber(redis.call('GET', KEYS[4]) or '0')
if reclaim_at <= t then
  -- Events acknowledged by 0.1.0 would never be handled here: say so until they are gone.
  if redis.call('XLEN', KEYS[7]) + redis.call('ZCARD', KEYS[8]) + redis.call('ZCARD', KEYS[9]) > 0 then
    return redis.error_reply('OLDER events of the 0.1.0 layout are waiting')
  end
  local r = redis.pcall('XAUTOCLAIM', stream, group, me, window,
    redis.call('GET', KEYS[5]) or '0-0', 'COUNT', max)
  if r[1] then
    redis.call('SET', KEYS[5], r[1])
    for _, e in ipairs(r[2]) do
      if type(e) == 'table' and type(e[2]) == 'table' then
        take(e, redis.call('XPENDING', stream, group, e[1], e[1], 1)[1][4])
      end
    end
    -- A whole pass: the next one within a second, or at an earlier deadline.
    if r[1] == '0-0' then
      reclaim_at = t + tonumber(ARGV[8])
      redis.call('SET', KEYS[4], int(reclaim_at))
    end
    -- Leftover consumers, by one instance at a time.
    local idle = tonumber(ARGV[7])
    if redis.call('SET', KEYS[6], me, 'NX', 'PX', ARGV[7]) then
      for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
        local info = {}
        for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
        if info['name'] ~= me and info['pending'] == 0 and info['idle'] >= idle then
          redis.call('XGROUP', 'DELCONSUMER', stream, group, info['name'])
        end
      end
    end
  end
end
-- Retries that are due join the stream.
if #out < max then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(t), 'LIMIT', 0, max - #out)
  for _, m in ipairs(due) do
    local key = ARGV[6] .. m
    local f = redis.call('HMGET', key, 't', 'b', 'a')
    local entry = redis.call('XADD', stream, '*', 'm', m, 't', f[1], 'b', f[2], 'a', f[3])
    redis.call('HSET', KEYS[3], m, entry)
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], m)
  end
end
-- New entries, oldest first; the group is made on the first claim.
if #out < max then
  local read = {'XREADGROUP', 'GROUP', group, me, 'COUNT', max - #out, 'STREAMS', stream, '>'}
  local new = redis.pcall(unpack(read))
  if type(new) == 'table' and new.err then
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    new = redis.call(unpack(read))
  end
  if new then
    for _, e in ipairs(new[1][2]) do take(e, 1) end
  end
end
-- The deadline, as the delivery time `window` before it.
if #out > 0 then
  ids[#ids + 1] = 'TIME'
  ids[#ids + 1] = int(deadline - window)
  ids[#ids + 1] = 'JUSTID'
  redis.call(unpack(ids))
  if deadline < reclaim_at then redis.call('SET', KEYS[4], int(deadline)) end
end
return out
"
);

/// KEYS stream, next; ARGV group, consumer, entry, delivery count, claim for (ms), window
/// (ms).
const EXTEND: &str = script!(
    " flags=allow-oom",
    held!(),
    r"
local deadline = now() + tonumber(ARGV[5])
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3],
  'TIME', int(deadline - tonumber(ARGV[6])), 'JUSTID')
if deadline < tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], int(deadline))
end
return 1
"
);

/// KEYS stream, retry, dead, seen, done, bytes; ARGV group, parked key prefix, then for
/// each event to ack: its claim's entry, its member, its type's and body's bytes. One 0 or
/// 1 per event, in order.
const ACK: &str = script!(
    " flags=allow-oom",
    r"
local stream, group = KEYS[1], ARGV[1]
local n = (#ARGV - 2) / 3
local function arg(i, k) return ARGV[3 * i + k] end
-- Each entry once, in one XACK: in the usual case every one was pending, and is acked.
local first, entries = {}, {}
for i = 1, n do
  local entry = arg(i, 0)
  if not first[entry] then
    first[entry] = i
    entries[#entries + 1] = entry
  end
end
local acked, pending = redis.call('XACK', stream, group, unpack(entries)), {}
for _, entry in ipairs(entries) do
  -- Not all: the entries still in the stream were pending (read, so not new).
  pending[entry] = acked == #entries or (acked > 0 and #redis.call('XRANGE', stream, entry, entry) > 0)
end
local out, handled, deleted, done, freed, at = {}, {}, {}, {}, 0, int(now()) .. ':'
for i = 1, n do
  local entry, m = arg(i, 0), arg(i, 1)
  local ok = false
  if handled[m] or first[entry] ~= i then
    -- Given twice in this batch: acked the first time only.
  elseif pending[entry] then
    ok = true
    deleted[#deleted + 1] = entry
  elseif redis.call('ZSCORE', KEYS[2], m) then
    -- A stale claim of an event waiting to retry: handled all the same.
    redis.call('ZREM', KEYS[2], m)
    redis.call('DEL', ARGV[2] .. m)
    ok = true
  elseif not redis.call('ZSCORE', KEYS[3], m) then
    -- A stale claim of an event queued again as another entry.
    local latest = redis.call('HGET', KEYS[4], m)
    if latest and latest ~= 'q' and latest ~= entry
      and #redis.call('XRANGE', stream, latest, latest) > 0 then
      redis.call('XACK', stream, group, latest)
      deleted[#deleted + 1] = latest
      ok = true
    end
  end
  if ok then
    handled[m] = true
    done[#done + 1] = at .. m
    freed = freed + tonumber(arg(i, 2))
  end
  out[i] = ok and 1 or 0
end
if #deleted > 0 then redis.call('XDEL', stream, unpack(deleted)) end
if #done > 0 then
  redis.call('RPUSH', KEYS[5], unpack(done))
  redis.call('DECRBY', KEYS[6], freed)
end
return out
"
);

/// KEYS stream, retry, dead; ARGV group, consumer, entry, delivery count, delay (ms, -1:
/// dead), error, parked key prefix.
const FAIL: &str = script!(
    " flags=allow-oom",
    held!(),
    r"
local f = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1][2]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
local m, t, delay = f[2], now(), tonumber(ARGV[5])
redis.call('HSET', ARGV[7] .. m, 't', f[4], 'b', f[6], 'a', int(tonumber(f[8]) + deliveries),
  'err', ARGV[6], 'at', int(t))
if delay >= 0 then
  redis.call('ZADD', KEYS[2], int(t + delay), m)
else
  redis.call('ZADD', KEYS[3], 0, m)
end
return 1
"
);

/// KEYS stream, seen; ARGV group, consumer, entry, delivery count.
const RELEASE: &str = script!(
    " flags=allow-oom",
    held!(),
    r"
local f = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1][2]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
-- This claim is not an attempt.
local before = math.max(tonumber(f[8]) + deliveries - 1, 0)
local entry = redis.call('XADD', KEYS[1], '*', 'm', f[2], 't', f[4], 'b', f[6], 'a', int(before))
redis.call('HSET', KEYS[2], f[2], entry)
return 1
"
);

/// KEYS dead; ARGV start (ZRANGEBYLEX), max, parked key prefix.
const DEAD: &str = script!(
    " flags=no-writes,allow-oom",
    r"
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, ARGV[2])) do
  local f = redis.call('HMGET', ARGV[3] .. m, 't', 'a', 'at', 'err')
  if f[1] then
    out[#out + 1] = {m, f[1], tonumber(f[2] or '0'), tonumber(f[3] or '0'), f[4]}
  end
end
return out
"
);

/// KEYS stream, dead, seen; ARGV member, parked key prefix.
const REDRIVE: &str = script!(
    "",
    r"
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local key = ARGV[2] .. ARGV[1]
local f = redis.call('HMGET', key, 't', 'b')
local entry = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1], 't', f[1], 'b', f[2], 'a', '0')
redis.call('HSET', KEYS[3], ARGV[1], entry)
redis.call('DEL', key)
redis.call('ZREM', KEYS[2], ARGV[1])
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
return {queued, pending, redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[4])}
"
);

/// KEYS done, seen, bytes; ARGV before (Unix ms), max, overhead. The oldest first: `done`
/// is in the order of Redis's clock.
const PRUNE: &str = script!(
    " flags=allow-oom",
    r"
local members, freed = {}, 0
for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
  local colon = string.find(e, ':', 1, true)
  if tonumber(string.sub(e, 1, colon - 1)) >= tonumber(ARGV[1]) then break end
  local m = string.sub(e, colon + 1)
  members[#members + 1] = m
  freed = freed + tonumber(ARGV[3]) + 2 * #m
end
if #members > 0 then
  redis.call('LTRIM', KEYS[1], #members, -1)
  redis.call('HDEL', KEYS[2], unpack(members))
  redis.call('DECRBY', KEYS[3], freed)
end
return #members
"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_names_its_key_and_nothing_else() {
        for (endpoint, id) in [("/", "1"), ("/a\0b", "x\0\0y"), ("", ""), ("\0", "\0")] {
            let key = EventKey::new(endpoint, id);
            assert_eq!(key_of(&member(&key)), Some(key));
        }
        assert_eq!(key_of(b"no separator"), None);
        assert_eq!(key_of(b"/a\0\x02b\0\0id"), None);
    }

    #[test]
    fn a_token_names_its_entry_and_delivery_count() {
        assert_eq!(
            parse_token(&token("1700000000000-7", 3)),
            Some(("1700000000000-7", 3))
        );
        assert_eq!(parse_token("42"), None);
        assert_eq!(parse_token("1-0:x"), None);
        assert_eq!(parse_token("x:1"), None);
        assert_eq!(parse_token("1-2-3:1"), None);
    }
}
