//! The settings the layer and its services share.

use std::fmt;

use crate::{
    Secret, Verifier,
    collect::{DEFAULT_BODY_LIMIT, Keyed},
    signature::Keys,
};

#[derive(Clone)]
pub(crate) struct Config {
    /// The accepted secrets, keyed once here.
    pub(crate) verifier: Verifier,
    pub(crate) body_limit: usize,
    #[cfg(feature = "replay")]
    pub(crate) replay: Option<crate::replay::ReplayProtection>,
}

impl Config {
    pub(crate) fn new(secret: Secret) -> Self {
        Self {
            verifier: Verifier::new(secret),
            body_limit: DEFAULT_BODY_LIMIT,
            #[cfg(feature = "replay")]
            replay: None,
        }
    }
}

impl Keyed for Config {
    #[inline]
    fn keys(&self) -> &Keys {
        self.verifier.keys()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Config");
        debug
            .field("verifier", &self.verifier)
            .field("body_limit", &self.body_limit);
        #[cfg(feature = "replay")]
        debug.field("replay", &self.replay);
        debug.finish_non_exhaustive()
    }
}
