//! What the layer and its services share: the keyed MACs and the body limit.

use std::fmt;

use crate::{
    Secret,
    signature::{HmacSha256, keyed},
};

/// The default [`body_limit`](crate::VerifySignatureLayer::body_limit): 1 MiB.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Config {
    /// One MAC, keyed once here, per accepted non-empty secret, with the secret's index.
    pub(crate) keys: Vec<(usize, HmacSha256)>,
    /// How many secrets were given, empty ones included.
    secrets: usize,
    pub(crate) body_limit: usize,
}

impl Config {
    pub(crate) fn new(secret: Secret) -> Self {
        let mut config = Self {
            keys: Vec::with_capacity(1),
            secrets: 0,
            body_limit: DEFAULT_BODY_LIMIT,
        };
        config.accept(secret);
        config
    }

    /// Adds a secret. An empty one is counted but matches nothing: with an empty key anybody
    /// could sign.
    pub(crate) fn accept(&mut self, secret: Secret) {
        if !secret.as_ref().is_empty() {
            self.keys.push((self.secrets, keyed(secret.as_ref())));
        }
        self.secrets += 1;
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secrets", &self.secrets)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
