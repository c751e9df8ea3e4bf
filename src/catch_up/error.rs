//! What can go wrong when catching up.

use std::fmt;

use crate::store_error::StoreError;

/// What kind of failure a [`CatchUpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatchUpErrorKind {
    /// A setting is wrong: the key is not an RSA private key in PEM, the endpoint not a URL.
    Config,
    /// Authgear refused the token (403): a wrong key, key ID or app ID.
    Refused,
    /// The Admin API cannot be reached, did not answer in time, asked to slow down (429)
    /// or failed (5xx): retried later.
    Unavailable,
    /// The Admin API answered something else than the audit log (GraphQL errors, malformed
    /// JSON, an unexpected status).
    Invalid,
    /// More entries of one type within one second than could be read in full: the window is
    /// read again at the next pass.
    Incomplete,
    /// The inbox's store failed (the source says how).
    Store,
}

/// A catch-up failed. `Display` says what happened in a few words; it never shows the key,
/// a token or an event.
#[derive(Debug)]
pub struct CatchUpError {
    kind: CatchUpErrorKind,
    message: &'static str,
    source: Option<StoreError>,
}

impl CatchUpError {
    pub(crate) fn new(kind: CatchUpErrorKind, message: &'static str) -> Self {
        Self {
            kind,
            message,
            source: None,
        }
    }

    /// The inbox's store failed.
    pub(crate) fn store(error: StoreError) -> Self {
        Self {
            kind: CatchUpErrorKind::Store,
            message: "the inbox's store failed",
            source: Some(error),
        }
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use authgear_webhook::catch_up::{AdminApiKey, CatchUpErrorKind};
    ///
    /// let error = AdminApiKey::from_pem(b"", "id").unwrap_err();
    /// assert_eq!(error.kind(), CatchUpErrorKind::Config);
    /// ```
    pub fn kind(&self) -> CatchUpErrorKind {
        self.kind
    }
}

impl fmt::Display for CatchUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for CatchUpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}
