//! Why a request could not be signed.

use std::{error::Error, fmt};

/// A boxed error, as tower's own layers return.
pub(super) type BoxError = Box<dyn Error + Send + Sync>;

/// Why [`SignRequest`](super::SignRequest) could not sign a request; the request was not
/// sent.
///
/// [`SignRequest`](super::SignRequest)'s error type is a boxed error, as tower's own layers
/// use: it holds either this error or the inner client's error, as it was. Find this one with
/// `downcast_ref`. `Display` says what happened in a few words: it never shows the secret,
/// the signature or the body.
///
/// ```
/// use authgear_webhook::{SignError, SignErrorKind, SignRequestLayer, SignedBody};
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
/// # use std::convert::Infallible;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = SignRequestLayer::new("my-webhook-secret").body_limit(4).layer(
///     service_fn(|_: Request<SignedBody>| async { Ok::<_, Infallible>(Response::new(())) }),
/// );
///
/// let request = Request::post("/").body(String::from("too long")).unwrap();
/// let error = client.oneshot(request).await.unwrap_err();
/// let error = error.downcast_ref::<SignError>().unwrap();
/// assert_eq!(error.kind(), SignErrorKind::BodyTooLarge);
/// assert_eq!(error.to_string(), "request body too large to sign");
/// # }
/// ```
#[derive(Debug)]
pub struct SignError {
    kind: SignErrorKind,
    source: Option<BoxError>,
}

/// The kinds of [`SignError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignErrorKind {
    /// The body is larger than the configured
    /// [`body_limit`](super::SignRequestLayer::body_limit).
    BodyTooLarge,
    /// The body failed before its end; the body's error is the
    /// [`source`](std::error::Error::source).
    BodyUnreadable,
}

impl SignError {
    pub(super) fn too_large() -> Self {
        Self {
            kind: SignErrorKind::BodyTooLarge,
            source: None,
        }
    }

    pub(super) fn unreadable(source: BoxError) -> Self {
        Self {
            kind: SignErrorKind::BodyUnreadable,
            source: Some(source),
        }
    }

    /// What went wrong.
    ///
    /// ```
    /// # use authgear_webhook::{SignError, SignErrorKind};
    /// fn is_too_large(error: &SignError) -> bool {
    ///     error.kind() == SignErrorKind::BodyTooLarge
    /// }
    /// ```
    pub fn kind(&self) -> SignErrorKind {
        self.kind
    }
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            SignErrorKind::BodyTooLarge => "request body too large to sign",
            SignErrorKind::BodyUnreadable => "request body could not be read to sign it",
        })
    }
}

impl Error for SignError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|source| source as _)
    }
}
