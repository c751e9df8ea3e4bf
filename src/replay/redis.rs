//! The Redis seen-ids store, shared by every instance.

use std::{fmt, time::Duration};

use redis::{
    Client, IntoConnectionInfo,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{SeenIds, StoreError, StoreFuture};

/// Remembers delivery ids in Redis, so that any number of instances behind a load balancer
/// share them: one atomic `SET key 1 NX PX ttl` per delivery.
///
/// The connection is made on first use and remade when lost. An unreachable or slow Redis
/// (more than one second) is a [`StoreError`]: the delivery is refused with 503 unless
/// [`fail_open`](super::ReplayProtection::fail_open) was chosen.
///
/// ```no_run
/// use authgear_webhook::{replay::{RedisStore, ReplayProtection}, VerifySignatureLayer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::open("redis://127.0.0.1:6379")?;
/// let layer = VerifySignatureLayer::new("my-webhook-secret")
///     .replay_protection(ReplayProtection::new(store));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://host:port/db`), connected lazily. Must be
    /// called within a Tokio runtime. Fails only if the URL is invalid.
    pub fn open(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        let invalid =
            |error: redis::RedisError| StoreError::new("invalid Redis URL", Some(error.into()));
        let client = Client::open(url).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(Self { connection })
    }

    /// A store on an existing connection manager, configured as you like.
    pub fn new(connection: ConnectionManager) -> Self {
        Self { connection }
    }
}

impl SeenIds for RedisStore {
    fn insert_if_absent(&self, key: String, ttl: Duration) -> StoreFuture {
        let mut connection = self.connection.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            let reply: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut connection)
                .await
                .map_err(|error| StoreError::new("Redis is unavailable", Some(error.into())))?;
            Ok(reply.is_some())
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may hold a password.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}
