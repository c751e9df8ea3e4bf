//! What the layer and its services share: the keyed MAC and the body limit.

use std::fmt;

use crate::{
    Secret,
    signature::{HmacSha256, keyed},
};

/// The default [`body_limit`](super::SignRequestLayer::body_limit): 1 MiB, as for verifying.
pub(super) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
pub(super) struct Config {
    /// The MAC keyed once here; each request signs with a clone of it.
    pub(super) mac: HmacSha256,
    pub(super) body_limit: usize,
}

impl Config {
    pub(super) fn new(secret: &Secret) -> Self {
        Self {
            mac: keyed(secret.as_ref()),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
