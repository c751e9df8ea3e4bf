use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Buf;
use http::{Request, Response, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{
    collect::Collector,
    config::{Check, Config},
};
use crate::{Rejection, RejectionKind, VerifiedBody, body::ResponseBody};

pin_project! {
    /// Response future of [`VerifySignature`](crate::VerifySignature): reads and checks the
    /// body, then calls the inner service or answers the refusal.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<VerifiedBody>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<VerifiedBody>>,
    {
        /// Reading the body into the collector; `parts` and the ready `service` wait here.
        Collecting {
            #[pin]
            body: B,
            collector: Collector,
            config: Arc<Config>,
            parts: Option<Parts>,
            service: Option<S>,
        },
        /// The signature matched; an asynchronous check (replay protection) is running.
        Checking {
            check: Pin<Box<dyn Future<Output = Result<(), RejectionKind>> + Send>>,
            request: Option<Request<VerifiedBody>>,
            service: Option<S>,
        },
        /// The body was verified; the inner service has the request.
        Calling {
            #[pin]
            future: S::Future,
        },
        /// Refused: the inner service is never called.
        Rejected { rejection: Option<Rejection> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    pub(super) fn collecting(
        parts: Parts,
        body: B,
        collector: Collector,
        config: Arc<Config>,
        service: S,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                collector,
                config,
                parts: Some(parts),
                service: Some(service),
            },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        Self {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut state = self.as_mut().project().state;
            match state.as_mut().project() {
                StateProj::Collecting {
                    body,
                    collector,
                    config,
                    parts,
                    service,
                } => {
                    let outcome = match ready!(body.poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(mut data) => {
                                let data = data.copy_to_bytes(data.remaining());
                                collector.push_data(data).err()
                            }
                            Err(frame) => {
                                if let Ok(trailers) = frame.into_trailers() {
                                    collector.push_trailers(trailers);
                                }
                                None
                            }
                        },
                        Some(Err(_)) => Some(RejectionKind::BodyUnreadable),
                        // The end of the body: only now is the signature known to match.
                        None => match (collector.finish(), parts.take(), service.take()) {
                            (Ok((verified, body)), Some(mut parts), Some(mut service)) => {
                                parts.extensions.insert(verified);
                                let request = Request::from_parts(parts, body);
                                match config.after_verify(&request) {
                                    Check::Pass => {
                                        let future = service.call(request);
                                        state.set(State::Calling { future });
                                        None
                                    }
                                    Check::Reject(kind) => Some(kind),
                                    Check::Wait(check) => {
                                        state.set(State::Checking {
                                            check,
                                            request: Some(request),
                                            service: Some(service),
                                        });
                                        None
                                    }
                                }
                            }
                            (Err(kind), _, _) => Some(kind),
                            (Ok(_), _, _) => unreachable!("the request is taken only once"),
                        },
                    };
                    if let Some(kind) = outcome {
                        state.set(State::Rejected {
                            rejection: Some(Rejection::new(kind)),
                        });
                    }
                }
                StateProj::Checking {
                    check,
                    request,
                    service,
                } => match (
                    ready!(check.as_mut().poll(cx)),
                    request.take(),
                    service.take(),
                ) {
                    (Ok(()), Some(request), Some(mut service)) => {
                        let future = service.call(request);
                        state.set(State::Calling { future });
                    }
                    (Err(kind), _, _) => state.set(State::Rejected {
                        rejection: Some(Rejection::new(kind)),
                    }),
                    (Ok(()), _, _) => unreachable!("the request is taken only once"),
                },
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::new)));
                }
                StateProj::Rejected { rejection } => {
                    let Some(rejection) = rejection.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(rejection.into_response()));
                }
            }
        }
    }
}
