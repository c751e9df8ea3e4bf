use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, header, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{budget::BodyReservation, config::Config, deadline::Deadline};
use crate::{
    Rejection, RejectionKind, VerifiedBody,
    body::{ResponseBody, Tap},
    collect::{Collector, Stop},
    signature::Tag,
};

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
        // The request's room in the body budget: returned when the future ends or is
        // dropped, whichever way (refused, answered, cancelled, unwound by a panic).
        room: BodyReservation,
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
            deadline: Deadline,
            parts: Option<Parts>,
            service: Option<S>,
        },
        /// The signature matched; an asynchronous check (replay protection) is running.
        Checking {
            check: Pin<Box<dyn Future<Output = Result<Verdict, RejectionKind>> + Send>>,
            request: Option<Request<VerifiedBody>>,
            service: Option<S>,
        },
        /// The body was verified; the inner service has the request. `tap` (replay
        /// protection) sees the response; dropped unanswered, it frees the delivery.
        Calling {
            #[pin]
            future: S::Future,
            tap: Option<Box<dyn Tap>>,
        },
        /// Answered without calling the inner service (a repeated delivery).
        Answered { response: Option<Response<Bytes>> },
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
    /// Wait for an asynchronous check (the seen-ids store), then call, answer or refuse.
    Wait(Pin<Box<dyn Future<Output = Result<Verdict, RejectionKind>> + Send>>),
}

/// What an asynchronous check decided, when it did not refuse.
#[cfg_attr(not(feature = "replay"), allow(dead_code))]
pub(crate) enum Verdict {
    /// Call the inner service; the tap sees its response (replay protection records it).
    Call(Option<Box<dyn Tap>>),
    /// Answer this without calling it (a repeated delivery's recorded answer).
    Answer(Response<Bytes>),
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
        room: BodyReservation,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                collector,
                tag,
                deadline: Deadline::default(),
                parts: Some(parts),
                service: Some(service),
            },
            room,
        }
    }

    /// Refuses a request before reading its body.
    pub(super) fn rejected(kind: RejectionKind, headers: &HeaderMap) -> Self {
        Self {
            state: State::rejected(kind, headers),
            room: BodyReservation::default(),
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
            State::Answered { .. } => "Answered",
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
        Check::Pass => call(service, request, None),
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
        return replay.check_request(request.uri().path(), request.body().bytes());
    }
    let _ = (config, request);
    Check::Pass
}

/// The one place the inner service is called: every check has passed. `tap` (replay
/// protection) will see its response.
#[inline]
fn call<S, B>(
    mut service: S,
    request: Request<VerifiedBody>,
    tap: Option<Box<dyn Tap>>,
) -> State<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    State::Calling {
        future: service.call(request),
        tap,
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (mut state, room) = (this.state, this.room);
        loop {
            match state.as_mut().project() {
                StateProj::Collecting {
                    body,
                    collector,
                    tag,
                    deadline,
                    parts,
                    service,
                } => {
                    let read = match collector.poll_body(body, cx, room) {
                        Poll::Ready(read) => read,
                        // The body makes us wait: within its deadline only.
                        Poll::Pending => {
                            if !deadline.expired(collector.config().body_deadline, cx) {
                                return Poll::Pending;
                            }
                            Err(Stop::Deadline)
                        }
                    };
                    let (Some(parts), Some(service)) = (parts.take(), service.take()) else {
                        unreachable!("the request is taken only once");
                    };
                    let refused = |kind| State::rejected(kind, &parts.headers);
                    let next = match read {
                        Ok(()) => body_ended(collector, tag, parts, service),
                        Err(Stop::TooLarge) => refused(RejectionKind::BodyTooLarge),
                        Err(Stop::Exhausted) => refused(RejectionKind::BudgetExhausted),
                        Err(Stop::Deadline) => refused(RejectionKind::BodyDeadline),
                        Err(Stop::Unreadable(_)) => refused(RejectionKind::BodyUnreadable),
                    };
                    state.set(next);
                }
                StateProj::Checking {
                    check,
                    request,
                    service,
                } => {
                    let Poll::Ready(checked) = check.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    let (Some(request), Some(service)) = (request.take(), service.take()) else {
                        unreachable!("the request is taken only once");
                    };
                    let next = match checked {
                        Ok(Verdict::Call(tap)) => call(service, request, tap),
                        Ok(Verdict::Answer(response)) => State::Answered {
                            response: Some(response),
                        },
                        Err(kind) => State::rejected(kind, request.headers()),
                    };
                    state.set(next);
                }
                StateProj::Calling { future, tap } => {
                    let Poll::Ready(response) = future.poll(cx) else {
                        return Poll::Pending;
                    };
                    room.release();
                    let response = response?;
                    let tap = tap.take().and_then(|mut tap| {
                        tap.head(response.status(), response.headers())
                            .then_some(tap)
                    });
                    return Poll::Ready(Ok(response.map(|body| ResponseBody::tapped(body, tap))));
                }
                StateProj::Answered { response } => {
                    let Some(response) = response.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    room.release();
                    // The recorded bytes, in the same fixed-bytes body as a refusal's.
                    return Poll::Ready(Ok(response.map(ResponseBody::rejection)));
                }
                StateProj::Rejected { rejection, grpc } => {
                    let Some(rejection) = rejection.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    room.release();
                    return Poll::Ready(Ok(rejection.into_response(*grpc)));
                }
            }
        }
    }
}
