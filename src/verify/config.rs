//! The settings the layer and its services share, and the secrets a request is verified
//! with.

use std::{fmt, sync::Arc, time::Duration};

use http::request::Parts;

use super::deadline::DEFAULT_BODY_DEADLINE;
use crate::{
    BodyBudget, RejectionKind, SecretSource, Secrets, Verifier,
    collect::{DEFAULT_BODY_LIMIT, Keyed},
    signature::Keys,
};

#[derive(Clone)]
pub(crate) struct Config {
    /// Where the accepted secrets come from.
    pub(crate) source: Source,
    pub(crate) body_limit: usize,
    /// How long a body may take to arrive once it first makes the layer wait.
    pub(crate) body_deadline: Option<Duration>,
    /// Shared by every clone of the config: the layer's clones and the layers derived.
    pub(crate) body_budget: Option<BodyBudget>,
    /// The endpoint's name in the [`Envelope`](crate::Envelope); `None`: the request path.
    pub(crate) endpoint: Option<Arc<str>>,
}

/// Where the accepted secrets come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// Fixed when the layer was built, keyed once here.
    Fixed(Verifier),
    /// A handle that may change: each request takes the set in use when it arrives.
    Shared(Secrets),
    /// Picked per request.
    PerRequest(Arc<dyn SecretSource>),
}

impl Config {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            source,
            body_limit: DEFAULT_BODY_LIMIT,
            body_deadline: Some(DEFAULT_BODY_DEADLINE),
            body_budget: Some(BodyBudget::default()),
            endpoint: None,
        }
    }

    /// The settings and secrets to verify the request of `parts` with: the secrets in use
    /// now, kept for the request's whole body. Fixed secrets cost nothing more here.
    ///
    /// # Errors
    ///
    /// [`RejectionKind::NoSecrets`] when the source has none for this request.
    #[inline]
    pub(crate) fn snapshot(self: &Arc<Self>, parts: &Parts) -> Result<Snapshot, RejectionKind> {
        let verifier = match &self.source {
            Source::Fixed(_) => None,
            Source::Shared(secrets) => Some(secrets.verifier()),
            Source::PerRequest(source) => Some(
                source
                    .secrets(parts)
                    .ok_or(RejectionKind::NoSecrets)?
                    .verifier(),
            ),
        };
        Ok(Snapshot {
            config: self.clone(),
            verifier,
        })
    }
}

/// What one request is verified with: the layer's settings, and the secrets in use when it
/// arrived (`None`: the settings' fixed ones).
pub(crate) struct Snapshot {
    config: Arc<Config>,
    verifier: Option<Arc<Verifier>>,
}

impl Snapshot {
    /// The layer's settings.
    #[inline]
    pub(crate) fn settings(&self) -> &Config {
        &self.config
    }
}

impl Keyed for Snapshot {
    #[inline]
    fn keys(&self) -> &Keys {
        match (&self.verifier, &self.config.source) {
            (Some(verifier), _) => verifier.keys(),
            (None, Source::Fixed(verifier)) => verifier.keys(),
            // Not made: a snapshot of a source has its verifier.
            (None, _) => Keys::none(),
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(verifier) => f.debug_tuple("Fixed").field(verifier).finish(),
            Self::Shared(secrets) => f.debug_tuple("Shared").field(secrets).finish(),
            Self::PerRequest(_) => f.write_str("PerRequest(..)"),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Config");
        debug
            .field("source", &self.source)
            .field("body_limit", &self.body_limit)
            .field("body_deadline", &self.body_deadline)
            .field("body_budget", &self.body_budget)
            .field("endpoint", &self.endpoint);
        debug.finish_non_exhaustive()
    }
}
