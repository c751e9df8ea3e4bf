use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::Request;
use http_body::Body;
use tower_service::Service;

use super::{
    SignError, SignRequestLayer, SignedBody, config::Config, error::BoxError,
    future::ResponseFuture,
};
use crate::{
    Secret,
    collect::{Collector, declared_length},
};

/// Middleware for clients: buffers the request body, signs it the way Authgear does and sends
/// the same bytes with the signature header. See the [module docs](crate::sign_request).
#[derive(Debug, Clone)]
#[must_use]
pub struct SignRequest<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SignRequest<S> {
    /// Wraps `inner`, signing with `secret` with the default settings.
    ///
    /// ```
    /// use authgear_webhook::{SignRequest, SignedBody};
    /// use tower::service_fn;
    /// # use std::convert::Infallible;
    ///
    /// let client = SignRequest::new(
    ///     service_fn(|_: http::Request<SignedBody>| async {
    ///         Ok::<_, Infallible>(http::Response::new(String::new()))
    ///     }),
    ///     "my-webhook-secret",
    /// );
    /// ```
    pub fn new(inner: S, secret: impl Into<Secret>) -> Self {
        Self::from_config(inner, Arc::new(Config::new(&secret.into())))
    }

    pub(super) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    define_inner_service_accessors!();
}

impl SignRequest<()> {
    /// Returns a [`SignRequestLayer`] to configure: a shortcut for [`SignRequestLayer::new`].
    ///
    /// ```
    /// use authgear_webhook::SignRequest;
    ///
    /// let layer = SignRequest::layer("my-webhook-secret").body_limit(64 * 1024);
    /// ```
    pub fn layer(secret: impl Into<Secret>) -> SignRequestLayer {
        SignRequestLayer::new(secret)
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for SignRequest<S>
where
    S: Service<Request<SignedBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let limit = self.config.body_limit;
        let declared = declared_length(&request);
        if declared > limit as u64 {
            return ResponseFuture::rejected(SignError::too_large());
        }

        // The inner service was made ready by `poll_ready`: take that one into the future
        // and leave a clone behind, which will be made ready by the next `poll_ready`.
        let not_ready = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, not_ready);
        let (parts, body) = request.into_parts();
        let collector = Collector::new(self.config.clone(), limit, declared);
        ResponseFuture::collecting(parts, body, collector, ready)
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, convert::Infallible, io, pin::Pin};

    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Response, header};
    use http_body::Frame;
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::{SIGNATURE_HEADER, SignErrorKind, sign};

    const SECRET: &str = "Lx8k3mVq2ZpT9wR4yN6bC1dF7gH0jK5s";

    /// A body that yields the given frames one by one, with no size hint.
    struct Frames(VecDeque<Result<Frame<Bytes>, io::Error>>);

    impl Frames {
        fn new(chunks: &[&'static [u8]]) -> Self {
            let frames = chunks
                .iter()
                .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk))));
            Self(frames.collect())
        }

        fn then(mut self, frame: Result<Frame<Bytes>, io::Error>) -> Self {
            self.0.push_back(frame);
            self
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    /// What the inner client was sent: the signature header, the body and the trailers.
    type Sent = (Option<HeaderValue>, Bytes, Option<HeaderMap>);

    fn recorder() -> impl Service<
        Request<SignedBody>,
        Response = Response<Sent>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Sent>, Infallible>>,
    > + Clone {
        tower::service_fn(|request: Request<SignedBody>| async move {
            let (parts, body) = request.into_parts();
            let collected = body.collect().await?;
            let trailers = collected.trailers().cloned();
            let signature = parts.headers.get(SIGNATURE_HEADER).cloned();
            Ok(Response::new((signature, collected.to_bytes(), trailers)))
        })
    }

    #[tokio::test]
    async fn signs_the_exact_bytes_in_any_chunking() {
        let body = br#"{"type":"user.created","payload":{"note":"\u003cb\u003e"}}"#;
        let cases: &[&[&[u8]]] = &[
            &[],
            &[b""],
            &[b"body"],
            &[&body[..]],
            &[&body[..1], &body[1..2], &body[2..]],
            &[b"", &body[..10], b"", &body[10..]],
        ];
        for chunks in cases {
            let expected: Vec<u8> = chunks.concat();
            let client = SignRequestLayer::new(SECRET).layer(recorder());
            let response = client
                .oneshot(Request::new(Frames::new(chunks)))
                .await
                .expect("signed");
            let (signature, sent, trailers) = response.into_body();
            let want = sign(SECRET, &expected);
            assert_eq!(
                signature.as_ref().map(|s| s.as_bytes()),
                Some(want.as_bytes())
            );
            assert_eq!(sent, expected, "{chunks:?}");
            assert_eq!(trailers, None);
        }
    }

    #[tokio::test]
    async fn replaces_a_signature_and_keeps_everything_else() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("abc"));
        let body = Frames::new(&[b"bo", b"dy"]).then(Ok(Frame::trailers(trailers.clone())));
        let request = Request::put("/hooks?x=1")
            .header(SIGNATURE_HEADER, "stale")
            .header("x-other", "kept")
            .extension(7_u32)
            .body(body)
            .expect("request");
        let inner = tower::service_fn(|request: Request<SignedBody>| async move {
            assert_eq!(request.method(), http::Method::PUT);
            assert_eq!(request.uri(), "/hooks?x=1");
            assert_eq!(request.headers()["x-other"], "kept");
            assert_eq!(
                request.headers().get_all(SIGNATURE_HEADER).iter().count(),
                1
            );
            assert_eq!(request.extensions().get::<u32>(), Some(&7));
            Ok::<_, Infallible>(request)
        });
        let client = SignRequest::new(inner, "secret");
        let request = client.oneshot(request).await.expect("signed");
        assert_eq!(
            request.headers()[SIGNATURE_HEADER],
            // Authgear's own test vector.
            "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355"
        );
        let body = request.into_body();
        assert_eq!(body.size_hint().exact(), Some(4));
        let collected = body.collect().await.expect("infallible");
        assert_eq!(collected.trailers(), Some(&trailers));
        assert_eq!(collected.to_bytes(), "body");
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_sign_without_calling_the_inner_client() {
        let inner = tower::service_fn(|_: Request<SignedBody>| async {
            panic!("the inner client must not be called");
            #[allow(unreachable_code)]
            Ok::<Response<()>, Infallible>(Response::new(()))
        });
        let client = SignRequestLayer::new(SECRET).body_limit(4).layer(inner);
        let kind = |error: BoxError| error.downcast_ref::<SignError>().map(SignError::kind);

        let announced = Request::post("/")
            .header(header::CONTENT_LENGTH, "5")
            .body(Frames::new(&[]))
            .expect("request");
        let error = client
            .clone()
            .oneshot(announced)
            .await
            .expect_err("refused");
        assert_eq!(kind(error), Some(SignErrorKind::BodyTooLarge));

        let hinted = Request::new(http_body_util::Full::new(Bytes::from_static(b"12345")));
        let error = client.clone().oneshot(hinted).await.expect_err("refused");
        assert_eq!(kind(error), Some(SignErrorKind::BodyTooLarge));

        // The header is read even when the body knows a smaller length, as when verifying.
        let disagreeing = Request::post("/")
            .header(header::CONTENT_LENGTH, "2000000")
            .body(http_body_util::Full::new(Bytes::from_static(b"12")))
            .expect("request");
        let error = client
            .clone()
            .oneshot(disagreeing)
            .await
            .expect_err("refused");
        assert_eq!(kind(error), Some(SignErrorKind::BodyTooLarge));

        let crossing = Request::new(Frames::new(&[b"12", b"34", b"5"]));
        let error = client.clone().oneshot(crossing).await.expect_err("refused");
        assert_eq!(kind(error), Some(SignErrorKind::BodyTooLarge));

        let broken = Request::new(Frames::new(&[b"12"]).then(Err(io::Error::other("reset"))));
        let error = client.clone().oneshot(broken).await.expect_err("refused");
        let error = error.downcast::<SignError>().expect("a SignError");
        assert_eq!(error.kind(), SignErrorKind::BodyUnreadable);
        assert_eq!(
            error.to_string(),
            "request body could not be read to sign it"
        );
        let source = std::error::Error::source(&*error).expect("the body's error");
        assert_eq!(source.to_string(), "reset");

        // Exactly at the limit is fine.
        let client = SignRequestLayer::new(SECRET)
            .body_limit(4)
            .layer(recorder());
        let fits = Request::new(Frames::new(&[b"12", b"34"]));
        let response = client.oneshot(fits).await.expect("signed");
        assert_eq!(response.into_body().1, "1234");
    }

    #[tokio::test]
    async fn inner_errors_pass_through_as_they_are() {
        let inner = tower::service_fn(|_: Request<SignedBody>| async {
            Err::<Response<()>, _>(io::Error::other("connection refused"))
        });
        let error = SignRequest::new(inner, SECRET)
            .oneshot(Request::new(Frames::new(&[b"{}"])))
            .await
            .expect_err("inner error");
        let error = error.downcast::<io::Error>().expect("the inner error");
        assert_eq!(error.to_string(), "connection refused");
    }

    #[tokio::test]
    async fn calls_the_inner_client_that_was_made_ready() {
        let (mock, mut handle) =
            tower_test::mock::pair::<Request<SignedBody>, Response<&'static str>>();
        let mut client = SignRequestLayer::new(SECRET).layer(mock);
        handle.allow(1);
        std::future::poll_fn(|cx| Service::<Request<Frames>>::poll_ready(&mut client, cx))
            .await
            .expect("ready");
        let response = tokio::spawn(client.call(Request::new(Frames::new(&[b"ab", b"c"]))));

        let next = tokio::time::timeout(std::time::Duration::from_secs(10), handle.next_request());
        let (request, respond) = next
            .await
            .expect("the ready inner client was called")
            .expect("a request");
        assert_eq!(request.headers()[SIGNATURE_HEADER], sign(SECRET, b"abc"));
        assert_eq!(request.into_body().into_bytes(), "abc");
        respond.send_response(Response::new("done"));
        let response = response.await.expect("no panic").expect("ok");
        assert_eq!(*response.body(), "done");
    }

    #[test]
    fn debug_shows_no_key_and_everything_is_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let layer = SignRequestLayer::new("hunter2hunter2").body_limit(10);
        send_sync(&layer);
        let mut client = layer.layer(recorder());
        send_sync(&client);
        let debug = format!(
            "{layer:?} {:?} {layer:#?}",
            SignRequest::new((), "hunter2hunter2")
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("body_limit: 10"), "{debug}");
        let future = client.call(Request::new(http_body_util::Empty::<Bytes>::new()));
        send(&future);
    }
}
