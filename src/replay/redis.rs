//! The Redis seen-ids store, shared by every instance.

use std::{fmt, time::Duration};

use bytes::Bytes;
use redis::{
    Client, IntoConnectionInfo,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::runtime::Handle;

use super::{SeenIds, StoreError, StoreErrorKind, StoreFuture};

/// `SET key value NX PX ttl`, and the value already there if it was not set: one atomic
/// step (Redis 7's `SET .. NX GET` does the same; a script also runs on older servers).
const INSERT_IF_ABSENT: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) \
     then return false end return redis.call('GET', KEYS[1])";
/// Compare and set.
const REPLACE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] \
     then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false";
/// Compare and delete.
const REMOVE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] \
     then return redis.call('DEL', KEYS[1]) end return 0";

/// Remembers deliveries and their answers in Redis, so that any number of instances behind
/// a load balancer share them, and behave as one: each step is one atomic script (claim:
/// `SET key value NX PX ttl`, or read the value there; record the answer: compare and set;
/// release: compare and delete).
///
/// The connection is made on first use and remade when lost. An unreachable or slow Redis
/// (more than one second) is a [`StoreError`]: the delivery is refused with 503 unless
/// [`fail_open`](super::ReplayProtection::fail_open) was chosen. Recording an answer and
/// releasing a claim run in the background on the Tokio runtime the store was opened in.
///
/// ```no_run
/// use authgear_webhook::replay::{RedisStore, ReplayProtection};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::open("redis://127.0.0.1:6379")?;
/// let layer = ReplayProtection::new(store).layer();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    runtime: Option<Handle>,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://host:port/db`), connected lazily. Must be
    /// called within a Tokio runtime. Fails only if the URL is invalid.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when `url` is not a Redis URL. Redis is not reached here: an
    /// unreachable server is a store error of each check (503, unless `fail_open`).
    pub fn open(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        let invalid = |error: redis::RedisError| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                "invalid Redis URL",
                Some(error.into()),
            )
        };
        let client = Client::open(url).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(Self::new(connection))
    }

    /// A store on an existing connection manager, configured as you like. Call it within
    /// the Tokio runtime that serves the deliveries.
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            runtime: Handle::try_current().ok(),
        }
    }

    /// Runs `script` in the background: nobody waits for a recorded answer or a release.
    /// If it fails, the key keeps its claim until it expires with the window.
    fn spawn(&self, script: redis::Cmd) {
        let mut connection = self.connection.clone();
        let task = async move {
            let _: Result<redis::Value, _> = script.query_async(&mut connection).await;
        };
        if let Some(runtime) = Handle::try_current().ok().or_else(|| self.runtime.clone()) {
            runtime.spawn(task);
        }
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn eval(script: &str, key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

impl SeenIds for RedisStore {
    fn insert_if_absent(
        &self,
        key: String,
        value: Bytes,
        ttl: Duration,
    ) -> StoreFuture<Option<Bytes>> {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let current: Option<Vec<u8>> = eval(INSERT_IF_ABSENT, &key)
                .arg(value.as_ref())
                .arg(millis(ttl))
                .query_async(&mut connection)
                .await
                .map_err(|error| {
                    StoreError::new(
                        StoreErrorKind::Unavailable,
                        "Redis is unavailable",
                        Some(error.into()),
                    )
                })?;
            Ok(current.map(Bytes::from))
        })
    }

    fn replace(&self, key: String, current: Bytes, value: Bytes, ttl: Duration) {
        let mut script = eval(REPLACE, &key);
        script
            .arg(current.as_ref())
            .arg(value.as_ref())
            .arg(millis(ttl));
        self.spawn(script);
    }

    fn remove(&self, key: String, current: Bytes) {
        let mut script = eval(REMOVE, &key);
        script.arg(current.as_ref());
        self.spawn(script);
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may hold a password.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}
