//! The body [`SignRequest`](super::SignRequest) forwards: the bytes it signed.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// The request body the inner client receives from [`SignRequest`](super::SignRequest): the
/// exact bytes that were signed, in one frame, followed by the request's trailers if it had
/// any.
///
/// It is an ordinary [`http_body::Body`] with `Data = Bytes` and an exact size hint, so
/// clients that are generic over the body (hyper-util's `Client<C, B>`, hyper's
/// `SendRequest<B>`) send it as it is, with a `Content-Length`.
///
/// ```
/// use authgear_webhook::SignedBody;
/// use http_body::Body;
///
/// let body = SignedBody::default();
/// assert!(body.is_end_stream());
/// assert!(body.into_bytes().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct SignedBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl SignedBody {
    pub(super) fn new(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        let data = (!data.is_empty()).then_some(data);
        Self { data, trailers }
    }

    /// The signed bytes, without the trailers. Does not copy.
    ///
    /// ```
    /// # use authgear_webhook::SignedBody;
    /// fn length(body: SignedBody) -> usize {
    ///     body.into_bytes().len()
    /// }
    /// # assert_eq!(length(SignedBody::default()), 0);
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.data.unwrap_or_default()
    }
}

impl Body for SignedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.data.take() {
            Some(data) => Some(Frame::data(data)),
            None => self.trailers.take().map(Frame::trailers),
        };
        Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |data| data.len() as u64))
    }
}
