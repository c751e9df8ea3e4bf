//! The in-memory seen-ids store.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use bytes::Bytes;

use super::{SeenIds, StoreError, StoreErrorKind, StoreFuture};

/// The default [`MemoryStore`] capacity, in entries.
const DEFAULT_CAPACITY: usize = 100_000;
/// The default [`MemoryStore`] capacity, in bytes of keys and values.
const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Remembers deliveries and their answers in this process: right for one instance. Behind
/// a load balancer, use a store every instance shares (`RedisStore` or `PostgresStore`).
///
/// Entries expire with the window, so memory is proportional to the deliveries accepted
/// within it; each call is O(1) amortised. It holds at most `capacity` live entries and
/// `max_bytes` bytes of keys and values (default 100 000 and 32 MiB). When either is reached,
/// further deliveries are refused with 503 (fail closed) until some expire; an answer that
/// no longer fits is not kept (copies of its delivery then get 401).
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
    max_bytes: usize,
    /// Bytes of the live keys and values.
    bytes: usize,
    entries: HashMap<String, Entry>,
    /// Keys in insertion order, to drop expired ones without scanning the map. A key may
    /// appear more than once (replaced, removed): only the one whose `set` matches counts.
    order: VecDeque<(Instant, String, u64)>,
    /// Numbers each `set`, to tell its queue entry from older ones of the same key.
    sets: u64,
}

struct Entry {
    expiry: Instant,
    value: Bytes,
    set: u64,
}

impl MemoryStore {
    /// A store holding at most `capacity` live entries (default 100 000).
    ///
    /// ```
    /// let store = authgear_webhook::replay::MemoryStore::with_capacity(1_000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                capacity,
                max_bytes: DEFAULT_MAX_BYTES,
                bytes: 0,
                entries: HashMap::new(),
                order: VecDeque::new(),
                sets: 0,
            })),
        }
    }

    /// Holds at most `bytes` bytes of keys and recorded answers (default 32 MiB).
    ///
    /// ```
    /// let store = authgear_webhook::replay::MemoryStore::default().max_bytes(4 * 1024 * 1024);
    /// ```
    pub fn max_bytes(self, bytes: usize) -> Self {
        self.lock().max_bytes = bytes;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert_at(
        &self,
        key: String,
        value: Bytes,
        ttl: Duration,
        now: Instant,
    ) -> Result<Option<Bytes>, StoreError> {
        let mut state = self.lock();
        state.expire(now);
        if let Some(entry) = state.live(&key, now) {
            return Ok(Some(entry.value.clone()));
        }
        // Expired but not yet dropped (its queue entry waits behind a later expiry).
        state.take(&key);
        let size = key.len() + value.len();
        if state.entries.len() >= state.capacity || state.bytes + size > state.max_bytes {
            return Err(StoreError::new(
                StoreErrorKind::Full,
                "in-memory seen-ids store is full",
                None,
            ));
        }
        state.set(key, value, now + ttl);
        Ok(None)
    }

    fn replace_at(&self, key: String, current: &Bytes, value: Bytes, ttl: Duration, now: Instant) {
        let mut state = self.lock();
        state.expire(now);
        let Some(old) = state.live(&key, now).filter(|e| e.value == *current) else {
            return;
        };
        let room = (state.max_bytes + old.value.len()).saturating_sub(state.bytes);
        let value = match value.len() <= room {
            true => value,
            false => Bytes::new(),
        };
        state.set(key, value, now + ttl);
    }

    fn remove_at(&self, key: &str, current: &Bytes, now: Instant) {
        let mut state = self.lock();
        state.expire(now);
        if state.live(key, now).is_some_and(|e| e.value == *current) {
            state.take(key);
        }
    }
}

impl State {
    /// Drops the entries at the front of the queue that have expired.
    fn expire(&mut self, now: Instant) {
        while let Some((expiry, _, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            if let Some((_, key, set)) = self.order.pop_front() {
                // The key may have been set again since: keep that one.
                if self.is_current(&key, set) {
                    self.take(&key);
                }
            }
        }
    }

    /// The entry of `key`, unless it has expired.
    fn live(&self, key: &str, now: Instant) -> Option<&Entry> {
        self.entries.get(key).filter(|entry| entry.expiry > now)
    }

    fn is_current(&self, key: &str, set: u64) -> bool {
        self.entries.get(key).is_some_and(|e| e.set == set)
    }

    /// Sets `key`, replacing any entry it had.
    fn set(&mut self, key: String, value: Bytes, expiry: Instant) {
        self.take(&key);
        self.bytes += key.len() + value.len();
        self.sets += 1;
        let set = self.sets;
        self.entries
            .insert(key.clone(), Entry { expiry, value, set });
        self.order.push_back((expiry, key, set));
        // Replaced and removed keys leave stale queue entries: drop them before the queue
        // outgrows the map, so it stays bounded by the capacity (amortised O(1)).
        if self.order.len() > 2 * self.capacity.max(16) {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(_, key, set)| self.is_current(key, *set));
            self.order = order;
        }
    }

    fn take(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= key.len() + entry.value.len();
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl SeenIds for MemoryStore {
    fn insert_if_absent(
        &self,
        key: String,
        value: Bytes,
        ttl: Duration,
    ) -> StoreFuture<Option<Bytes>> {
        let result = self.insert_at(key, value, ttl, Instant::now());
        Box::pin(std::future::ready(result))
    }

    fn replace(&self, key: String, current: Bytes, value: Bytes, ttl: Duration) {
        self.replace_at(key, &current, value, ttl, Instant::now());
    }

    fn remove(&self, key: String, current: Bytes) {
        self.remove_at(&key, &current, Instant::now());
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("capacity", &state.capacity)
            .field("max_bytes", &state.max_bytes)
            .field("len", &state.entries.len())
            .field("bytes", &state.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn b(value: &'static str) -> Bytes {
        Bytes::from_static(value.as_bytes())
    }

    #[test]
    fn remembers_until_expiry_then_forgets() {
        let store = MemoryStore::with_capacity(2);
        let t0 = Instant::now();
        assert_eq!(store.insert_at("a".into(), b("1"), TTL, t0).unwrap(), None);
        let later = t0 + Duration::from_secs(299);
        assert_eq!(
            store.insert_at("a".into(), b("2"), TTL, later).unwrap(),
            Some(b("1"))
        );
        assert_eq!(store.insert_at("b".into(), b("1"), TTL, t0).unwrap(), None);
        // Full: a third live id is refused, not silently evicting one.
        assert!(store.insert_at("c".into(), b("1"), TTL, t0).is_err());
        // After the window both expired: room again, and "a" is new again.
        let later = t0 + Duration::from_secs(301);
        assert_eq!(
            store.insert_at("c".into(), b("1"), TTL, later).unwrap(),
            None
        );
        assert_eq!(
            store.insert_at("a".into(), b("1"), TTL, later).unwrap(),
            None
        );
        assert_eq!(store.lock().order.len(), 2);
        assert_eq!(store.lock().bytes, 4);
    }

    #[test]
    fn an_expired_entry_queued_behind_a_later_one_is_gone() {
        let store = MemoryStore::with_capacity(10);
        let t0 = Instant::now();
        store.insert_at("long".into(), b("1"), TTL * 2, t0).unwrap();
        store
            .insert_at("short".into(), b("1"), Duration::from_secs(1), t0)
            .unwrap();
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            store.insert_at("short".into(), b("2"), TTL, later).unwrap(),
            None
        );
        assert_eq!(store.lock().bytes, 11);
    }

    #[test]
    fn replaces_and_removes_only_the_value_it_was_given() {
        let store = MemoryStore::with_capacity(10);
        let t0 = Instant::now();
        store.insert_at("k".into(), b("mine"), TTL, t0).unwrap();
        store.replace_at("k".into(), &b("theirs"), b("x"), TTL, t0);
        store.remove_at("k", &b("theirs"), t0);
        assert_eq!(
            store.insert_at("k".into(), b("-"), TTL, t0).unwrap(),
            Some(b("mine"))
        );
        store.replace_at("k".into(), &b("mine"), b("answer"), TTL, t0);
        assert_eq!(
            store.insert_at("k".into(), b("-"), TTL, t0).unwrap(),
            Some(b("answer"))
        );
        store.remove_at("k", &b("answer"), t0);
        assert_eq!(
            store.insert_at("k".into(), b("new"), TTL, t0).unwrap(),
            None
        );
        assert_eq!(store.lock().bytes, 4);
    }

    #[test]
    fn a_value_that_does_not_fit_is_kept_empty_and_the_full_store_refuses() {
        let store = MemoryStore::with_capacity(10).max_bytes(10);
        let t0 = Instant::now();
        store.insert_at("k".into(), b("p"), TTL, t0).unwrap();
        store.replace_at("k".into(), &b("p"), b("0123456789"), TTL, t0);
        assert_eq!(
            store.insert_at("k".into(), b("-"), TTL, t0).unwrap(),
            Some(Bytes::new())
        );
        store.insert_at("j".into(), b("01234567"), TTL, t0).unwrap();
        assert!(store.insert_at("i".into(), b("0"), TTL, t0).is_err());
    }

    #[test]
    fn the_queue_stays_bounded_when_keys_come_and_go() {
        let store = MemoryStore::with_capacity(4);
        let t0 = Instant::now();
        for _ in 0..1_000 {
            store.insert_at("k".into(), b("p"), TTL, t0).unwrap();
            store.remove_at("k", &b("p"), t0);
        }
        assert!(store.lock().order.len() <= 2 * 16 + 1);
    }
}
