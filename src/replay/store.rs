//! Where the deliveries seen within the window, and their answers, are remembered.

use std::time::Duration;

use bytes::Bytes;

pub use crate::store_error::{StoreError, StoreErrorKind, StoreFuture};

/// A store of the deliveries seen within the replay window: a map from key to an opaque
/// value, with an expiry per key.
///
/// [`ReplayProtection`](super::ReplayProtection) writes one key per delivery (endpoint and
/// `id`). The first copy claims the key with [`insert_if_absent`](Self::insert_if_absent);
/// once it has been answered, [`replace`](Self::replace) puts the recorded answer under the
/// key, or [`remove`](Self::remove) frees it when the handler failed. The values are the
/// protection's business: a store keeps them as they are. Implemented by
/// [`MemoryStore`](super::MemoryStore) (one process) and, shared by every instance,
/// `RedisStore` (feature `replay-redis`) and `PostgresStore` (feature `replay-postgres`).
///
/// Each operation must be atomic: two instances sharing a store behave as one. Methods
/// added to this trait later will have default implementations.
///
/// ```
/// use std::{collections::HashMap, sync::{Arc, Mutex}, time::Duration};
/// use authgear_webhook::replay::{SeenIds, StoreFuture};
/// use bytes::Bytes;
///
/// /// Remembers forever: for illustration only.
/// #[derive(Default)]
/// struct Forever(Arc<Mutex<HashMap<String, Bytes>>>);
///
/// impl SeenIds for Forever {
///     fn insert_if_absent(&self, key: String, value: Bytes, _ttl: Duration) -> StoreFuture<Option<Bytes>> {
///         let mut map = self.0.lock().unwrap();
///         let current = map.get(&key).cloned();
///         if current.is_none() {
///             map.insert(key, value);
///         }
///         Box::pin(async move { Ok(current) })
///     }
///
///     fn replace(&self, key: String, current: Bytes, value: Bytes, _ttl: Duration) {
///         let mut map = self.0.lock().unwrap();
///         if map.get(&key) == Some(&current) {
///             map.insert(key, value);
///         }
///     }
///
///     fn remove(&self, key: String, current: Bytes) {
///         let mut map = self.0.lock().unwrap();
///         if map.get(&key) == Some(&current) {
///             map.remove(&key);
///         }
///     }
/// }
/// ```
pub trait SeenIds: Send + Sync + 'static {
    /// Sets `key` to `value` for `ttl` unless the key is there, atomically. Resolves to
    /// `None` if it was absent (now set: this copy is the first), to the value the key
    /// holds if it was there, or to an error if the store cannot answer.
    fn insert_if_absent(
        &self,
        key: String,
        value: Bytes,
        ttl: Duration,
    ) -> StoreFuture<Option<Bytes>>;

    /// If `key` still holds `current`, sets it to `value` for `ttl`; otherwise does nothing.
    ///
    /// Called when a response ends, also from a destructor: it must not block. Start the
    /// write and return (a remote store spawns it); nobody waits for it. A store that cannot
    /// hold `value` (too large for what it has left) keeps the key with an empty value.
    fn replace(&self, key: String, current: Bytes, value: Bytes, ttl: Duration);

    /// If `key` still holds `current`, removes it; otherwise does nothing. Must not block,
    /// as [`replace`](Self::replace).
    fn remove(&self, key: String, current: Bytes);
}
