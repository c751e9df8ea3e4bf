//! tonic, over real HTTP/2 connections: a gRPC server with the verifying layer in its stack,
//! called by a tonic client that signs with `SignRequestLayer`; and a gRPC server whose
//! services are untouched beside a webhook route that has the layer. The servers are the
//! ones of the example (`src/main.rs`, compiled in); and the example's binary itself.

#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../src/main.rs"]
#[allow(dead_code)]
mod tonic_server;

use std::net::SocketAddr;

use crate::common::{TIMEOUT, client, text};
use authgear_webhook::{SIGNATURE_HEADER, SignRequestLayer, SignedBody, sign};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use tokio::{net::TcpListener, time::timeout};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tower::ServiceBuilder;

use crate::common::SECRET;

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// The server that wants every call signed.
async fn signed_grpc() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(tonic_server::serve_signed_grpc(
        listener,
        SECRET.into(),
        Default::default(),
    ));
    addr
}

/// The server with untouched gRPC services and a verified webhook route.
async fn grpc_and_webhooks() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(tonic_server::serve_grpc_and_webhooks(
        listener,
        SECRET.into(),
        Default::default(),
    ));
    addr
}

fn origin(addr: SocketAddr) -> http::Uri {
    format!("http://{addr}").parse().expect("uri")
}

/// One health check from a client that signs with `secret`.
async fn check_signed(addr: SocketAddr, secret: &str) -> Result<ServingStatus, tonic::Status> {
    let signed = ServiceBuilder::new()
        .layer(SignRequestLayer::new(secret))
        .service(client::<SignedBody>(true));
    let mut health = HealthClient::with_origin(signed, origin(addr));
    let call = health.check(HealthCheckRequest::default());
    let response = timeout(TIMEOUT, call).await.expect("in time")?;
    Ok(response.into_inner().status())
}

/// One health check from a plain tonic client over HTTP/2, unsigned.
async fn check_unsigned(addr: SocketAddr) -> Result<ServingStatus, tonic::Status> {
    let mut health = HealthClient::with_origin(client::<tonic::body::Body>(true), origin(addr));
    let call = health.check(HealthCheckRequest::default());
    let response = timeout(TIMEOUT, call).await.expect("in time")?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn signed_grpc_call_passes() {
    let addr = signed_grpc().await;
    let status = check_signed(addr, SECRET).await.expect("call passes");
    assert_eq!(status, ServingStatus::Serving);
}

// A refusal of a gRPC call carries `grpc-status` and no body: a plain-text body would be
// decoded as a gRPC frame and reported as `Internal`.
#[tokio::test]
async fn unsigned_grpc_call_is_unauthenticated() {
    let addr = signed_grpc().await;
    let status = check_unsigned(addr).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn forged_grpc_call_is_unauthenticated() {
    let addr = signed_grpc().await;
    let status = check_signed(addr, "not-the-secret")
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// What the gRPC server answers an unsigned or forged call, at the HTTP/2 level: 401, and
/// the service is never reached (a health check answers 200 with `grpc-status`).
#[tokio::test]
async fn unsigned_and_forged_grpc_calls_are_refused_with_401() {
    let addr = signed_grpc().await;
    // A health check request for service "": a gRPC frame holding an empty message.
    let frame = Bytes::from_static(&[0, 0, 0, 0, 0]);
    for signature in [None, Some(sign("not-the-secret", &frame))] {
        let mut request = Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers");
        if let Some(signature) = &signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let request = request.body(Full::new(frame.clone())).expect("request");
        let response = timeout(TIMEOUT, client(true).request(request))
            .await
            .expect("in time")
            .expect("response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{signature:?}");
    }
    // Both are errors for the tonic client too, whatever code it reads.
    check_signed(addr, "not-the-secret")
        .await
        .expect_err("refused");
    check_unsigned(addr).await.expect_err("refused");
    // The same frame, signed, reaches the health service.
    let request = Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .header(SIGNATURE_HEADER, sign(SECRET, &frame))
        .body(Full::new(frame))
        .expect("request");
    let response = timeout(TIMEOUT, client(true).request(request))
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn grpc_beside_the_webhook_route_is_untouched() {
    let addr = grpc_and_webhooks().await;
    let status = check_unsigned(addr).await.expect("unsigned call passes");
    assert_eq!(status, ServingStatus::Serving);
    // A signed call passes too: the signature header is simply not looked at.
    let status = check_signed(addr, SECRET)
        .await
        .expect("signed call passes");
    assert_eq!(status, ServingStatus::Serving);
}

/// Posts `body` to the webhook route, signed with `secret` (or unsigned), over HTTP/1.1 or
/// HTTP/2.
async fn deliver(
    addr: SocketAddr,
    http2: bool,
    secret: Option<&str>,
    body: &'static str,
) -> (StatusCode, String) {
    let mut request = Request::post(format!("http://{addr}/hooks/authgear"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, sign(secret, body.as_bytes()));
    }
    let request = request
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let response = timeout(TIMEOUT, client(http2).request(request))
        .await
        .expect("in time")
        .expect("response");
    (response.status(), text(response).await)
}

#[tokio::test]
async fn webhook_route_beside_grpc_is_verified() {
    let addr = grpc_and_webhooks().await;
    let blocking = r#"{"id":"0000000000000001","seq":1,"type":"user.pre_create"}"#;
    let other = r#"{"id":"0000000000000002","seq":2,"type":"user.created"}"#;
    for http2 in [false, true] {
        assert_eq!(
            deliver(addr, http2, Some(SECRET), blocking).await,
            (StatusCode::OK, r#"{"is_allowed":true}"#.to_owned()),
            "http2: {http2}"
        );
        assert_eq!(
            deliver(addr, http2, Some(SECRET), other).await,
            (StatusCode::OK, String::new())
        );
        assert_eq!(
            deliver(addr, http2, Some(SECRET), "not json").await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            deliver(addr, http2, None, blocking).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            deliver(addr, http2, Some("not-the-secret"), blocking)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[test]
fn tonic_server_without_a_secret_exits_with_one_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_example-tonic"))
        .env_remove("AUTHGEAR_WEBHOOK_SECRET")
        .env("ADDR", "127.0.0.1:0")
        .env("GRPC_ADDR", "127.0.0.1:0")
        .output()
        .expect("the example runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("AUTHGEAR_WEBHOOK_SECRET"), "{stderr}");
    assert!(output.stdout.is_empty());
}
