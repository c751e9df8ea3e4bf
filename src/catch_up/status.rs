//! How the catch-up is doing, readable from outside its task: whether [`CatchUp::run`]
//! runs, and how its last pass ended ([`Health`](crate::admin::Health) reads it).
//!
//! [`CatchUp::run`]: super::CatchUp::run

use std::sync::{Arc, Mutex, PoisonError};

use super::{CatchUpError, CatchUpErrorKind};

/// Shared by a [`CatchUp`](super::CatchUp) and its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    /// How many `run` futures are live.
    running: usize,
    /// The last pass's failure, `None` once a pass succeeds.
    failed: Option<Failed>,
}

/// A failed pass, as much as may be shown: its kind and its short message (never a key or
/// a token: [`CatchUpError`]'s `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(crate) kind: CatchUpErrorKind,
    pub(crate) message: String,
    /// Passes failed in a row.
    pub(crate) times: u32,
}

impl Status {
    /// Counts `run` as running until the guard is dropped.
    pub(crate) fn running(&self) -> Running {
        self.with(|state| state.running += 1);
        Running(self.clone())
    }

    /// Records how a pass ended.
    pub(crate) fn passed<T>(&self, pass: &Result<T, CatchUpError>) {
        self.with(|state| {
            state.failed = match pass {
                Ok(_) => None,
                Err(error) => Some(Failed {
                    kind: error.kind(),
                    message: error.to_string(),
                    times: state
                        .failed
                        .as_ref()
                        .map_or(1, |failed| failed.times.saturating_add(1)),
                }),
            }
        });
    }

    /// Whether `run` runs, and the last pass's failure.
    pub(crate) fn get(&self) -> (bool, Option<Failed>) {
        self.with(|state| (state.running > 0, state.failed.clone()))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // Nothing here can panic while it holds the lock; a poisoned lock's state is whole.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A running [`CatchUp::run`](super::CatchUp::run), counted until dropped.
#[derive(Debug)]
pub(crate) struct Running(Status);

impl Drop for Running {
    fn drop(&mut self) {
        self.0
            .with(|state| state.running = state.running.saturating_sub(1));
    }
}
