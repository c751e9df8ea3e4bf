use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, Request, Response, header, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::config::Config;
use crate::{
    Rejection, RejectionKind, VerifiedBody,
    body::ResponseBody,
    collect::{Collector, Stop},
    signature::Tag,
};

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
        /// Reading the body into the collector; the signature, `parts` and the ready
        /// `service` wait here.
        Collecting {
            #[pin]
            body: B,
            collector: Collector<Config>,
            tag: Tag,
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

/// What to do with a request whose signature matched.
#[cfg_attr(not(feature = "replay"), allow(dead_code))]
pub(crate) enum Check {
    /// Call the inner service.
    Pass,
    /// Refuse it.
    Reject(RejectionKind),
    /// Wait for an asynchronous check (the seen-ids store), then call or refuse.
    Wait(Pin<Box<dyn Future<Output = Result<(), RejectionKind>> + Send>>),
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    pub(super) fn collecting(
        parts: Parts,
        body: B,
        collector: Collector<Config>,
        tag: Tag,
        service: S,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                collector,
                tag,
                parts: Some(parts),
                service: Some(service),
            },
        }
    }

    /// Refuses a request before reading its body.
    pub(super) fn rejected(kind: RejectionKind, headers: &HeaderMap) -> Self {
        Self {
            state: State::rejected(kind, headers),
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
    fn rejected(kind: RejectionKind, headers: &HeaderMap) -> Self {
        Self::Rejected {
            rejection: Some(Rejection::new(kind)),
            grpc: is_grpc(headers),
        }
    }
}

/// Whether the request is a gRPC call (`application/grpc`, `application/grpc+proto`, ...),
/// to be refused the gRPC way.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The body has ended: checks the signature, then what follows it (replay protection),
/// and calls the inner service only if all passed.
fn body_ended<S, B>(
    collector: &mut Collector<Config>,
    tag: &Tag,
    parts: Parts,
    service: S,
) -> State<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    let (verified, body) = match collector.verify(tag) {
        Ok(verified) => verified,
        Err(kind) => return State::rejected(kind, &parts.headers),
    };
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(verified);
    match after_verify(collector.config(), &request) {
        Check::Pass => call(service, request),
        Check::Reject(kind) => State::rejected(kind, request.headers()),
        Check::Wait(check) => State::Checking {
            check,
            request: Some(request),
            service: Some(service),
        },
    }
}

/// The checks that follow a matching signature: replay protection, when enabled.
#[inline]
fn after_verify(config: &Config, request: &Request<VerifiedBody>) -> Check {
    #[cfg(feature = "replay")]
    if let Some(replay) = &config.replay {
        return replay.check(request.uri().path(), request.body().bytes());
    }
    let _ = (config, request);
    Check::Pass
}

/// The one place the inner service is called: every check has passed.
#[inline]
fn call<S, B>(mut service: S, request: Request<VerifiedBody>) -> State<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    State::Calling {
        future: service.call(request),
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
                    body,
                    collector,
                    tag,
                    parts,
                    service,
                } => {
                    let read = ready!(collector.poll_body(body, cx));
                    let (Some(parts), Some(service)) = (parts.take(), service.take()) else {
                        unreachable!("the request is taken only once");
                    };
                    let next = match read {
                        Ok(()) => body_ended(collector, tag, parts, service),
                        Err(Stop::TooLarge) => {
                            State::rejected(RejectionKind::BodyTooLarge, &parts.headers)
                        }
                        Err(Stop::Unreadable(_)) => {
                            State::rejected(RejectionKind::BodyUnreadable, &parts.headers)
                        }
                    };
                    state.set(next);
                }
                StateProj::Checking {
                    check,
                    request,
                    service,
                } => {
                    let checked = ready!(check.as_mut().poll(cx));
                    let (Some(request), Some(service)) = (request.take(), service.take()) else {
                        unreachable!("the request is taken only once");
                    };
                    let next = match checked {
                        Ok(()) => call(service, request),
                        Err(kind) => State::rejected(kind, request.headers()),
                    };
                    state.set(next);
                }
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
