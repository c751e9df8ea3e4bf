use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{config::Snapshot, deadline::Deadline};
use crate::{
    BodyReservation, Envelope, Rejection, RejectionKind, VerifiedBody,
    body::ResponseBody,
    collect::{Collector, Stop},
    envelope::Endpoint,
    rejection::is_grpc,
    signature::Tag,
    span::DeliverySpan,
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
        // Entered on each poll: what the layers inside log is within the delivery's span.
        span: DeliverySpan,
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
            collector: Collector<Snapshot>,
            tag: Tag,
            deadline: Deadline,
            parts: Option<Parts>,
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
    pub(super) fn collecting(
        parts: Parts,
        body: B,
        collector: Collector<Snapshot>,
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
            span: DeliverySpan::new(),
        }
    }

    /// Refuses a request before reading its body.
    pub(super) fn rejected(kind: RejectionKind, headers: &HeaderMap) -> Self {
        Self {
            state: State::rejected(kind, headers),
            room: BodyReservation::default(),
            span: DeliverySpan::new(),
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

/// The body has ended: checks the signature, and calls the inner service only if it
/// matched, with the [`Verified`](crate::Verified) mark and the [`Envelope`] (whose `id` and
/// `type` the span records).
fn body_ended<S, B>(
    collector: &mut Collector<Snapshot>,
    tag: &Tag,
    mut parts: Parts,
    mut service: S,
    span: &DeliverySpan,
) -> State<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    let (verified, body) = match collector.verify(tag) {
        Ok(verified) => verified,
        Err(kind) => return State::rejected(kind, &parts.headers),
    };
    let endpoint = match &collector.config().settings().endpoint {
        Some(name) => Endpoint::Named(name.clone()),
        None => Endpoint::Path(parts.uri.path_and_query().cloned()),
    };
    let envelope = Envelope::new(endpoint, body.bytes().clone());
    span.record(&envelope);
    crate::metrics::verified();
    parts.extensions.insert(verified);
    parts.extensions.insert(envelope);
    State::Calling {
        future: service.call(Request::from_parts(parts, body)),
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
        let _entered = this.span.enter();
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
                        Poll::Ready(read) => Some(read),
                        // The body makes us wait: within its deadline only.
                        Poll::Pending => {
                            if !deadline.expired(collector.config().settings().body_deadline, cx) {
                                return Poll::Pending;
                            }
                            None
                        }
                    };
                    let (Some(parts), Some(service)) = (parts.take(), service.take()) else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let refused = |kind| State::rejected(kind, &parts.headers);
                    let next = match read {
                        Some(Ok(())) => body_ended(collector, tag, parts, service, this.span),
                        Some(Err(Stop::TooLarge)) => refused(RejectionKind::BodyTooLarge),
                        Some(Err(Stop::NoRoom(kind))) => refused(kind),
                        Some(Err(Stop::Unreadable(_))) => refused(RejectionKind::BodyUnreadable),
                        None => refused(RejectionKind::BodyDeadline),
                    };
                    state.set(next);
                }
                StateProj::Calling { future } => {
                    let Poll::Ready(response) = future.poll(cx) else {
                        return Poll::Pending;
                    };
                    room.release();
                    let response = response?;
                    crate::metrics::answered(response.status());
                    return Poll::Ready(Ok(response.map(ResponseBody::new)));
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
