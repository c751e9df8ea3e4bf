use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Checked, RecordedAnswer, RecordingBody, body::Recorder, claim::Pending};
use crate::{Rejection, RejectionKind, ResponseBody, rejection::is_grpc};

type Check = Pin<Box<dyn Future<Output = Result<Checked, RejectionKind>> + Send>>;

pin_project! {
    /// Response future of [`ReplayService`](super::ReplayService): asks the seen-ids store
    /// whether the delivery is the first copy, then calls the inner service, repeats the
    /// first answer, or refuses.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        /// Asking the store (and waiting for the first copy's answer, if it is in flight);
        /// the request and the ready `service` wait here.
        Checking {
            check: Check,
            request: Option<Request<B>>,
            service: Option<S>,
        },
        /// The first copy: the inner service has it; `recorder` will see its answer.
        Calling {
            #[pin]
            future: S::Future,
            recorder: Option<Box<Recorder>>,
        },
        /// A repeat: the first copy's answer, given again without calling the inner service.
        Repeated { answer: Option<RecordedAnswer> },
        /// Refused: the inner service is never called.
        Rejected { rejection: Option<Rejection>, grpc: bool },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn checking(pending: Pending, request: Request<B>, service: S) -> Self {
        Self {
            state: State::Checking {
                check: Box::pin(pending.resolve()),
                request: Some(request),
                service: Some(service),
            },
        }
    }

    pub(super) fn calling(
        mut service: S,
        request: Request<B>,
        recorder: Option<Box<Recorder>>,
    ) -> Self {
        Self {
            state: State::Calling {
                future: service.call(request),
                recorder,
            },
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
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "Checking",
            State::Calling { .. } => "Calling",
            State::Repeated { .. } => "Repeated",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<RecordingBody<ResBody>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking {
                    check,
                    request,
                    service,
                } => {
                    let Poll::Ready(checked) = check.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    let (Some(request), Some(mut service)) = (request.take(), service.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next = match checked {
                        Ok(Checked::Fresh(claim)) => State::Calling {
                            future: service.call(request),
                            recorder: claim.into_recorder(),
                        },
                        Ok(Checked::Repeat(answer)) => {
                            #[cfg(feature = "tracing")]
                            tracing::debug!(
                                status = answer.status().as_u16(),
                                "authgear webhook delivery repeated: the first answer given again"
                            );
                            crate::metrics::repeated();
                            State::Repeated {
                                answer: Some(answer),
                            }
                        }
                        Err(kind) => State::Rejected {
                            rejection: Some(Rejection::new(kind)),
                            grpc: is_grpc(request.headers()),
                        },
                    };
                    state.set(next);
                }
                StateProj::Calling { future, recorder } => {
                    let Poll::Ready(response) = future.poll(cx) else {
                        return Poll::Pending;
                    };
                    // An error drops the recorder unanswered: the claim is released.
                    let response = response?;
                    let recorder = recorder.take().and_then(|mut recorder| {
                        recorder
                            .head(response.status(), response.headers())
                            .then_some(recorder)
                    });
                    return Poll::Ready(Ok(
                        response.map(|body| ResponseBody::new(RecordingBody::new(body, recorder)))
                    ));
                }
                StateProj::Repeated { answer } => {
                    let Some(answer) = answer.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(answer.into_response().map(ResponseBody::full)));
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
