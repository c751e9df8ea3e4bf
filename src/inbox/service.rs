use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use serde::Deserialize;
use tower_service::Service;

use super::{Inbox, InboxLayer, ResponseFuture, store::EventKey, store::NewEvent};
use crate::{ResponseBody, Verified, VerifiedBody, event::is_blocking_type};

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
    /// # let inner = tower::service_fn(|_: http::Request<authgear_webhook::VerifiedBody>| async {
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

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The two fields the inbox reads before storing; serde skips the rest of the body.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
}

impl<S, ResBody> Service<Request<VerifiedBody>> for InboxService<S>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
        // Only verified bodies are stored; anything else (not an event, a blocking event)
        // is the inner service's to answer, as without the inbox.
        let event = match request.extensions().get::<Verified>() {
            Some(_) => serde_json::from_slice::<Envelope<'_>>(request.body().bytes()).ok(),
            None => None,
        };
        if let Some(event) = event.filter(|event| !is_blocking_type(&event.event_type)) {
            let endpoint = match &self.inbox.shared.endpoint {
                Some(endpoint) => endpoint.clone(),
                None => request.uri().path().to_owned(),
            };
            let event = NewEvent {
                key: EventKey::new(endpoint, event.id),
                event_type: event.event_type.into_owned(),
                body: Bytes::copy_from_slice(request.body().bytes()),
            };
            return ResponseFuture::storing(self.inbox.clone(), event);
        }
        let not_ready = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, not_ready);
        ResponseFuture::inner(ready.call(request))
    }
}
