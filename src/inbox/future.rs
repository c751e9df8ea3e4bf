use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::{
    Inbox,
    store::{EventKey, NewEvent, StoreFuture, Stored},
};
use crate::{Rejection, RejectionKind, ResponseBody, metrics, rejection::is_grpc};

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
        Storing { stored: StoreFuture<Stored>, inbox: Inbox, receipt: Option<Receipt> },
        Rejected { rejection: Option<Rejection>, grpc: bool },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(super) fn rejected(kind: RejectionKind, headers: &http::HeaderMap) -> Self {
        Self {
            state: State::Rejected {
                rejection: Some(Rejection::new(kind)),
                grpc: is_grpc(headers),
            },
        }
    }

    pub(super) fn storing(inbox: Inbox, event: NewEvent) -> Self {
        let key = event.key.clone();
        let receipt = Some(Receipt {
            key: key.clone(),
            event_type: event.event_type.clone(),
            duplicate: false,
        });
        let since = metrics::Timer::start();
        let stored = inbox.shared.store.store(event);
        let stored: StoreFuture<Stored> = Box::pin(async move {
            let result = stored.await;
            let outcome = match &result {
                Ok(Stored::Stored) => {
                    tracing::debug!(endpoint = %key.endpoint, id = %key.id, "inbox: stored");
                    "stored"
                }
                Ok(Stored::Duplicate) => {
                    tracing::debug!(endpoint = %key.endpoint, id = %key.id, "inbox: duplicate");
                    "duplicate"
                }
                Err(error) => {
                    tracing::error!(endpoint = %key.endpoint, id = %key.id, %error, "inbox: not stored");
                    "not_stored"
                }
            };
            metrics::inbox_stored(outcome, since);
            result
        });
        Self {
            state: State::Storing {
                stored,
                inbox,
                receipt,
            },
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
            StateProj::Storing {
                stored,
                inbox,
                receipt,
            } => {
                let stored = ready!(stored.as_mut().poll(cx));
                let response = match (stored, receipt.take()) {
                    (Ok(stored), Some(mut receipt)) => {
                        // A duplicate is already stored: handled, or about to be. The sender
                        // gets the same 200.
                        receipt.duplicate = stored == Stored::Duplicate;
                        if !receipt.duplicate {
                            inbox.shared.wake.notify_one();
                        }
                        let mut response = Response::new(ResponseBody::full(Bytes::new()));
                        response.extensions_mut().insert(receipt);
                        response
                    }
                    _ => Rejection::new(RejectionKind::InboxUnavailable).into_response(false),
                };
                Poll::Ready(Ok(response))
            }
            StateProj::Rejected { rejection, grpc } => {
                let Some(rejection) = rejection.take() else {
                    panic!("ResponseFuture polled after completion");
                };
                Poll::Ready(Ok(rejection.into_response(*grpc)))
            }
        }
    }
}

/// Response extension of the inbox's 200: which event was stored, so that outer layers
/// (logging, metrics) can tell, as they read a [`Rejection`] from a refusal.
///
/// ```
/// use authgear_webhook::inbox::Receipt;
///
/// fn describe<B>(response: &http::Response<B>) -> Option<String> {
///     let receipt = response.extensions().get::<Receipt>()?;
///     Some(format!("queued {} {}", receipt.event_type, receipt.key.id))
/// }
/// # assert_eq!(describe(&http::Response::new(())), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Endpoint and `id`.
    pub key: EventKey,
    /// The event's `type`.
    pub event_type: String,
    /// The same key was already stored: this delivery was not stored again.
    pub duplicate: bool,
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
