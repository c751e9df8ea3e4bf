//! The first copy's claim on a delivery, waiting for it, and recording its answer.

use std::{
    collections::hash_map::RandomState,
    fmt,
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;

use super::{
    SeenIds,
    answer::{self, Entry, RecordedAnswer},
    body::Recorder,
};
use crate::RejectionKind;

/// What [`ReplayProtection::check`](super::ReplayProtection::check) found: the first copy
/// of a delivery, or a repeat.
#[derive(Debug)]
pub enum Checked {
    /// The first copy within the window: handle it, then
    /// [`record`](Claim::record) the answer (or [`release`](Claim::release) the claim if
    /// handling failed).
    Fresh(Claim),
    /// A repeated copy of a delivery already answered: do not handle it again; answer with
    /// the recorded answer.
    Repeat(RecordedAnswer),
}

/// The first copy's hold on a delivery (endpoint and `id`) within the window.
///
/// While it is held, other copies wait for its answer. [`record`](Self::record) keeps the
/// answer for them; dropping the claim without recording it
/// ([`release`](Self::release)) frees the delivery, so that a later copy handles it.
#[must_use = "a claim dropped without `record` is released: a later copy handles the delivery again"]
pub struct Claim {
    held: Option<Held>,
}

struct Held {
    store: Arc<dyn SeenIds>,
    key: String,
    /// The value this claim put under the key.
    value: Bytes,
    ttl: Duration,
    record_limit: usize,
}

impl Claim {
    /// A claim with nothing behind it (replay protection let the delivery through without
    /// the store): recording and releasing do nothing.
    pub(super) fn none() -> Self {
        Self { held: None }
    }

    /// Keeps `answer` for the copies of this delivery within the window. An answer whose body
    /// is larger than the [`record_limit`](super::ReplayProtection::record_limit) is not kept:
    /// copies then get 401 ([`RejectionKind::Replayed`]).
    pub fn record(mut self, answer: &RecordedAnswer) {
        if let Some(held) = self.held.take() {
            let kept = (answer.body().len() <= held.record_limit).then_some(answer);
            held.finish(answer::answered(kept));
        }
    }

    /// Frees the delivery: handling it failed, and a later copy may handle it. The same as
    /// dropping the claim.
    pub fn release(mut self) {
        self.held.take();
    }

    /// Marks the delivery answered without keeping the answer (copies then get 401).
    pub(super) fn answered_unkept(&mut self) {
        if let Some(held) = self.held.take() {
            held.finish(answer::answered(None));
        }
    }

    /// The recorder of the inner service's response; `None` when nothing is held.
    pub(super) fn into_recorder(self) -> Option<Box<Recorder>> {
        let record_limit = self.held.as_ref()?.record_limit;
        Some(Box::new(Recorder::new(self, record_limit)))
    }
}

impl Held {
    fn finish(mut self, value: Bytes) {
        // An empty key tells Drop that the claim was settled: nothing to release.
        let key = std::mem::take(&mut self.key);
        self.store.replace(key, self.value.clone(), value, self.ttl);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.key.is_empty() {
            self.store
                .remove(std::mem::take(&mut self.key), self.value.clone());
        }
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("held", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

/// A claim not yet made: the delivery was fresh, its key is known.
pub(crate) struct Pending {
    pub(super) store: Arc<dyn SeenIds>,
    pub(super) key: String,
    pub(super) ttl: Duration,
    pub(super) wait: Duration,
    pub(super) record_limit: usize,
    pub(super) fail_open: bool,
}

/// The first wait between two looks at a delivery in flight; doubled up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(50);

impl Pending {
    /// Claims the key, or reads what is there: the recorded answer, or, while the first
    /// copy is in flight, waits for it (at most `wait`). A key freed meanwhile (the first
    /// copy failed) is claimed by this copy.
    pub(super) async fn resolve(self) -> Result<Checked, RejectionKind> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut poll = FIRST_POLL;
        loop {
            let value = answer::in_flight(token());
            let inserted = self
                .store
                .insert_if_absent(self.key.clone(), value.clone(), self.ttl)
                .await;
            match inserted {
                Ok(None) => return Ok(Checked::Fresh(self.claim(value))),
                Ok(Some(current)) => match answer::parse(&current) {
                    Entry::Answered(Some(answer)) => return Ok(Checked::Repeat(answer)),
                    Entry::Answered(None) => return Err(RejectionKind::Replayed),
                    Entry::InFlight => {}
                },
                Err(_) if self.fail_open => return Ok(Checked::Fresh(Claim::none())),
                Err(_) => return Err(RejectionKind::StoreUnavailable),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(RejectionKind::Replayed);
            }
            tokio::time::sleep(poll.min(deadline - now)).await;
            poll = (poll * 2).min(MAX_POLL);
        }
    }

    fn claim(self, value: Bytes) -> Claim {
        Claim {
            held: Some(Held {
                store: self.store,
                key: self.key,
                value,
                ttl: self.ttl,
                record_limit: self.record_limit,
            }),
        }
    }
}

/// A token naming one claim: random per process, distinct per call.
fn token() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}
