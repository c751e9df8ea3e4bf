use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{SignError, SignedBody, config::Config, error::BoxError};
use crate::{
    SIGNATURE_HEADER,
    collect::{Collector, Stop, Unbounded},
    signature,
};

pin_project! {
    /// Response future of [`SignRequest`](super::SignRequest): reads and signs the body, then
    /// calls the inner service.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<SignedBody>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<SignedBody>>,
    {
        /// Reading the body into the collector; `parts` and the ready `service` wait here.
        Collecting {
            #[pin]
            body: B,
            collector: Collector<Arc<Config>>,
            parts: Option<Parts>,
            service: Option<S>,
        },
        /// Signed: the inner service has the request.
        Calling {
            #[pin]
            future: S::Future,
        },
        /// The body could not be signed: the inner service is never called.
        Rejected { error: Option<SignError> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<SignedBody>>,
{
    pub(super) fn collecting(
        parts: Parts,
        body: B,
        collector: Collector<Arc<Config>>,
        service: S,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                collector,
                parts: Some(parts),
                service: Some(service),
            },
        }
    }

    pub(super) fn rejected(error: SignError) -> Self {
        Self {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<SignedBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Collecting { .. } => "Collecting",
            State::Calling { .. } => "Calling",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<SignedBody>>,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Collecting {
                    body,
                    collector,
                    parts,
                    service,
                } => {
                    // Signing holds its own body: no budget, its limit only.
                    let read = ready!(collector.poll_body(body, cx, &mut Unbounded));
                    let (Some(mut parts), Some(mut service)) = (parts.take(), service.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next = match read {
                        Ok(()) => {
                            let (tag, body) = collector.sign();
                            parts
                                .headers
                                .insert(SIGNATURE_HEADER, signature::header_value(&tag));
                            let future = service.call(Request::from_parts(parts, body));
                            State::Calling { future }
                        }
                        Err(Stop::TooLarge) => State::Rejected {
                            error: Some(SignError::too_large()),
                        },
                        Err(Stop::Unreadable(error)) => State::Rejected {
                            error: Some(SignError::unreadable(error.into())),
                        },
                        Err(Stop::NoRoom(never)) => match never {},
                    };
                    state.set(next);
                }
                StateProj::Calling { future } => {
                    return Poll::Ready(ready!(future.poll(cx)).map_err(Into::into));
                }
                StateProj::Rejected { error } => {
                    let Some(error) = error.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Err(error.into()));
                }
            }
        }
    }
}
