use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::{
    VerifySignatureLayer,
    config::{Config, Source},
    future::ResponseFuture,
};
use crate::{
    BodyBudget, RejectionKind, Secret, VerifiedBody, Verifier,
    body::ResponseBody,
    collect::{Collector, declared_length},
    signature,
};

/// Middleware that lets through only requests whose body is signed by Authgear: see the
/// [module docs](crate::verify).
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifySignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> VerifySignature<S> {
    /// Wraps `inner`, accepting bodies signed with `secret` with the default settings.
    ///
    /// ```
    /// use authgear_webhook::VerifySignature;
    /// use tower::service_fn;
    /// # use std::convert::Infallible;
    ///
    /// let service = VerifySignature::new(
    ///     service_fn(|_: http::Request<authgear_webhook::VerifiedBody>| async {
    ///         Ok::<_, Infallible>(http::Response::new(String::new()))
    ///     }),
    ///     "my-webhook-secret",
    /// );
    /// ```
    pub fn new(inner: S, secret: impl Into<Secret>) -> Self {
        Self::from_config(
            inner,
            Arc::new(Config::new(Source::Fixed(Verifier::new(secret)))),
        )
    }

    pub(crate) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    define_inner_service_accessors!();
}

impl VerifySignature<()> {
    /// Returns a [`VerifySignatureLayer`] to configure: a shortcut for
    /// [`VerifySignatureLayer::new`].
    ///
    /// ```
    /// use authgear_webhook::VerifySignature;
    ///
    /// let layer = VerifySignature::layer("my-webhook-secret").body_limit(64 * 1024);
    /// ```
    pub fn layer(secret: impl Into<Secret>) -> VerifySignatureLayer {
        VerifySignatureLayer::new(secret)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifySignature<S>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let rejected = |kind| ResponseFuture::rejected(kind, request.headers());
        let tag = match signature::parse_header(request.headers()) {
            Ok(tag) => tag,
            Err(kind) => return rejected(kind),
        };
        let limit = self.config.body_limit;
        let declared = declared_length(&request);
        if declared > limit as u64 {
            return rejected(RejectionKind::BodyTooLarge);
        }
        let (parts, body) = request.into_parts();
        // The secrets in use now, for the whole body.
        let snapshot = match self.config.snapshot(&parts) {
            Ok(snapshot) => snapshot,
            Err(kind) => return ResponseFuture::rejected(kind, &parts.headers),
        };

        // The inner service was made ready by `poll_ready`: take that one into the future
        // and leave a clone behind, which will be made ready by the next `poll_ready`.
        let not_ready = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, not_ready);
        let room = self
            .config
            .body_budget
            .as_ref()
            .map(BodyBudget::reserve)
            .unwrap_or_default();
        let collector = Collector::new(snapshot, limit, declared);
        ResponseFuture::collecting(parts, body, collector, tag, ready, room)
    }
}
