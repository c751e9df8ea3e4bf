//! In-memory stores for the admin service's tests, in process: one that never answers, and
//! dead letters that may die again as soon as they are re-driven. Included by the library's
//! and the command-line tool's tests (`#[path]`), which have the inbox's features.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use authgear_webhook::inbox::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, Store, StoreFuture, Stored,
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
