use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes};
use hmac::Mac;
use http::{HeaderValue, Request, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{SignError, SignedBody, error::BoxError};
use crate::{
    SIGNATURE_HEADER,
    buffer::{Buffer, TooLarge},
    signature::HmacSha256,
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
        /// Reading the body into the signer; `parts` and the ready `service` wait here.
        Buffering {
            #[pin]
            body: B,
            signer: Signer,
            parts: Option<Parts>,
            service: Option<S>,
        },
        /// Signed: the inner service has the request.
        Calling {
            #[pin]
            future: S::Future,
        },
        /// The body could not be signed: the inner service is never called.
        Failed { error: Option<SignError> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<SignedBody>>,
{
    pub(super) fn buffering(parts: Parts, body: B, signer: Signer, service: S) -> Self {
        Self {
            state: State::Buffering {
                body,
                signer,
                parts: Some(parts),
                service: Some(service),
            },
        }
    }

    pub(super) fn failed(error: SignError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<SignedBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Buffering { .. } => "Buffering",
            State::Calling { .. } => "Calling",
            State::Failed { .. } => "Failed",
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut state = self.as_mut().project().state;
            match state.as_mut().project() {
                StateProj::Buffering {
                    body,
                    signer,
                    parts,
                    service,
                } => {
                    // Read until the body says it has ended, not until `is_end_stream()`.
                    let outcome = match ready!(body.poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(mut data) => signer.push_data(data.copy_to_bytes(data.remaining())),
                            Err(frame) => {
                                if let Ok(trailers) = frame.into_trailers() {
                                    signer.buffer.push_trailers(trailers);
                                }
                                Ok(())
                            }
                        },
                        Some(Err(error)) => Err(SignError::unreadable(error.into())),
                        None => {
                            let (Some(mut parts), Some(mut service)) =
                                (parts.take(), service.take())
                            else {
                                unreachable!("the request is taken only once");
                            };
                            let (signature, body) = signer.finish();
                            parts.headers.insert(SIGNATURE_HEADER, signature);
                            let future = service.call(Request::from_parts(parts, body));
                            state.set(State::Calling { future });
                            Ok(())
                        }
                    };
                    if let Err(error) = outcome {
                        state.set(State::Failed { error: Some(error) });
                    }
                }
                StateProj::Calling { future } => {
                    return Poll::Ready(ready!(future.poll(cx)).map_err(Into::into));
                }
                StateProj::Failed { error } => {
                    let Some(error) = error.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Err(error.into()));
                }
            }
        }
    }
}

/// The bounded buffer: feeds each frame to the MAC as it arrives and keeps the bytes.
pub(super) struct Signer {
    mac: HmacSha256,
    buffer: Buffer,
}

impl Signer {
    pub(super) fn new(mac: HmacSha256, limit: usize, expected: u64) -> Self {
        Self {
            mac,
            buffer: Buffer::new(limit, expected),
        }
    }

    fn push_data(&mut self, data: Bytes) -> Result<(), SignError> {
        let bytes = self
            .buffer
            .push(data)
            .map_err(|TooLarge| SignError::too_large())?;
        self.mac.update(bytes);
        Ok(())
    }

    /// The signature header value and the body with the same bytes.
    fn finish(&mut self) -> (HeaderValue, SignedBody) {
        let tag = self.mac.clone().finalize().into_bytes();
        let signature = match HeaderValue::from_str(&hex::encode(tag)) {
            Ok(value) => value,
            Err(_) => unreachable!("hex is a valid header value"),
        };
        let (data, trailers) = self.buffer.take();
        (signature, SignedBody::new(data, trailers))
    }
}
