//! Plain hyper 1, over TCP with HTTP/1.1 and HTTP/2 (prior knowledge): the server of
//! `examples/hyper_server.rs` (a `ServiceBuilder` stack ending in a `service_fn`), called by
//! a hyper client, unsigned or signing with `SignRequestLayer`.

#[path = "../../examples/hyper_server.rs"]
#[allow(dead_code)]
mod hyper_server;

use std::net::SocketAddr;

use crate::common::{Script, TIMEOUT, client, text};
use authgear_webhook::{
    SIGNATURE_HEADER, SignError, SignErrorKind, SignRequestLayer, SignedBody, sign,
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tokio::time::timeout;
use tower::{ServiceBuilder, ServiceExt};

use crate::common::SECRET;

const BLOCKING: &str = r#"{"id":"0000000000000001","seq":1,"type":"user.pre_create","payload":{},"context":{"timestamp":1}}"#;
const NON_BLOCKING: &str = r#"{"id":"0000000000000002","seq":2,"type":"user.created","payload":{},"context":{"timestamp":2}}"#;

async fn server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(hyper_server::serve(listener, SECRET.into()));
    addr
}

/// A response, with the parts the tests look at.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: String,
}

async fn answer<B>(response: Response<B>) -> Answer
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().expect("ascii").to_owned());
    Answer {
        status: response.status(),
        content_type,
        body: text(response).await,
    }
}

async fn send(
    addr: SocketAddr,
    http2: bool,
    method: Method,
    path: &str,
    signature: Option<String>,
    body: &str,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("request");
    let response = timeout(TIMEOUT, client(http2).request(request))
        .await
        .expect("in time")
        .expect("response");
    if http2 {
        assert_eq!(response.version(), http::Version::HTTP_2);
    } else {
        assert_eq!(response.version(), http::Version::HTTP_11);
    }
    answer(response).await
}

fn allowed() -> Answer {
    Answer {
        status: StatusCode::OK,
        content_type: Some("application/json".to_owned()),
        body: r#"{"is_allowed":true}"#.to_owned(),
    }
}

#[tokio::test]
async fn verified_deliveries_get_their_answers_over_http1_and_http2() {
    let addr = server().await;
    for http2 in [false, true] {
        let signed = |body: &str| Some(sign(SECRET, body.as_bytes()));
        let post = |signature, body| send(addr, http2, Method::POST, "/", signature, body);

        assert_eq!(post(signed(BLOCKING), BLOCKING).await, allowed(), "{http2}");
        let other = post(signed(NON_BLOCKING), NON_BLOCKING).await;
        assert_eq!((other.status, other.body.as_str()), (StatusCode::OK, ""));
        let not_json = post(signed("not json"), "not json").await;
        assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn unsigned_and_forged_deliveries_get_401_over_http1_and_http2() {
    let addr = server().await;
    for http2 in [false, true] {
        let post = |signature, body| send(addr, http2, Method::POST, "/", signature, body);

        let unsigned = post(None, BLOCKING).await;
        assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED, "{http2}");
        let forged = post(Some(sign("not-the-secret", BLOCKING.as_bytes())), BLOCKING).await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{http2}");
        // Signed for another body.
        let swapped = post(Some(sign(SECRET, NON_BLOCKING.as_bytes())), BLOCKING).await;
        assert_eq!(swapped.status, StatusCode::UNAUTHORIZED, "{http2}");
    }
}

#[tokio::test]
async fn only_post_slash_is_served() {
    let addr = server().await;
    let signature = Some(sign(SECRET, BLOCKING.as_bytes()));
    let other_path = send(addr, false, Method::POST, "/x", signature.clone(), BLOCKING).await;
    assert_eq!(other_path.status, StatusCode::NOT_FOUND);
    let other_method = send(addr, true, Method::PUT, "/", signature, BLOCKING).await;
    assert_eq!(other_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A hyper client behind `SignRequestLayer`: what it sends is accepted, in one frame or in
/// many (a chunked HTTP/1.1 body, HTTP/2 DATA frames).
#[tokio::test]
async fn sign_request_layer_signs_real_client_requests() {
    let addr = server().await;
    for http2 in [false, true] {
        let signed = ServiceBuilder::new()
            .layer(SignRequestLayer::new(SECRET))
            .service(client::<SignedBody>(http2));

        let request = Request::post(format!("http://{addr}/"))
            .body(Full::new(Bytes::from_static(BLOCKING.as_bytes())))
            .expect("request");
        let response = timeout(TIMEOUT, signed.clone().oneshot(request))
            .await
            .expect("in time")
            .expect("sent");
        assert_eq!(answer(response).await, allowed(), "{http2}");

        let (head, tail) = BLOCKING.split_at(10);
        let frames = Script::split(BLOCKING.as_bytes(), &[1, head.len() - 1, tail.len() / 2]);
        let request = Request::post(format!("http://{addr}/"))
            .body(frames)
            .expect("request");
        let response = timeout(TIMEOUT, signed.clone().oneshot(request))
            .await
            .expect("in time")
            .expect("sent");
        assert_eq!(answer(response).await, allowed(), "{http2}");

        // Signed with another secret: sent, and refused by the server.
        let forged = ServiceBuilder::new()
            .layer(SignRequestLayer::new("not-the-secret"))
            .service(client::<SignedBody>(http2));
        let request = Request::post(format!("http://{addr}/"))
            .body(Full::new(Bytes::from_static(BLOCKING.as_bytes())))
            .expect("request");
        let response = timeout(TIMEOUT, forged.oneshot(request))
            .await
            .expect("in time")
            .expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

/// A body above the client's limit fails before anything is sent; so does a body that breaks
/// off.
#[tokio::test]
async fn sign_request_layer_does_not_send_what_it_cannot_sign() {
    let addr = server().await;
    let signed = ServiceBuilder::new()
        .layer(SignRequestLayer::new(SECRET).body_limit(16))
        .service(client::<SignedBody>(false));

    let too_large = Request::post(format!("http://{addr}/"))
        .body(Full::new(Bytes::from_static(BLOCKING.as_bytes())))
        .expect("request");
    let error = signed
        .clone()
        .oneshot(too_large)
        .await
        .expect_err("too large");
    let error = error.downcast_ref::<SignError>().expect("a SignError");
    assert_eq!(error.kind(), SignErrorKind::BodyTooLarge);

    // No size hint: refused once the limit is crossed.
    let too_large = Request::post(format!("http://{addr}/"))
        .body(Script::split(&[b' '; 30], &[10, 10]))
        .expect("request");
    let error = signed
        .clone()
        .oneshot(too_large)
        .await
        .expect_err("too large");
    let kind = error.downcast_ref::<SignError>().map(SignError::kind);
    assert_eq!(kind, Some(SignErrorKind::BodyTooLarge));

    let broken = Request::post(format!("http://{addr}/"))
        .body(Script::split(b"{}", &[]).then_error())
        .expect("request");
    let error = signed.oneshot(broken).await.expect_err("unreadable");
    let error = error.downcast_ref::<SignError>().expect("a SignError");
    assert_eq!(error.kind(), SignErrorKind::BodyUnreadable);
    assert!(std::error::Error::source(error).is_some());
}

// `tonic_server`'s twin is in its package (examples/tonic/tests/tonic_stack.rs).
#[test]
fn hyper_server_without_a_secret_exits_with_one_line() {
    let output = std::process::Command::new(crate::common::example::path("hyper_server"))
        .env_remove("AUTHGEAR_WEBHOOK_SECRET")
        .env("ADDR", "127.0.0.1:0")
        .output()
        .expect("the example runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("AUTHGEAR_WEBHOOK_SECRET"), "{stderr}");
    assert!(output.stdout.is_empty());
}
