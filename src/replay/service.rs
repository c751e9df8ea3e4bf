use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::{RecordingBody, ReplayLayer, ReplayProtection, ResponseFuture};
use crate::{Envelope, RejectionKind, ResponseBody};

/// Middleware that keeps stale and repeated deliveries from the inner service: see the
/// [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct ReplayService<S> {
    inner: S,
    protection: ReplayProtection,
}

impl<S> ReplayService<S> {
    /// Wraps `inner`.
    ///
    /// ```
    /// use authgear_webhook::replay::{ReplayProtection, ReplayService};
    /// # let inner = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    /// let service = ReplayService::new(inner, ReplayProtection::in_memory());
    /// ```
    pub fn new(inner: S, protection: ReplayProtection) -> Self {
        Self { inner, protection }
    }

    /// A layer for this service: [`ReplayLayer::new`].
    ///
    /// ```
    /// use authgear_webhook::replay::{ReplayProtection, ReplayService};
    ///
    /// let layer = ReplayService::<()>::layer(ReplayProtection::in_memory());
    /// ```
    pub fn layer(protection: ReplayProtection) -> ReplayLayer {
        ReplayLayer::new(protection)
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ReplayService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<RecordingBody<ResBody>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let pending = match request.extensions().get::<Envelope>() {
            Some(envelope) => self.protection.start_envelope(envelope),
            None => Err(RejectionKind::Unverified),
        };
        let pending = match pending {
            Ok(pending) => pending,
            Err(kind) => return ResponseFuture::rejected(kind, request.headers()),
        };
        // The inner service was made ready by `poll_ready`: take that one into the future
        // and leave a clone behind.
        let not_ready = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, not_ready);
        match pending {
            // Let through without the store (`allow_missing_fields`).
            None => ResponseFuture::calling(ready, request, None),
            Some(pending) => ResponseFuture::checking(pending, request, ready),
        }
    }
}
