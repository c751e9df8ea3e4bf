//! The mark a verified request carries.

/// Request extension inserted by [`VerifySignature`](crate::VerifySignature) on every request
/// it lets through: proof for handlers and extractors that the body was signed by Authgear.
/// [`Verifier::verify`](crate::Verifier::verify) returns it too.
///
/// ```
/// use authgear_webhook::Verified;
/// use http::Request;
///
/// fn is_trusted<B>(request: &Request<B>) -> bool {
///     request.extensions().get::<Verified>().is_some()
/// }
/// # assert!(!is_trusted(&Request::new(())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Verified {
    secret_index: usize,
}

impl Verified {
    #[inline]
    pub(crate) fn new(secret_index: usize) -> Self {
        Self { secret_index }
    }

    /// Which secret the signature matched: `0` for the one given to
    /// [`VerifySignatureLayer::new`](crate::VerifySignatureLayer::new) (or
    /// [`Verifier::new`](crate::Verifier::new)), then `1`, `2`, ... for those given to
    /// [`also_accept`](crate::VerifySignatureLayer::also_accept), in order. With
    /// [`Secrets`](crate::Secrets), the secret's place in the set the request was verified
    /// with.
    ///
    /// Useful during a secret rotation, to see when the old secret stops being used.
    ///
    /// ```
    /// # use authgear_webhook::{sign, VerifySignatureLayer, Verified, SIGNATURE_HEADER};
    /// # use http::{Request, Response};
    /// # use tower::{service_fn, ServiceExt, Layer};
    /// # use std::convert::Infallible;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = VerifySignatureLayer::new("new-secret").also_accept("old-secret");
    /// let service = layer.layer(service_fn(|request: Request<_>| async move {
    ///     let verified = request.extensions().get::<Verified>().copied();
    ///     Ok::<_, Infallible>(Response::new(format!("{}", verified.unwrap().secret_index())))
    /// }));
    /// let request = Request::post("/")
    ///     .header(SIGNATURE_HEADER, sign("old-secret", b"{}"))
    ///     .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
    ///     .unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// # use http_body_util::BodyExt;
    /// let body = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, "1");
    /// # }
    /// ```
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}
