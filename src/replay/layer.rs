use tower_layer::Layer;

use super::{ReplayProtection, ReplayService};

/// Layer that applies [`ReplayService`]: see the [module docs](super).
///
/// Place it inside [`VerifySignatureLayer`](crate::VerifySignatureLayer), which hands it the
/// verified [`Envelope`](crate::Envelope); a request without one is refused with 500
/// ([`RejectionKind::Unverified`](crate::RejectionKind::Unverified)).
#[derive(Debug, Clone)]
#[must_use]
pub struct ReplayLayer {
    protection: ReplayProtection,
}

impl ReplayLayer {
    /// Keeps stale and repeated deliveries from the inner service, as `protection` says.
    ///
    /// ```
    /// use authgear_webhook::replay::{ReplayLayer, ReplayProtection};
    ///
    /// let layer = ReplayLayer::new(ReplayProtection::in_memory());
    /// ```
    pub fn new(protection: ReplayProtection) -> Self {
        Self { protection }
    }
}

impl<S> Layer<S> for ReplayLayer {
    type Service = ReplayService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayService::new(inner, self.protection.clone())
    }
}
