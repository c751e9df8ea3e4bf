use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::{Inbox, InboxLayer, ResponseFuture, store::EventKey, store::NewEvent};
use crate::{Envelope, RejectionKind, ResponseBody, event::is_blocking_type};

/// Stores verified non-blocking deliveries in the [`Inbox`] and answers 200 once they are
/// synced; passes everything else to the inner service: see the [module docs](super).
#[derive(Debug, Clone)]
pub struct InboxService<S> {
    inner: S,
    inbox: Inbox,
}

impl<S> InboxService<S> {
    /// Wraps `inner`.
    ///
    /// ```no_run
    /// use authgear_webhook::inbox::{Inbox, InboxService, SqliteStore};
    /// # let inner = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    /// let service = InboxService::new(inner, Inbox::new(SqliteStore::open("inbox.sqlite3")?));
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn new(inner: S, inbox: Inbox) -> Self {
        Self { inner, inbox }
    }

    /// A layer for this service: [`InboxLayer::new`].
    ///
    /// ```no_run
    /// use authgear_webhook::inbox::{Inbox, InboxService, SqliteStore};
    ///
    /// let layer = InboxService::<()>::layer(Inbox::new(SqliteStore::open("inbox.sqlite3")?));
    /// # Ok::<_, authgear_webhook::inbox::StoreError>(())
    /// ```
    pub fn layer(inbox: Inbox) -> InboxLayer {
        InboxLayer::new(inbox)
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InboxService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Only verified deliveries are stored, read from the verifying layer's envelope.
        let Some(envelope) = request.extensions().get::<Envelope>() else {
            return ResponseFuture::rejected(RejectionKind::Unverified, request.headers());
        };
        // A non-blocking event is stored; anything else (not an event, a blocking event)
        // is the inner service's to answer, as without the inbox.
        if let (Some(id), Some(event_type)) = (envelope.id(), envelope.event_type())
            && !is_blocking_type(event_type)
        {
            let event = NewEvent {
                key: EventKey::new(envelope.endpoint(), id),
                event_type: event_type.to_owned(),
                body: envelope.bytes().clone(),
                recovered: false,
            };
            return ResponseFuture::storing(self.inbox.clone(), event);
        }
        let not_ready = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, not_ready);
        ResponseFuture::inner(ready.call(request))
    }
}
