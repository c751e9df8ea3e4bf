use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{
    Inbox,
    store::{NewEvent, StoreFuture, Stored},
};
use crate::{Rejection, RejectionKind, ResponseBody};

pin_project! {
    /// Response future of [`InboxService`](super::InboxService).
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] future: F },
        Storing { stored: StoreFuture<Stored>, inbox: Inbox },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(super) fn storing(inbox: Inbox, event: NewEvent) -> Self {
        let key = event.key.clone();
        let stored = inbox.shared.store.store(event);
        let stored: StoreFuture<Stored> = Box::pin(async move {
            let result = stored.await;
            match &result {
                Ok(Stored::Stored) => {
                    tracing::debug!(endpoint = %key.endpoint, id = %key.id, "inbox: stored")
                }
                Ok(Stored::Duplicate) => {
                    tracing::debug!(endpoint = %key.endpoint, id = %key.id, "inbox: duplicate")
                }
                Err(error) => {
                    tracing::error!(endpoint = %key.endpoint, id = %key.id, %error, "inbox: not stored")
                }
            }
            result
        });
        Self {
            state: State::Storing { stored, inbox },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(ResponseBody::new)))
            }
            StateProj::Storing { stored, inbox } => {
                let response = match ready!(stored.as_mut().poll(cx)) {
                    Ok(Stored::Stored) => {
                        inbox.shared.wake.notify_one();
                        Response::new(ResponseBody::rejection(bytes::Bytes::new()))
                    }
                    // Already stored: handled, or about to be. The sender gets the same 200.
                    Ok(Stored::Duplicate) => {
                        Response::new(ResponseBody::rejection(bytes::Bytes::new()))
                    }
                    Err(_) => Rejection::new(RejectionKind::InboxUnavailable).into_response(false),
                };
                Poll::Ready(Ok(response))
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
