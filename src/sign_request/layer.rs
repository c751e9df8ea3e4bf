use std::sync::Arc;

use tower_layer::Layer;

use super::{SignRequest, config::Config};
use crate::Secret;

/// Layer that applies [`SignRequest`]: see the [module docs](crate::sign_request).
#[derive(Debug, Clone)]
#[must_use]
pub struct SignRequestLayer {
    config: Arc<Config>,
}

impl SignRequestLayer {
    /// Signs request bodies with `secret`, up to 1 MiB.
    ///
    /// ```
    /// use authgear_webhook::{Secret, SignRequestLayer};
    ///
    /// let layer = SignRequestLayer::new("my-webhook-secret");
    /// let layer = SignRequestLayer::new(Secret::from(b"raw bytes".to_vec()));
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            config: Arc::new(Config::new(&secret.into())),
        }
    }

    /// Fails requests whose body is larger than `bytes` (default 1 MiB) with a
    /// [`SignError`](crate::SignError) of kind
    /// [`BodyTooLarge`](crate::SignErrorKind::BodyTooLarge), without sending them. At most
    /// that many bytes are buffered per request.
    ///
    /// ```
    /// use authgear_webhook::SignRequestLayer;
    ///
    /// let layer = SignRequestLayer::new("my-webhook-secret").body_limit(64 * 1024);
    /// ```
    pub fn body_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = bytes;
        self
    }
}

impl<S> Layer<S> for SignRequestLayer {
    type Service = SignRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignRequest::from_config(inner, self.config.clone())
    }
}
