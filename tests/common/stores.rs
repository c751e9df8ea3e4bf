//! Stores for tests in process: one that never answers, dead letters in memory that may die
//! again as soon as they are re-driven, and a SQLite store with faults. Included by the
//! library's and the command-line tool's tests (`#[path]`), which have the inbox's
//! features.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use authgear_webhook::inbox::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, SqliteStore, Store, StoreFuture,
    Stored,
};

/// A call that never answers.
pub fn hang<T: Send + 'static>() -> StoreFuture<T> {
    Box::pin(std::future::pending())
}

/// A store whose every call hangs, as a store behind a dead network path would.
pub struct Hung;

impl Store for Hung {
    fn store(&self, _: NewEvent) -> StoreFuture<Stored> {
        hang()
    }
    fn claim(&self, _: usize, _: Duration) -> StoreFuture<Vec<Claimed>> {
        hang()
    }
    fn extend(&self, _: &Claimed, _: Duration) -> StoreFuture<bool> {
        hang()
    }
    fn ack(&self, _: &Claimed) -> StoreFuture<bool> {
        hang()
    }
    fn fail(&self, _: &Claimed, _: Failure, _: &str) -> StoreFuture<bool> {
        hang()
    }
    fn release(&self, _: &Claimed) -> StoreFuture<bool> {
        hang()
    }
    fn dead(&self, _: Option<EventKey>, _: usize) -> StoreFuture<Vec<DeadLetter>> {
        hang()
    }
    fn redrive(&self, _: &EventKey) -> StoreFuture<bool> {
        hang()
    }
    fn counts(&self) -> StoreFuture<Counts> {
        hang()
    }
    fn prune(&self, _: std::time::SystemTime, _: usize) -> StoreFuture<u64> {
        hang()
    }
    fn size(&self) -> StoreFuture<u64> {
        hang()
    }
    fn probe(&self) -> StoreFuture<()> {
        hang()
    }
}

/// Dead letters in memory: a store whose `dead` answers at most `cap` at a time (as a
/// store may), and whose re-driven events, with `undying`, die again at once (a handler
/// that fails them on their first attempt, as fast as they are re-driven). Its other calls
/// hang: the service makes none.
pub struct Graveyard {
    dead: Mutex<BTreeMap<EventKey, DeadLetter>>,
    cap: usize,
    undying: bool,
    redriven: Mutex<Vec<EventKey>>,
}

impl Graveyard {
    /// The keys re-driven so far, in order.
    pub fn redriven(&self) -> Vec<EventKey> {
        self.redriven.lock().expect("lock").clone()
    }

    /// Dead letters of `keys` (endpoint, id), `dead` answering at most `cap` at a time.
    pub fn new(
        keys: impl IntoIterator<Item = (String, String)>,
        cap: usize,
        undying: bool,
    ) -> Arc<Self> {
        let dead = keys
            .into_iter()
            .map(|(endpoint, id)| {
                let key = EventKey::new(endpoint, id);
                let letter = DeadLetter {
                    key: key.clone(),
                    event_type: "user.created".into(),
                    attempts: 1,
                    died_at: std::time::UNIX_EPOCH,
                    last_error: Some("handler failed".into()),
                };
                (key, letter)
            })
            .collect();
        Arc::new(Self {
            dead: Mutex::new(dead),
            cap,
            undying,
            redriven: Mutex::default(),
        })
    }
}

impl Store for Graveyard {
    fn store(&self, _: NewEvent) -> StoreFuture<Stored> {
        hang()
    }
    fn claim(&self, _: usize, _: Duration) -> StoreFuture<Vec<Claimed>> {
        hang()
    }
    fn extend(&self, _: &Claimed, _: Duration) -> StoreFuture<bool> {
        hang()
    }
    fn ack(&self, _: &Claimed) -> StoreFuture<bool> {
        hang()
    }
    fn fail(&self, _: &Claimed, _: Failure, _: &str) -> StoreFuture<bool> {
        hang()
    }
    fn release(&self, _: &Claimed) -> StoreFuture<bool> {
        hang()
    }
    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        let page = self
            .dead
            .lock()
            .expect("lock")
            .values()
            .filter(|dead| after.as_ref().is_none_or(|after| dead.key > *after))
            .take(max.min(self.cap))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(page)))
    }
    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        let mut dead = self.dead.lock().expect("lock");
        let found = match self.undying {
            true => dead.contains_key(key),
            false => dead.remove(key).is_some(),
        };
        if found {
            self.redriven.lock().expect("lock").push(key.clone());
        }
        Box::pin(std::future::ready(Ok(found)))
    }
    fn counts(&self) -> StoreFuture<Counts> {
        hang()
    }
    fn prune(&self, _: std::time::SystemTime, _: usize) -> StoreFuture<u64> {
        hang()
    }
    fn size(&self) -> StoreFuture<u64> {
        hang()
    }
}

/// A SQLite store with faults: `counts` that never answer (`counts_hang`), or every claim
/// lost by the time it is acked or failed (`loses_claims`: `ack` and `fail` answer `false`,
/// nothing recorded, as when another worker took the event over).
pub struct Faulty {
    pub inner: SqliteStore,
    pub counts_hang: bool,
    pub loses_claims: bool,
}

impl Faulty {
    pub fn new(inner: SqliteStore) -> Self {
        Self {
            inner,
            counts_hang: false,
            loses_claims: false,
        }
    }

    /// `value` at once when claims are lost (the store is not called), else `call`'s.
    fn lost<T: Send + 'static>(
        &self,
        value: T,
        call: impl FnOnce() -> StoreFuture<T>,
    ) -> StoreFuture<T> {
        match self.loses_claims {
            true => Box::pin(std::future::ready(Ok(value))),
            false => call(),
        }
    }
}

impl Store for Faulty {
    fn store(&self, event: NewEvent) -> StoreFuture<Stored> {
        self.inner.store(event)
    }
    fn claim(&self, max: usize, claim_for: Duration) -> StoreFuture<Vec<Claimed>> {
        self.inner.claim(max, claim_for)
    }
    fn extend(&self, claim: &Claimed, claim_for: Duration) -> StoreFuture<bool> {
        self.inner.extend(claim, claim_for)
    }
    fn ack(&self, claim: &Claimed) -> StoreFuture<bool> {
        self.lost(false, || self.inner.ack(claim))
    }
    fn ack_many(&self, claims: &[Claimed]) -> StoreFuture<Vec<bool>> {
        self.lost(vec![false; claims.len()], || self.inner.ack_many(claims))
    }
    fn fail(&self, claim: &Claimed, failure: Failure, error: &str) -> StoreFuture<bool> {
        self.lost(false, || self.inner.fail(claim, failure, error))
    }
    fn release(&self, claim: &Claimed) -> StoreFuture<bool> {
        self.inner.release(claim)
    }
    fn dead(&self, after: Option<EventKey>, max: usize) -> StoreFuture<Vec<DeadLetter>> {
        self.inner.dead(after, max)
    }
    fn redrive(&self, key: &EventKey) -> StoreFuture<bool> {
        self.inner.redrive(key)
    }
    fn counts(&self) -> StoreFuture<Counts> {
        match self.counts_hang {
            true => hang(),
            false => self.inner.counts(),
        }
    }
    fn prune(&self, before: std::time::SystemTime, max: usize) -> StoreFuture<u64> {
        self.inner.prune(before, max)
    }
    fn size(&self) -> StoreFuture<u64> {
        self.inner.size()
    }
}
