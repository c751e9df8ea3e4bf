//! The body of the admin service's answers: JSON, in one piece.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The body of an [`AdminService`](super::AdminService) answer: its JSON, in one frame.
/// An ordinary [`http_body::Body`] (`Data = Bytes`, never an error), so axum, hyper and
/// tower-http take it as they take any.
///
/// ```
/// use authgear_webhook::admin::AdminBody;
/// use http_body_util::BodyExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = AdminBody::default();
/// assert!(body.collect().await.unwrap().to_bytes().is_empty());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct AdminBody {
    /// `None` once polled.
    bytes: Option<Bytes>,
}

impl AdminBody {
    pub(crate) fn new(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        Self {
            bytes: (!bytes.is_empty()).then_some(bytes),
        }
    }
}

impl http_body::Body for AdminBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.bytes.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }
}
