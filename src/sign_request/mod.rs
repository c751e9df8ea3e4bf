//! The client side: sends requests signed the way Authgear signs its webhooks.
//!
//! [`SignRequestLayer`] wraps a client (any tower `Service` taking `http::Request`) in
//! [`SignRequest`]. For each request it
//!
//! 1. fails at once, without sending, if `Content-Length` is above the body limit;
//! 2. reads the body frame by frame, feeding each frame to HMAC-SHA256 (keyed once, when the
//!    layer is built) as it arrives, and fails as soon as the limit is crossed (never
//!    buffering more), or if the body breaks off;
//! 3. sets [`SIGNATURE_HEADER`](crate::SIGNATURE_HEADER) to the lowercase hex of the HMAC,
//!    the value [`sign`](fn@crate::sign) returns, replacing any signature already there;
//! 4. calls the inner client with the same method, URI, headers and extensions and a
//!    [`SignedBody`] holding the exact bytes that were signed.
//!
//! Use it to send Authgear-style signed calls (a test harness replaying deliveries, a
//! service that forwards them, a gRPC client talking to a server behind
//! [`VerifySignatureLayer`](crate::VerifySignatureLayer)).
//!
//! Failing to sign is an `Err`, not a response: the request was never sent. The error type is
//! a boxed error, as tower's own layers return; it holds a [`SignError`] or the inner
//! client's error as it was.
//!
//! # Example
//!
//! With the defaults: bodies up to 1 MiB. Here the "client" is a server behind the verifying
//! layer, in memory.
//!
//! ```
//! use authgear_webhook::{SignRequestLayer, VerifiedBody, VerifySignatureLayer};
//! use http::{Request, Response, StatusCode};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! # use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let receiver = |secret| {
//!     VerifySignatureLayer::new(secret).layer(service_fn(|request: Request<VerifiedBody>| async {
//!         Ok::<_, Infallible>(Response::new(request.into_body().into_bytes()))
//!     }))
//! };
//! # use tower::Layer;
//!
//! let client = ServiceBuilder::new()
//!     .layer(SignRequestLayer::new("my-webhook-secret"))
//!     .service(receiver("my-webhook-secret"));
//! let request = Request::post("/").body(String::from(r#"{"type":"user.created"}"#)).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let client = ServiceBuilder::new()
//!     .layer(SignRequestLayer::new("not-the-secret"))
//!     .service(receiver("my-webhook-secret"));
//! let request = Request::post("/").body(String::from(r#"{"type":"user.created"}"#)).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```
//!
//! Customised: a 64 KiB limit. A larger body is not sent.
//!
//! ```
//! use authgear_webhook::{SignError, SignErrorKind, SignRequestLayer, SignedBody, SIGNATURE_HEADER};
//! use http::{Request, Response, StatusCode};
//! use tower::{service_fn, Layer, ServiceExt};
//! # use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sign = SignRequestLayer::new("my-webhook-secret").body_limit(64 * 1024);
//! let client = sign.layer(service_fn(|request: Request<SignedBody>| async move {
//!     let signature = request.headers()[SIGNATURE_HEADER].to_str().unwrap().to_owned();
//!     let body = request.into_body().into_bytes();
//!     assert_eq!(signature, authgear_webhook::sign("my-webhook-secret", &body));
//!     Ok::<_, Infallible>(Response::new(()))
//! }));
//!
//! let fits = Request::post("/").body(" ".repeat(64 * 1024)).unwrap();
//! let response = client.clone().oneshot(fits).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let too_large = Request::post("/").body(" ".repeat(64 * 1024 + 1)).unwrap();
//! let error = client.oneshot(too_large).await.unwrap_err();
//! assert_eq!(error.downcast_ref::<SignError>().unwrap().kind(), SignErrorKind::BodyTooLarge);
//! # }
//! ```
//!
//! # Real clients
//!
//! The inner client receives `Request<SignedBody>`. Clients that are generic over the request
//! body take it as it is: hyper-util's `Client<C, B>` (HTTP/1.1, or HTTP/2 with
//! `http2_only`), hyper's `SendRequest<B>`.
//!
//! ```no_run
//! use authgear_webhook::{SignRequestLayer, SignedBody};
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let http = Client::builder(TokioExecutor::new()).build_http::<SignedBody>();
//! let client = ServiceBuilder::new()
//!     .layer(SignRequestLayer::new("my-webhook-secret"))
//!     .service(http);
//! let request = http::Request::post("http://127.0.0.1:9999/")
//!     .header("content-type", "application/json")
//!     .body(String::from(r#"{"type":"user.created"}"#))?;
//! let response = client.oneshot(request).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A tonic client signs its calls with the same stack over an HTTP/2 hyper-util client
//! (`.http2_only(true)`), given to the generated client with `with_origin`: tonic sends its
//! own body type and the layer accepts any body. The repository's `examples/tonic` package
//! does this, and its tests call a gRPC server so.
//!
//! tonic's own `Channel` takes only tonic's body type: put
//! `.map_request(|request: http::Request<SignedBody>| request.map(tonic::body::Body::new))`
//! between the layer and the channel.
//!
//! # Caveats
//!
//! - The whole body is read before the request is sent: a streaming body that only ends when
//!   the server answers (a gRPC client- or bidirectional-streaming call) never gets sent.
//!   Sign unary calls only.
//! - As in Authgear's scheme, only the body is signed: not the method, the URI, the headers
//!   nor the time. Anybody who sees a signed request can send it again.

mod body;
mod config;
mod error;
mod future;
mod layer;
mod service;

pub use self::{
    body::SignedBody,
    error::{SignError, SignErrorKind},
    future::ResponseFuture,
    layer::SignRequestLayer,
    service::SignRequest,
};
