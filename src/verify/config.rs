//! What the layer and its services share: the keyed MACs and the body limit.

use std::{fmt, future::Future, pin::Pin};

use http::Request;

use crate::{
    RejectionKind, Secret, VerifiedBody,
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
    #[cfg(feature = "replay")]
    pub(crate) replay: Option<crate::replay::ReplayProtection>,
}

/// What to do with a request whose signature matched.
#[cfg_attr(not(feature = "replay"), allow(dead_code))]
pub(crate) enum Check {
    /// Call the inner service.
    Pass,
    /// Refuse it.
    Reject(RejectionKind),
    /// Wait for an asynchronous check (the seen-ids store), then call or refuse.
    Wait(Pin<Box<dyn Future<Output = Result<(), RejectionKind>> + Send>>),
}

impl Config {
    pub(crate) fn new(secret: Secret) -> Self {
        let mut config = Self {
            keys: Vec::with_capacity(1),
            secrets: 0,
            body_limit: DEFAULT_BODY_LIMIT,
            #[cfg(feature = "replay")]
            replay: None,
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

    /// The checks that follow a matching signature: replay protection, when enabled.
    pub(crate) fn after_verify(&self, request: &Request<VerifiedBody>) -> Check {
        #[cfg(feature = "replay")]
        if let Some(replay) = &self.replay {
            return replay.check(request.uri().path(), request.body().bytes());
        }
        let _ = request;
        Check::Pass
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Config");
        debug
            .field("secrets", &self.secrets)
            .field("body_limit", &self.body_limit);
        #[cfg(feature = "replay")]
        debug.field("replay", &self.replay);
        debug.finish_non_exhaustive()
    }
}
