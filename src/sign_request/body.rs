//! The body [`SignRequest`](super::SignRequest) forwards: the bytes it signed.

/// The request body the inner client receives from [`SignRequest`](super::SignRequest): the
/// exact bytes that were signed, in one frame, followed by the request's trailers if it had
/// any.
///
/// It is the body the verifying side hands over, [`VerifiedBody`](crate::VerifiedBody),
/// under the signing side's name: one collector reads both ways, and both bodies are the
/// bytes it read. An ordinary [`http_body::Body`] with `Data = Bytes` and an exact size
/// hint, so clients that are generic over the body (hyper-util's `Client<C, B>`, hyper's
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
pub type SignedBody = crate::VerifiedBody;
