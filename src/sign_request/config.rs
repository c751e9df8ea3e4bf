//! The settings the layer and its services share.

use std::fmt;

use crate::{
    Secret,
    collect::{DEFAULT_BODY_LIMIT, Keyed},
    signature::Keys,
};

#[derive(Clone)]
pub(super) struct Config {
    /// The MAC keyed once here; each request signs with a copy of it.
    keys: Keys,
    pub(super) body_limit: usize,
}

impl Config {
    pub(super) fn new(secret: &Secret) -> Self {
        Self {
            keys: Keys::one(secret.as_ref()),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl Keyed for Config {
    #[inline]
    fn keys(&self) -> &Keys {
        &self.keys
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
