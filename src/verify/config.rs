//! What the layer and its services share: the keyed MACs, the body limit, deadline and
//! budget.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use hmac::Mac;
use http::Request;
use subtle::ConstantTimeEq;

use super::{BodyBudget, deadline::DEFAULT_BODY_DEADLINE};
use crate::{
    RejectionKind, Secret, VerifiedBody,
    body::Tap,
    signature::{HmacSha256, TAG_LEN, keyed},
};

/// The default [`body_limit`](crate::VerifySignatureLayer::body_limit): 1 MiB.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Config {
    /// One MAC, keyed once here, per accepted non-empty secret, with the secret's index.
    pub(crate) keys: Macs,
    /// How many secrets were given, empty ones included.
    secrets: usize,
    pub(crate) body_limit: usize,
    /// How long a body may take to arrive once it first makes the layer wait.
    pub(crate) body_deadline: Option<Duration>,
    /// Shared by every clone of the config: the layer's clones and the layers derived.
    pub(crate) body_budget: Option<BodyBudget>,
    #[cfg(feature = "replay")]
    pub(crate) replay: Option<crate::replay::ReplayProtection>,
}

/// Keyed MACs, each with the index of its secret. Cloned per request: the first is kept
/// inline, so that clone allocates only when more than one secret is accepted.
#[derive(Clone, Default)]
pub(crate) struct Macs {
    first: Option<(usize, HmacSha256)>,
    others: Vec<(usize, HmacSha256)>,
}

impl Macs {
    fn push(&mut self, index: usize, mac: HmacSha256) {
        match self.first {
            None => self.first = Some((index, mac)),
            Some(_) => self.others.push((index, mac)),
        }
    }

    /// Feeds `bytes` to every MAC.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for (_, mac) in self.first.iter_mut().chain(&mut self.others) {
            mac.update(bytes);
        }
    }

    /// Finishes every MAC and compares each with `tag`: the index of the first secret whose
    /// MAC equals `tag`.
    pub(crate) fn matching(self, tag: &[u8; TAG_LEN]) -> Option<usize> {
        first_match(self.first.into_iter().chain(self.others), tag)
    }

    /// Hashes `bytes` with a copy of every keyed MAC and compares each with `tag`, as
    /// [`Self::matching`] does, without cloning the `Macs` first (a body hashed in one go).
    #[inline]
    pub(crate) fn verify(&self, bytes: &[u8], tag: &[u8; TAG_LEN]) -> Option<usize> {
        let macs = self.first.iter().chain(&self.others).map(|(index, keyed)| {
            let mut mac = keyed.clone();
            mac.update(bytes);
            (*index, mac)
        });
        first_match(macs, tag)
    }
}

/// Finishes every MAC and compares each with `tag` in constant time, all of them whatever
/// matched: the index of the first whose MAC equals `tag`.
#[inline]
fn first_match(
    macs: impl Iterator<Item = (usize, HmacSha256)>,
    tag: &[u8; TAG_LEN],
) -> Option<usize> {
    let mut matched = None;
    for (index, mac) in macs {
        if bool::from(mac.finalize().into_bytes().ct_eq(tag)) {
            matched = matched.or(Some(index));
        }
    }
    matched
}

/// What to do with a request whose signature matched.
#[cfg_attr(not(feature = "replay"), allow(dead_code))]
pub(crate) enum Check {
    /// Call the inner service.
    Pass,
    /// Refuse it.
    Reject(RejectionKind),
    /// Wait for an asynchronous check (the seen-ids store), then call, answer or refuse.
    Wait(Pin<Box<dyn Future<Output = Result<Verdict, RejectionKind>> + Send>>),
}

/// What an asynchronous check decided, when it did not refuse.
#[cfg_attr(not(feature = "replay"), allow(dead_code))]
pub(crate) enum Verdict {
    /// Call the inner service; the tap sees its response (replay protection records it).
    Call(Option<Box<dyn Tap>>),
    /// Answer this without calling it (a repeated delivery's recorded answer).
    Answer(http::Response<bytes::Bytes>),
}

impl Config {
    pub(crate) fn new(secret: Secret) -> Self {
        let mut config = Self {
            keys: Macs::default(),
            secrets: 0,
            body_limit: DEFAULT_BODY_LIMIT,
            body_deadline: Some(DEFAULT_BODY_DEADLINE),
            body_budget: Some(BodyBudget::default()),
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
            self.keys.push(self.secrets, keyed(secret.as_ref()));
        }
        self.secrets += 1;
    }

    /// The checks that follow a matching signature: replay protection, when enabled.
    #[inline]
    pub(crate) fn after_verify(&self, request: &Request<VerifiedBody>) -> Check {
        #[cfg(feature = "replay")]
        if let Some(replay) = &self.replay {
            return replay.check_request(request.uri().path(), request.body().bytes());
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
            .field("body_limit", &self.body_limit)
            .field("body_deadline", &self.body_deadline)
            .field("body_budget", &self.body_budget);
        #[cfg(feature = "replay")]
        debug.field("replay", &self.replay);
        debug.finish_non_exhaustive()
    }
}
