//! The middleware: lets through only requests whose body is signed by Authgear.
//!
//! [`VerifySignatureLayer`] wraps a service in [`VerifySignature`]. For each request it
//!
//! 1. reads the signature header ([`SIGNATURE_HEADER`](crate::SIGNATURE_HEADER)) and refuses
//!    with 401 at once if it is missing, repeated or not 64 hex characters;
//! 2. refuses with 413 at once if `Content-Length` (or the body's own lower bound) is above
//!    the body limit;
//! 3. reads the body frame by frame, feeding it to HMAC-SHA256 as it arrives, and refuses
//!    with 413 as soon as the limit is crossed (never buffering more), with 400 if the body
//!    breaks off, with 408 if it has not fully arrived within the
//!    [body deadline](VerifySignatureLayer::body_deadline) (10 s), and with 503 at once if
//!    the [body budget](crate::BodyBudget) shared by all requests in flight (32 MiB) has no room
//!    for what the buffer would hold with the next frame;
//! 4. compares the signature with the HMAC under each accepted secret, in constant time, and
//!    refuses with 401 if none matches (the same code as [`Verifier`](crate::Verifier)).
//!    The accepted secrets are fixed when the layer is built, or, from
//!    [`Secrets`](crate::Secrets) or a [`SecretSource`](crate::SecretSource), those in use
//!    when the request arrived (taken before step 3, a source with none refusing with 401):
//!    a change never affects a request in flight;
//! 5. calls the inner service with the same method, URI, headers and extensions, a
//!    [`Verified`](crate::Verified) mark, an [`Envelope`](crate::Envelope) (the signed bytes,
//!    the [endpoint](VerifySignatureLayer::endpoint), and the envelope's `id`, `type` and
//!    timestamp, read once when first asked) and a [`VerifiedBody`](crate::VerifiedBody)
//!    holding the exact bytes that were signed.
//!
//! What follows the signature is a layer of its own, inside this one, in the order a
//! request takes: replay protection ([`replay`](crate::replay)), then the inbox
//! ([`inbox`](crate::inbox)), then the handler. They read the [`Envelope`](crate::Envelope),
//! so they take any body and go wherever a tower layer goes.
//!
//! A refusal is a response, never an `Err`: a short plain-text message that reveals nothing
//! (no secret, no expected signature, no body), with the [`Rejection`](crate::Rejection) in
//! its extensions for outer layers. The inner service is not called.
//!
//! # Floods of slow bodies
//!
//! The layer must hold a body before it can know who sent it (the HMAC covers all of it),
//! so anyone can make it hold memory. Three bounds make that harmless:
//!
//! - per request: [`body_limit`](VerifySignatureLayer::body_limit) (1 MiB);
//! - in total: the [`BodyBudget`](crate::BodyBudget) (32 MiB), shared by the layer's clones, which counts what
//!   the buffers of all requests in flight hold, reserved as bytes arrive and returned when
//!   the request leaves the layer whichever way (drop included); without room, 503 at once;
//! - in time: the [`body_deadline`](VerifySignatureLayer::body_deadline) (10 s), counted from
//!   when a body first makes the layer wait; then 408, and the buffer is freed.
//!
//! With `C` connections, a server then holds at most `budget + C × (r + c)`, `r` being its
//! read-ahead per connection and `c` about 16 KiB: see SECURITY.md, and the examples for
//! the server settings (header-read timeout, handler timeout, connection limit) that bound
//! the rest.
//!
//! # Body types, per stack
//!
//! The inner service always receives `Request<VerifiedBody>`: an [`http_body::Body`] with
//! `Data = Bytes` and `Error = Infallible`, holding the exact signed bytes in one frame,
//! then the request's trailers if any. The stack's own body (hyper's `Incoming`, axum's
//! `Body`, tonic's `Body`) has been read by the layer. No stack needs an adapter:
//!
//! - **axum**: behind `Router::layer`, `Router::route_layer` or `MethodRouter::layer`,
//!   axum boxes the body into `axum::body::Body`, so `Bytes`, `String`, `Json<T>`,
//!   `HeaderMap` and `Extension<Verified>` extract as usual. The response,
//!   `Response<ResponseBody<axum::body::Body>>`, implements `IntoResponse`.
//! - **hyper**: a `tower::service_fn` takes `Request<VerifiedBody>` and reads it without
//!   waiting with [`VerifiedBody::into_bytes`](crate::VerifiedBody::into_bytes) (or
//!   `BodyExt::collect`); `hyper_util::service::TowerToHyperService` serves the stack over
//!   HTTP/1.1 and HTTP/2.
//! - **tonic**: `Server::builder().layer(VerifySignatureLayer::new(..))` wraps tonic's
//!   `Routes`, which accept any such body; the gRPC services decode the verified bytes as
//!   usual. Refusals of gRPC calls (`content-type: application/grpc...`) also carry
//!   `grpc-status` (`UNAUTHENTICATED` for a 401) and no body, so gRPC clients see the
//!   right code. The layer reads the whole request before calling the service: it suits
//!   unary and server-streaming calls, not client-streaming or bidirectional ones.
//!
//! # Example
//!
//! With the defaults: one secret, bodies up to 1 MiB.
//!
//! ```
//! use authgear_webhook::{sign, VerifySignatureLayer, SIGNATURE_HEADER};
//! use axum::{body::Body, http::{Request, StatusCode}, routing::post, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/hooks/authgear", post(|body: String| async move { body }))
//!     .layer(VerifySignatureLayer::new("my-webhook-secret"));
//!
//! let body = r#"{"type":"user.created"}"#;
//! let signed = Request::post("/hooks/authgear")
//!     .header(SIGNATURE_HEADER, sign("my-webhook-secret", body.as_bytes()))
//!     .body(Body::from(body))
//!     .unwrap();
//! let response = app.clone().oneshot(signed).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let forged = Request::post("/hooks/authgear")
//!     .header(SIGNATURE_HEADER, sign("not-the-secret", body.as_bytes()))
//!     .body(Body::from(body))
//!     .unwrap();
//! let response = app.oneshot(forged).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```
//!
//! Customised: a second secret accepted during a rotation, a 64 KiB limit, and the layer on
//! one route only.
//!
//! ```
//! use authgear_webhook::{sign, VerifySignatureLayer, SIGNATURE_HEADER};
//! use axum::{body::Body, http::{Request, StatusCode}, routing::{get, post}, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let verify = VerifySignatureLayer::new("new-secret")
//!     .also_accept("old-secret")
//!     .body_limit(64 * 1024);
//! let app = Router::new()
//!     .route("/hooks/authgear", post(|| async { "ok" }).layer(verify))
//!     .route("/health", get(|| async { "up" }));
//!
//! let body = vec![b' '; 64 * 1024 + 1];
//! let too_large = Request::post("/hooks/authgear")
//!     .header(SIGNATURE_HEADER, sign("old-secret", &body))
//!     .body(Body::from(body))
//!     .unwrap();
//! let response = app.clone().oneshot(too_large).await.unwrap();
//! assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
//!
//! let old = Request::post("/hooks/authgear")
//!     .header(SIGNATURE_HEADER, sign("old-secret", b"{}"))
//!     .body(Body::from("{}"))
//!     .unwrap();
//! assert_eq!(app.clone().oneshot(old).await.unwrap().status(), StatusCode::OK);
//!
//! let health = Request::get("/health").body(Body::empty()).unwrap();
//! assert_eq!(app.oneshot(health).await.unwrap().status(), StatusCode::OK);
//! # }
//! ```

mod config;
mod deadline;
mod future;
mod layer;
mod service;

pub use self::{future::ResponseFuture, layer::VerifySignatureLayer, service::VerifySignature};
