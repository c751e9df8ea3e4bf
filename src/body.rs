//! The body handed to the inner service, and the body of the responses.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::HeaderMap;
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
    pub(crate) fn bytes(&self) -> &Bytes {
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
    /// The response body of the crate's middleware: the inner service's body, or a body the
    /// middleware answered with itself (a refusal's short message, a repeated delivery's
    /// recorded answer, the inbox's empty 200).
    ///
    /// It implements `Default` when the inner body does, so the layers compose with layers
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
        Body { #[pin] body: B },
        Full { bytes: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// The inner service's body.
    pub(crate) fn new(body: B) -> Self {
        Self {
            inner: Inner::Body { body },
        }
    }

    /// A body of these bytes, answered by the middleware itself.
    pub(crate) fn full(bytes: Bytes) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        Self {
            inner: Inner::Full { bytes },
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

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().inner.project() {
            InnerProj::Body { body } => body.poll_frame(cx),
            InnerProj::Full { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Body { body } => body.is_end_stream(),
            Inner::Full { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Body { body } => body.size_hint(),
            Inner::Full { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
