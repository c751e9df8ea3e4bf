//! The body handed to the inner service, and the body of the responses.

use std::{
    convert::Infallible,
    fmt,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// The request body the inner service receives: the verified bytes, exactly as they
/// arrived, followed by the request's trailers if it had any. The signing side forwards the
/// same type under the name [`SignedBody`](crate::SignedBody).
///
/// It is an ordinary [`http_body::Body`] with `Data = Bytes`: axum's extractors (`Bytes`,
/// `String`, `Json<T>`) and tonic's router consume it as they would any body, and a hyper
/// `service_fn` can take `Request<VerifiedBody>` and read it with
/// [`into_bytes`](Self::into_bytes), without waiting.
///
/// ```
/// use authgear_webhook::VerifiedBody;
/// use http_body_util::BodyExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = VerifiedBody::default();
/// assert!(body.collect().await.unwrap().to_bytes().is_empty());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct VerifiedBody {
    /// Empty once polled (an empty body has no data frame).
    data: Bytes,
    /// Boxed: rare, and the body is moved and boxed (by axum) with every request: 40 bytes
    /// rather than 128.
    trailers: Option<Box<HeaderMap>>,
}

impl VerifiedBody {
    #[inline]
    pub(crate) fn new(data: Bytes, trailers: Option<Box<HeaderMap>>) -> Self {
        Self { data, trailers }
    }

    /// The verified bytes, while not yet polled.
    #[cfg_attr(not(feature = "replay"), allow(dead_code))]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The verified bytes, without the trailers. Does not copy.
    ///
    /// ```
    /// # use authgear_webhook::VerifiedBody;
    /// fn parse(body: VerifiedBody) -> serde_json::Result<serde_json::Value> {
    ///     serde_json::from_slice(&body.into_bytes())
    /// }
    /// # assert!(parse(VerifiedBody::default()).is_err());
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.data
    }
}

impl Body for VerifiedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = if self.data.is_empty() {
            self.trailers
                .take()
                .map(|trailers| Frame::trailers(*trailers))
        } else {
            Some(Frame::data(std::mem::take(&mut self.data)))
        };
        Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64)
    }
}

pin_project! {
    /// The response body of [`VerifySignature`](crate::VerifySignature): the inner service's
    /// body, or the short message of a refusal.
    ///
    /// It implements `Default` when the inner body does, so the layer composes with layers
    /// that need it (tower-http's `TimeoutLayer`, for one).
    ///
    /// ```
    /// use authgear_webhook::ResponseBody;
    /// use http_body::Body;
    ///
    /// let body = ResponseBody::<http_body_util::Empty<bytes::Bytes>>::default();
    /// assert!(body.is_end_stream());
    /// ```
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    #[derive(Debug)]
    enum Inner<B> {
        Body { #[pin] body: B, tap: Option<Box<dyn Tap>> },
        Rejection { message: Option<Bytes> },
    }
}

/// Sees a response on its way out of the layer: replay protection records the answer to
/// the first copy of a delivery. Dropped before [`end`](Self::end), it decides alone.
pub(crate) trait Tap: fmt::Debug + Send + Sync {
    /// The inner service's status and headers; `false`: nothing to see, drop the tap.
    fn head(&mut self, status: StatusCode, headers: &HeaderMap) -> bool;
    /// A data frame of the body.
    fn data(&mut self, data: &Bytes);
    /// The body ended (`complete`), or failed.
    fn end(&mut self, complete: bool);
    /// The body said it has ended (`is_end_stream`): a server then stops polling it, and
    /// drops it without the last poll that would have called [`end`](Self::end).
    fn at_end(&self);
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(body: B) -> Self {
        Self::tapped(body, None)
    }

    /// The inner service's body, shown to `tap` frame by frame.
    pub(crate) fn tapped(body: B, tap: Option<Box<dyn Tap>>) -> Self {
        Self {
            inner: Inner::Body { body, tap },
        }
    }

    pub(crate) fn rejection(message: Bytes) -> Self {
        let message = (!message.is_empty()).then_some(message);
        Self {
            inner: Inner::Rejection { message },
        }
    }
}

impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().inner.project() {
            InnerProj::Body { mut body, tap } => {
                let Some(seen) = tap else {
                    return body.poll_frame(cx);
                };
                let frame = ready!(body.as_mut().poll_frame(cx));
                let ended = match &frame {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            seen.data(data);
                        }
                        // A server stops polling a body that says it has ended.
                        body.is_end_stream().then_some(true)
                    }
                    Some(Err(_)) => Some(false),
                    None => Some(true),
                };
                if let Some(complete) = ended {
                    seen.end(complete);
                    *tap = None;
                }
                Poll::Ready(frame)
            }
            InnerProj::Rejection { message } => {
                Poll::Ready(message.take().map(|m| Ok(Frame::data(m))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Body { body, tap } => {
                let ended = body.is_end_stream();
                if let (true, Some(tap)) = (ended, tap) {
                    tap.at_end();
                }
                ended
            }
            Inner::Rejection { message } => message.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Body { body, .. } => body.size_hint(),
            Inner::Rejection { message } => {
                SizeHint::with_exact(message.as_ref().map_or(0, |m| m.len() as u64))
            }
        }
    }
}
