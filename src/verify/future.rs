use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{Request, Response, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{collect::Collector, config::Check, service::is_grpc};
use crate::{Rejection, RejectionKind, VerifiedBody, body::ResponseBody};

pin_project! {
    /// Response future of [`VerifySignature`](crate::VerifySignature): reads and checks the
    /// body, then calls the inner service or answers the refusal.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
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
        /// Refused: the inner service is never called. `grpc`: whether the request is a
        /// gRPC call, to answer the gRPC way.
        Rejected { rejection: Option<Rejection>, grpc: bool },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    pub(super) fn collecting(parts: Parts, body: B, collector: Collector, service: S) -> Self {
        Self {
            state: State::Collecting {
                body,
                collector,
                parts: Some(parts),
                service: Some(service),
            },
        }
    }

    pub(super) fn rejected(kind: RejectionKind, grpc: bool) -> Self {
        Self {
            state: State::rejected(kind, grpc),
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Collecting { .. } => "Collecting",
            State::Checking { .. } => "Checking",
            State::Calling { .. } => "Calling",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B> State<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    fn rejected(kind: RejectionKind, grpc: bool) -> Self {
        Self::Rejected {
            rejection: Some(Rejection::new(kind)),
            grpc,
        }
    }
}

/// The body has ended: checks the signature, then what follows it (replay protection),
/// and calls the inner service only if all passed.
fn body_ended<S, B>(collector: &mut Collector, parts: Parts, mut service: S) -> State<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    let (verified, body) = match collector.finish() {
        Ok(verified) => verified,
        Err(kind) => return State::rejected(kind, is_grpc(&parts.headers)),
    };
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(verified);
    match collector.config().after_verify(&request) {
        Check::Pass => State::Calling {
            future: service.call(request),
        },
        Check::Reject(kind) => State::rejected(kind, is_grpc(request.headers())),
        Check::Wait(check) => State::Checking {
            check,
            request: Some(request),
            service: Some(service),
        },
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Collecting {
                    mut body,
                    collector,
                    parts,
                    service,
                } => {
                    // Takes every frame that is ready, then moves on once.
                    let next = loop {
                        let kind = match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => match frame.into_data() {
                                Ok(data) => match collector.push_data(data) {
                                    Ok(()) => continue,
                                    Err(kind) => kind,
                                },
                                Err(frame) => {
                                    if let Ok(trailers) = frame.into_trailers() {
                                        collector.push_trailers(trailers);
                                    }
                                    continue;
                                }
                            },
                            Some(Err(_)) => RejectionKind::BodyUnreadable,
                            None => match (parts.take(), service.take()) {
                                (Some(parts), Some(service)) => {
                                    break body_ended(collector, parts, service);
                                }
                                _ => unreachable!("the request is taken only once"),
                            },
                        };
                        let grpc = parts.as_ref().is_some_and(|parts| is_grpc(&parts.headers));
                        break State::rejected(kind, grpc);
                    };
                    state.set(next);
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
                    (Err(kind), request, _) => {
                        let grpc = request.is_some_and(|request| is_grpc(request.headers()));
                        state.set(State::rejected(kind, grpc));
                    }
                    (Ok(()), _, _) => unreachable!("the request is taken only once"),
                },
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::new)));
                }
                StateProj::Rejected { rejection, grpc } => {
                    let Some(rejection) = rejection.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(rejection.into_response(*grpc)));
                }
            }
        }
    }
}
