//! Where accepted delivery ids are remembered.

use std::{fmt, future::Future, pin::Pin, time::Duration};

/// The future a [`SeenIds`] store returns.
pub type StoreFuture = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'static>>;

/// A store of the delivery ids accepted within the replay window.
///
/// One call per verified delivery: record `key` for `ttl` unless it is already there,
/// atomically. Implemented by [`MemoryStore`](super::MemoryStore) (one process) and, with
/// feature `redis`, [`RedisStore`](super::RedisStore) (shared by every instance).
///
/// ```
/// use std::{collections::HashSet, sync::{Arc, Mutex}, time::Duration};
/// use authgear_webhook::replay::{SeenIds, StoreFuture};
///
/// /// Remembers forever: for illustration only.
/// #[derive(Default)]
/// struct Forever(Arc<Mutex<HashSet<String>>>);
///
/// impl SeenIds for Forever {
///     fn insert_if_absent(&self, key: String, _ttl: Duration) -> StoreFuture {
///         let inserted = self.0.lock().unwrap().insert(key);
///         Box::pin(async move { Ok(inserted) })
///     }
/// }
/// ```
pub trait SeenIds: Send + Sync + 'static {
    /// Records `key` for `ttl`. Resolves to `true` if it was not there (first delivery),
    /// `false` if it was (a replay), or an error if the store cannot answer.
    fn insert_if_absent(&self, key: String, ttl: Duration) -> StoreFuture;
}

/// A [`SeenIds`] store could not answer (unreachable, full, timed out).
///
/// `Display` says which store failed in a few words; the cause is kept as the source.
#[derive(Debug)]
pub struct StoreError {
    message: &'static str,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A store error with a short message and an optional cause.
    ///
    /// ```
    /// use authgear_webhook::replay::StoreError;
    ///
    /// let error = StoreError::new("seen-ids store is full", None);
    /// assert_eq!(error.to_string(), "seen-ids store is full");
    /// ```
    pub fn new(
        message: &'static str,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self { message, source }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
