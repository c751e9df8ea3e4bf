//! A durable inbox for non-blocking events (feature `inbox`).
//!
//! Authgear sends each non-blocking event once and never retries. The inbox stores every
//! verified non-blocking delivery durably before answering 200, then hands it to a worker
//! that retries failures with backoff and keeps what never succeeds as a dead letter.

mod store;

pub use self::store::{
    Claimed, Counts, DeadLetter, EventKey, Failure, NewEvent, Store, StoreError, StoreErrorKind,
    StoreFuture, Stored,
};
