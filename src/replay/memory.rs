//! The in-memory seen-ids store.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use super::{SeenIds, StoreError, StoreFuture};

/// The default [`MemoryStore`] capacity.
const DEFAULT_CAPACITY: usize = 100_000;

/// Remembers delivery ids in this process: right for one instance. Behind a load balancer,
/// use a store every instance shares ([`RedisStore`](super::RedisStore)).
///
/// Entries expire with the window, so memory is proportional to the deliveries accepted
/// within it; each call is O(1) amortised. When `capacity` live entries are held, further
/// deliveries are refused with 503 (fail closed) until some expire.
///
/// ```
/// use authgear_webhook::replay::{MemoryStore, ReplayProtection};
///
/// let protection = ReplayProtection::new(MemoryStore::with_capacity(10_000));
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

struct State {
    capacity: usize,
    expires: HashMap<String, Instant>,
    /// Keys in insertion order, to drop expired ones without scanning the map.
    order: VecDeque<(Instant, String)>,
}

impl MemoryStore {
    /// A store holding at most `capacity` live ids (default 100 000).
    ///
    /// ```
    /// let store = authgear_webhook::replay::MemoryStore::with_capacity(1_000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                capacity,
                expires: HashMap::new(),
                order: VecDeque::new(),
            })),
        }
    }

    fn insert_at(&self, key: String, ttl: Duration, now: Instant) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(now);
        if state.expires.get(&key).is_some_and(|&expiry| expiry > now) {
            return Ok(false);
        }
        if state.expires.len() >= state.capacity {
            return Err(StoreError::new("in-memory seen-ids store is full", None));
        }
        let expiry = now + ttl;
        state.expires.insert(key.clone(), expiry);
        state.order.push_back((expiry, key));
        Ok(true)
    }
}

impl State {
    /// Drops the entries at the front of the queue that have expired.
    fn expire(&mut self, now: Instant) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            if let Some((expiry, key)) = self.order.pop_front() {
                // The key may have been inserted again since (after expiring): keep that one.
                if self.expires.get(&key) == Some(&expiry) {
                    self.expires.remove(&key);
                }
            }
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl SeenIds for MemoryStore {
    fn insert_if_absent(&self, key: String, ttl: Duration) -> StoreFuture {
        let result = self.insert_at(key, ttl, Instant::now());
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryStore")
            .field("capacity", &state.capacity)
            .field("len", &state.expires.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_expiry_then_forgets() {
        let store = MemoryStore::with_capacity(2);
        let t0 = Instant::now();
        let ttl = Duration::from_secs(300);
        assert!(store.insert_at("a".into(), ttl, t0).unwrap());
        assert!(
            !store
                .insert_at("a".into(), ttl, t0 + Duration::from_secs(299))
                .unwrap()
        );
        assert!(store.insert_at("b".into(), ttl, t0).unwrap());
        // Full: a third live id is refused, not silently evicting one.
        assert!(store.insert_at("c".into(), ttl, t0).is_err());
        // After the window both expired: room again, and "a" is new again.
        let later = t0 + Duration::from_secs(301);
        assert!(store.insert_at("c".into(), ttl, later).unwrap());
        assert!(store.insert_at("a".into(), ttl, later).unwrap());
        assert_eq!(store.state.lock().unwrap().order.len(), 2);
    }
}
