//! The one error of every store: the seen-ids stores of replay protection and the inbox's
//! event stores, embedded or remote.

use std::{fmt, future::Future, pin::Pin};

/// The future a store method returns (boxed: the layers and the worker hold stores as
/// trait objects).
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// What kind of [`StoreError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// Too many requests are waiting for the store: back-pressure.
    Busy,
    /// The store has reached its maximum size, or its disk is full.
    Full,
    /// The store cannot be read or written (I/O error, read-only, unreachable, closed,
    /// misconfigured).
    Unavailable,
}

/// A store could not do what was asked: a seen-ids store of replay protection, or an inbox
/// store.
///
/// `Display` says what happened in a few words (never a body, a key or a secret); the cause
/// is the source.
///
/// ```
/// use authgear_webhook::{StoreError, StoreErrorKind};
///
/// let error = StoreError::new(StoreErrorKind::Full, "inbox is full", None);
/// assert_eq!(error.to_string(), "inbox is full");
/// assert_eq!(error.kind(), StoreErrorKind::Full);
/// ```
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: &'static str,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A store error of `kind` with a short message and an optional cause.
    ///
    /// ```
    /// use authgear_webhook::{StoreError, StoreErrorKind};
    ///
    /// let error = StoreError::new(StoreErrorKind::Busy, "inbox is busy", None);
    /// assert_eq!(error.to_string(), "inbox is busy");
    /// ```
    pub fn new(
        kind: StoreErrorKind,
        message: &'static str,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            message,
            source,
        }
    }

    /// What kind of error this is.
    ///
    /// ```
    /// # use authgear_webhook::{StoreError, StoreErrorKind};
    /// let error = StoreError::new(StoreErrorKind::Busy, "inbox is busy", None);
    /// assert_eq!(error.kind(), StoreErrorKind::Busy);
    /// ```
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
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
