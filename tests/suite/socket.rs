//! The behaviour table over a real TCP socket: an axum server on 127.0.0.1 with the layer,
//! a real HTTP client (hyper-util) and, where a client would not misbehave, raw bytes.

use crate::common::{Recorder, Script, TIMEOUT, client, raw_exchange, serve, text};
use authgear_webhook::{SIGNATURE_HEADER, VerifySignatureLayer, sign};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use tower::Layer;

use crate::common::SECRET;
const LIMIT: usize = 64 * 1024;

/// An app whose `/hook` is the recorder behind the layer (64 KiB limit).
async fn app() -> (std::net::SocketAddr, Recorder) {
    let recorder = Recorder::default();
    let verified = VerifySignatureLayer::new(SECRET)
        .body_limit(LIMIT)
        .layer(recorder.service());
    let addr = serve(axum::Router::new().route_service("/hook", verified)).await;
    (addr, recorder)
}

/// Posts `body` with `signature` (if any), as one frame with Content-Length or, when
/// `chunked`, as many frames with none; returns status and text.
async fn post(
    addr: std::net::SocketAddr,
    body: &[u8],
    signature: Option<&str>,
    chunked: bool,
    http2: bool,
) -> (StatusCode, String) {
    let mut request = Request::post(format!("http://{addr}/hook"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    let response = if chunked {
        let lengths = vec![7; body.len() / 7];
        let request = request
            .body(Script::split(body, &lengths))
            .expect("request");
        tokio::time::timeout(TIMEOUT, client(http2).request(request)).await
    } else {
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        tokio::time::timeout(TIMEOUT, client(http2).request(request)).await
    };
    let response = response.expect("in time").expect("a response");
    let status = response.status();
    (status, text(response).await)
}

fn delivery() -> Vec<u8> {
    std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture")
}

#[tokio::test]
async fn signed_deliveries_are_accepted_byte_for_byte() {
    let (addr, recorder) = app().await;
    let body = delivery();
    let signature = sign(SECRET, &body);
    let mut calls = 0;
    for (chunked, http2) in [(false, false), (true, false), (false, true), (true, true)] {
        let (status, text) = post(addr, &body, Some(&signature), chunked, http2).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::OK, "inner"),
            "chunked {chunked} h2 {http2}"
        );
        calls += 1;
        assert_eq!(recorder.calls(), calls);
        let seen = recorder.seen().pop().expect("recorded");
        assert_eq!(seen.body, body);
        assert_eq!(seen.headers[&SIGNATURE_HEADER], signature.as_str());
        assert_eq!(seen.headers[header::CONTENT_TYPE], "application/json");
        assert!(seen.verified.is_some());
    }
}

#[tokio::test]
async fn independent_signature_of_a_real_delivery_verifies() {
    // Signed with `openssl dgst -sha256 -hmac` (and Python's hmac), not by this crate.
    let secret = std::fs::read_to_string("tests/fixtures/secret.txt").expect("fixture");
    let signature =
        std::fs::read_to_string("tests/fixtures/user.pre_create.json.sig").expect("fixture");
    assert_eq!(secret, SECRET);
    assert_eq!(sign(SECRET, &delivery()), signature.trim());
    let (addr, recorder) = app().await;
    let (status, _) = post(addr, &delivery(), Some(signature.trim()), false, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body, delivery());
}

#[tokio::test]
async fn upper_case_and_empty_bodies_are_accepted() {
    let (addr, recorder) = app().await;
    for chunked in [false, true] {
        let upper = sign(SECRET, &delivery()).to_uppercase();
        assert_eq!(
            post(addr, &delivery(), Some(&upper), chunked, false)
                .await
                .0,
            StatusCode::OK
        );
        let empty = sign(SECRET, b"");
        assert_eq!(
            post(addr, b"", Some(&empty), chunked, false).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(recorder.calls(), 4);
}

#[tokio::test]
async fn forged_and_malformed_signatures_get_401() {
    let (addr, recorder) = app().await;
    let body = delivery();
    let good = sign(SECRET, &body);
    let mut flipped = body.clone();
    flipped[100] ^= 0x01;
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).expect("json"))
            .expect("json");
    assert_ne!(reserialised, body);
    let prefixed = format!("sha256={good}");
    let other = sign("another-secret", &body);
    let cases: [(&[u8], Option<&str>, &str); 7] = [
        (&body, None, "missing x-authgear-body-signature header"),
        (&body, Some(""), "missing x-authgear-body-signature header"),
        (
            &body,
            Some(&good[..60]),
            "malformed x-authgear-body-signature header",
        ),
        (
            &body,
            Some(&prefixed),
            "malformed x-authgear-body-signature header",
        ),
        (&body, Some(&other), "invalid signature"),
        (&flipped, Some(&good), "invalid signature"),
        (&reserialised, Some(&good), "invalid signature"),
    ];
    for chunked in [false, true] {
        for (body, signature, message) in cases {
            let (status, text) = post(addr, body, signature, chunked, false).await;
            assert_eq!((status, text.as_str()), (StatusCode::UNAUTHORIZED, message));
        }
    }
    // Twice, through raw bytes.
    let raw = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n{0}: {good}\r\n{0}: {good}\r\n\r\n{{}}",
        SIGNATURE_HEADER
    );
    let response = raw_exchange(addr, raw.as_bytes(), false).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn content_length_above_the_limit_is_refused_before_the_body_is_sent() {
    let (addr, recorder) = app().await;
    // Only the head is sent: the answer must come without the body.
    let raw = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{SIGNATURE_HEADER}: {}\r\n\r\n",
        LIMIT + 1,
        sign(SECRET, b"")
    );
    let response = raw_exchange(addr, raw.as_bytes(), false).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.ends_with("request body too large"), "{response}");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn chunked_body_is_refused_once_it_crosses_the_limit() {
    let (addr, recorder) = app().await;
    // Chunks of 4 KiB up to one byte over the limit, then nothing more: the answer must come
    // while the client is still "sending".
    let mut raw = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{SIGNATURE_HEADER}: {}\r\n\r\n",
        sign(SECRET, b"")
    )
    .into_bytes();
    for _ in 0..LIMIT / 4096 {
        raw.extend_from_slice(b"1000\r\n");
        raw.extend_from_slice(&[b'a'; 4096]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"1\r\na\r\n");
    let response = raw_exchange(addr, &raw, false).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(recorder.calls(), 0);

    // Exactly at the limit, chunked through the client: accepted.
    let body = vec![b'a'; LIMIT];
    let (status, _) = post(addr, &body, Some(&sign(SECRET, &body)), true, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body.len(), LIMIT);
}

#[tokio::test]
async fn body_failing_midway_is_a_400() {
    let (addr, recorder) = app().await;
    let signature = sign(SECRET, b"hello world");
    // An invalid chunk size after the first chunk.
    let raw = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n5\r\nhello\r\nzz\r\n"
    );
    let response = raw_exchange(addr, raw.as_bytes(), false).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.ends_with("request body could not be read"),
        "{response}"
    );

    // Fewer bytes than Content-Length, then the client stops sending.
    let raw = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\nhello"
    );
    let response = raw_exchange(addr, raw.as_bytes(), true).await;
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 400"),
        "{response}"
    );
    assert_eq!(recorder.calls(), 0);

    // The server is still healthy.
    let body = delivery();
    assert_eq!(
        post(addr, &body, Some(&sign(SECRET, &body)), false, false)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_byte_chunks_arrive_intact() {
    let (addr, recorder) = app().await;
    let body = br#"{"id":"1","type":"user.created"}"#;
    let mut raw = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{SIGNATURE_HEADER}: {}\r\n\r\n",
        sign(SECRET, body)
    )
    .into_bytes();
    for byte in body {
        raw.extend_from_slice(b"1\r\n");
        raw.push(*byte);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = raw_exchange(addr, &raw, false).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(recorder.seen()[0].body, &body[..]);
}
