//! The settings the layer and its services share.

use std::{fmt, sync::Arc, time::Duration};

use super::deadline::DEFAULT_BODY_DEADLINE;
use crate::{
    BodyBudget, Secret, Verifier,
    collect::{DEFAULT_BODY_LIMIT, Keyed},
    signature::Keys,
};

#[derive(Clone)]
pub(crate) struct Config {
    /// The accepted secrets, keyed once here.
    pub(crate) verifier: Verifier,
    pub(crate) body_limit: usize,
    /// How long a body may take to arrive once it first makes the layer wait.
    pub(crate) body_deadline: Option<Duration>,
    /// Shared by every clone of the config: the layer's clones and the layers derived.
    pub(crate) body_budget: Option<BodyBudget>,
    /// The endpoint's name in the [`Envelope`](crate::Envelope); `None`: the request path.
    pub(crate) endpoint: Option<Arc<str>>,
}

impl Config {
    pub(crate) fn new(secret: Secret) -> Self {
        Self {
            verifier: Verifier::new(secret),
            body_limit: DEFAULT_BODY_LIMIT,
            body_deadline: Some(DEFAULT_BODY_DEADLINE),
            body_budget: Some(BodyBudget::default()),
            endpoint: None,
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
            .field("body_limit", &self.body_limit)
            .field("body_deadline", &self.body_deadline)
            .field("body_budget", &self.body_budget)
            .field("endpoint", &self.endpoint);
        debug.finish_non_exhaustive()
    }
}
