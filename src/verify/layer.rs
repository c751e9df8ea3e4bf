use std::sync::Arc;

use tower_layer::Layer;

use super::{VerifySignature, config::Config};
use crate::Secret;

/// Layer that applies [`VerifySignature`]: see the [module docs](crate::verify).
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifySignatureLayer {
    config: Arc<Config>,
}

impl VerifySignatureLayer {
    /// Accepts bodies signed with `secret`, up to 1 MiB.
    ///
    /// An empty secret matches no signature: with an empty key anybody could sign.
    ///
    /// ```
    /// use authgear_webhook::{Secret, VerifySignatureLayer};
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret");
    /// let layer = VerifySignatureLayer::new(Secret::from(b"raw bytes".to_vec()));
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            config: Arc::new(Config::new(secret.into())),
        }
    }

    /// Also accepts bodies signed with `secret`. Call it once per extra secret, e.g. to
    /// accept the old and the new secret while rotating.
    ///
    /// ```
    /// use authgear_webhook::VerifySignatureLayer;
    ///
    /// let layer = VerifySignatureLayer::new("new-secret").also_accept("old-secret");
    /// ```
    pub fn also_accept(mut self, secret: impl Into<Secret>) -> Self {
        Arc::make_mut(&mut self.config)
            .verifier
            .accept(secret.into());
        self
    }

    /// Refuses bodies larger than `bytes` with 413 (default 1 MiB). At most that many bytes
    /// are buffered per request.
    ///
    /// ```
    /// use authgear_webhook::VerifySignatureLayer;
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret").body_limit(64 * 1024);
    /// ```
    pub fn body_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = bytes;
        self
    }

    /// Also refuses stale and repeated deliveries, once the signature is verified: see
    /// [`replay`](crate::replay).
    ///
    /// ```
    /// use authgear_webhook::{replay::ReplayProtection, VerifySignatureLayer};
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret")
    ///     .replay_protection(ReplayProtection::in_memory());
    /// ```
    #[cfg(feature = "replay")]
    #[cfg_attr(docsrs, doc(cfg(feature = "replay")))]
    pub fn replay_protection(mut self, protection: crate::replay::ReplayProtection) -> Self {
        Arc::make_mut(&mut self.config).replay = Some(protection);
        self
    }
}

impl<S> Layer<S> for VerifySignatureLayer {
    type Service = VerifySignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifySignature::from_config(inner, self.config.clone())
    }
}
