//! Hostile input over a real socket: an axum server on 127.0.0.1 with the layer (128 KiB
//! limit) in front of a recording service, driven by raw bytes over HTTP/1.x and by a
//! hyper HTTP/2 connection (prior knowledge) where the case exists in HTTP/2.
//!
//! Each case asserts the status (or that hyper itself refused and closed the connection
//! before the layer saw the request), that the inner service was called only for validly
//! signed bodies and then with exactly those bytes, and that the server is still healthy:
//! a valid delivery succeeds on the same connection where the connection survives, and on
//! new HTTP/1.1 and HTTP/2 connections.
//!
//! Every wait is bounded by `TIMEOUT`; nothing here measures time.

use std::{convert::Infallible, error::Error as StdError, io::Write, net::SocketAddr};

use crate::common::{
    BoxError, Recorder, Script, Step, serve,
    wire::{H2, Raw, ReqBody},
};
use authgear_webhook::{SIGNATURE_HEADER, VerifySignatureLayer, sign};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::Layer;

use crate::common::SECRET;

/// Above 100 000 bytes, so that 100 000 one-byte chunks fit.
const LIMIT: usize = 128 * 1024;
/// The request timeout of the stack that has one.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

fn delivery() -> Vec<u8> {
    std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture")
}

/// The signature header line for `body`.
fn signature_line(body: &[u8]) -> String {
    format!("{SIGNATURE_HEADER}: {}\r\n", sign(SECRET, body))
}

/// An HTTP/1.1 POST to `/hook` with the given header lines (each ending in CRLF) and `body`
/// appended as is.
fn post(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("POST /hook HTTP/1.1\r\nhost: x\r\n{headers}\r\n").into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A correctly signed HTTP/1.1 delivery of `body` with its Content-Length.
fn signed_post(body: &[u8]) -> Vec<u8> {
    let headers = format!("content-length: {}\r\n{}", body.len(), signature_line(body));
    post(&headers, body)
}

/// `body` as chunked transfer coding, `size` bytes per chunk, with the last chunk.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(body.len() * 2 + 5);
    for chunk in body.chunks(size) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut decoded)
        .expect("gunzip");
    decoded
}

/// The server under test, and what its inner service has seen so far.
struct App {
    addr: SocketAddr,
    recorder: Recorder,
    /// The calls of the inner service checked so far.
    calls: usize,
}

impl App {
    /// The layer (128 KiB) in front of the recorder, on `/hook`.
    async fn new() -> Self {
        let recorder = Recorder::default();
        let service = VerifySignatureLayer::new(SECRET)
            .body_limit(LIMIT)
            .layer(recorder.service());
        Self::serve(
            axum::Router::new().route_service("/hook", service),
            recorder,
        )
        .await
    }

    /// The same, behind tower-http's `TimeoutLayer` (500 ms, 408), as every production
    /// stack should have.
    async fn with_timeout() -> Self {
        let recorder = Recorder::default();
        let service = tower::ServiceBuilder::new()
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            ))
            .layer(VerifySignatureLayer::new(SECRET).body_limit(LIMIT))
            .service(recorder.service());
        Self::serve(
            axum::Router::new().route_service("/hook", service),
            recorder,
        )
        .await
    }

    async fn serve(router: axum::Router, recorder: Recorder) -> Self {
        Self {
            addr: serve(router).await,
            recorder,
            calls: 0,
        }
    }

    async fn raw(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    async fn h2(&self) -> H2 {
        H2::connect(self.addr).await
    }

    /// Asserts that the inner service was not called since the last check.
    #[track_caller]
    fn assert_not_called(&self) {
        assert_eq!(self.recorder.calls(), self.calls, "inner service called");
    }

    /// Asserts that the inner service was called once since the last check, with `body`.
    #[track_caller]
    fn assert_delivered(&mut self, body: &[u8]) {
        self.calls += 1;
        assert_eq!(self.recorder.calls(), self.calls, "inner service calls");
        let seen = self.recorder.seen().pop().expect("recorded");
        assert!(seen.body == body, "the inner service saw other bytes");
        assert!(seen.verified.is_some());
    }

    /// A valid delivery on `raw`: true if it was answered 200 and reached the inner service
    /// intact, false if the server had closed the connection.
    async fn delivers_on(&mut self, raw: &mut Raw) -> bool {
        let body = delivery();
        if raw.send(&signed_post(&body)).await.is_err() {
            return false;
        }
        let Some(response) = raw.response().await else {
            return false;
        };
        assert_eq!(response.status, 200, "{}", response.head);
        assert_eq!(response.body, b"inner");
        self.assert_delivered(&body);
        true
    }

    /// A valid delivery on an HTTP/2 connection: true if answered 200 (and delivered
    /// intact), false if the connection is gone.
    async fn delivers_on_h2(&mut self, h2: &mut H2) -> bool {
        let body = delivery();
        let headers = [(SIGNATURE_HEADER, sign(SECRET, &body).parse().expect("hex"))];
        match h2.post(&headers, full(body.clone())).await {
            Ok((status, text)) => {
                assert_eq!((status, &text[..]), (StatusCode::OK, &b"inner"[..]));
                self.assert_delivered(&body);
                true
            }
            Err(_) => false,
        }
    }

    /// Valid deliveries on a new HTTP/1.1 and a new HTTP/2 connection succeed.
    async fn assert_healthy(&mut self) {
        let mut raw = self.raw().await;
        assert!(self.delivers_on(&mut raw).await, "new HTTP/1.1 connection");
        let mut h2 = self.h2().await;
        assert!(self.delivers_on_h2(&mut h2).await, "new HTTP/2 connection");
    }
}

fn full(body: impl Into<Bytes>) -> ReqBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn frames(body: Script) -> ReqBody {
    body.map_err(BoxError::from).boxed()
}

fn signature_value(body: &[u8]) -> (HeaderName, HeaderValue) {
    (SIGNATURE_HEADER, sign(SECRET, body).parse().expect("hex"))
}

fn content_length(length: usize) -> (HeaderName, HeaderValue) {
    (header::CONTENT_LENGTH, HeaderValue::from(length))
}

#[tokio::test]
async fn content_length_larger_than_the_bytes_sent_then_close() {
    let mut app = App::new().await;
    let body = delivery();
    let signed = signed_post(&body);
    let half = &signed[..signed.len() - body.len() / 2];

    // HTTP/1.1, half-closed after half the body: hyper reports the body as incomplete, the
    // layer answers 400, and hyper closes the connection (it cannot be reused).
    let mut raw = app.raw().await;
    raw.send(half).await.expect("send");
    raw.shutdown().await;
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 400, "{}", response.head);
    assert_eq!(response.body, b"request body could not be read");
    assert!(raw.closed().await);
    app.assert_not_called();

    // Closed entirely: nobody is left to answer; the server just drops the request.
    let mut raw = app.raw().await;
    raw.send(half).await.expect("send");
    drop(raw);

    // HTTP/2, END_STREAM before Content-Length bytes: h2 resets the stream with
    // PROTOCOL_ERROR (RFC 9113 8.1.1); the connection goes on.
    let mut h2 = app.h2().await;
    let headers = [signature_value(&body), content_length(body.len() * 2)];
    let error = h2.post(&headers, full(body.clone())).await.unwrap_err();
    assert!(is_reset(&error, h2::Reason::PROTOCOL_ERROR), "{error:?}");
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn content_length_smaller_than_the_bytes_sent() {
    let mut app = App::new().await;
    let body = delivery();
    let (head, tail) = body.split_at(100);

    // HTTP/1.1: the body is the first Content-Length bytes, so a signature over them is
    // accepted and the handler gets exactly them. The rest is read as the next request:
    // garbage there gets hyper's own 400, and the connection is closed.
    let mut raw = app.raw().await;
    let headers = format!("content-length: 100\r\n{}", signature_line(head));
    raw.send(&post(&headers, &body)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(head);
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 400, "{}", response.head);
    assert!(raw.closed().await);
    app.assert_not_called();

    // A signature over all the bytes sent does not match the announced body.
    let mut raw = app.raw().await;
    let headers = format!("content-length: 100\r\n{}", signature_line(&body));
    raw.send(&post(&headers, &body)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 401);
    app.assert_not_called();

    // The extra bytes are a whole request of their own (smuggled): it is verified on its
    // own, refused when forged, and the connection survives.
    let mut raw = app.raw().await;
    let smuggled = post(
        &format!("content-length: {}\r\n{}", tail.len(), signature_line(b"")),
        tail,
    );
    let mut bytes = post(
        &format!("content-length: 100\r\n{}", signature_line(head)),
        head,
    );
    bytes.extend_from_slice(&smuggled);
    raw.send(&bytes).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(head);
    assert_eq!(raw.response().await.expect("an answer").status, 401);
    app.assert_not_called();
    assert!(app.delivers_on(&mut raw).await);

    // HTTP/2, more DATA than Content-Length: the stream is reset (PROTOCOL_ERROR).
    let mut h2 = app.h2().await;
    let headers = [signature_value(head), content_length(head.len())];
    let error = h2.post(&headers, full(body.clone())).await.unwrap_err();
    assert!(is_reset(&error, h2::Reason::PROTOCOL_ERROR), "{error:?}");
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn two_different_content_lengths() {
    let mut app = App::new().await;
    let body = delivery();

    // HTTP/1.1: hyper refuses the head itself (400, RFC 9112 6.3) and closes; the layer
    // never sees the request.
    let mut raw = app.raw().await;
    let headers = format!(
        "content-length: {}\r\ncontent-length: {}\r\n{}",
        body.len(),
        body.len() + 1,
        signature_line(&body)
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 400, "{}", response.head);
    assert!(raw.closed().await);

    // The same value twice is one Content-Length: accepted.
    let mut raw = app.raw().await;
    let headers = format!(
        "content-length: {0}\r\ncontent-length: {0}\r\n{1}",
        body.len(),
        signature_line(&body)
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&body);
    assert!(app.delivers_on(&mut raw).await);

    // Content-Length and chunked together (the classic smuggling pair): hyper goes by the
    // chunked coding, drops Content-Length, and closes the connection after answering
    // (RFC 9112 6.1). The signature covers the chunked body, which is what is delivered.
    let mut raw = app.raw().await;
    let headers = format!(
        "content-length: 5\r\ntransfer-encoding: chunked\r\n{}",
        signature_line(&body)
    );
    raw.send(&post(&headers, &chunked(&body, 64)))
        .await
        .expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 200, "{}", response.head);
    app.assert_delivered(&body);
    let seen = app.recorder.seen().pop().expect("recorded");
    assert!(!seen.headers.contains_key(header::CONTENT_LENGTH));
    assert!(
        response.head.contains("connection: close"),
        "{}",
        response.head
    );
    assert!(raw.closed().await);

    // HTTP/2: the h2 server resets the stream (PROTOCOL_ERROR); the connection goes on.
    let mut h2 = app.h2().await;
    let headers = [
        signature_value(&body),
        content_length(body.len()),
        content_length(body.len() + 1),
    ];
    let error = h2.post(&headers, full(body.clone())).await.unwrap_err();
    assert!(is_reset(&error, h2::Reason::PROTOCOL_ERROR), "{error:?}");
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn invalid_chunk_sizes() {
    let mut app = App::new().await;
    let body = br#"{"id":"1"}"#;
    // Each is the first chunk line (and what follows it), then the last chunk.
    let cases: [&[u8]; 7] = [
        b"zz\r\n",                    // not hex
        b"-1\r\n",                    // negative
        b"0x5\r\n",                   // a prefix
        b"\r\n",                      // empty
        b"fffffffffffffffffffff\r\n", // overflows u64
        b"5\r\n{\"id\":\"1\"}\r\n",   // shorter than the data that follows
        b"a\r\n{\"id\":\"1\"}XX",     // data not followed by CRLF
    ];
    for case in cases {
        // The chunk stream breaks off: hyper reports a body error, the layer answers 400
        // (the body could not be read), and hyper closes the connection.
        let mut raw = app.raw().await;
        let headers = format!("transfer-encoding: chunked\r\n{}", signature_line(body));
        raw.send(&post(&headers, case)).await.expect("send");
        raw.send(b"0\r\n\r\n").await.expect("send");
        let response = raw.response().await.expect("an answer");
        let case = String::from_utf8_lossy(case);
        assert_eq!(response.status, 400, "{case:?}: {}", response.head);
        assert_eq!(response.body, b"request body could not be read", "{case:?}");
        assert!(raw.closed().await, "{case:?}");
        app.assert_not_called();
    }
    // HTTP/2 has no chunked coding: DATA frames carry their own lengths.
    app.assert_healthy().await;
}

#[tokio::test]
async fn a_hundred_thousand_one_byte_chunks() {
    let mut app = App::new().await;
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let headers = format!("transfer-encoding: chunked\r\n{}", signature_line(&body));

    // HTTP/1.1: accepted, byte for byte, and the connection is reused.
    let mut raw = app.raw().await;
    raw.send(&post(&headers, &chunked(&body, 1)))
        .await
        .expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&body);
    assert!(app.delivers_on(&mut raw).await);
    // Forged: the whole body is still read (it has to be, to compute the MAC), refused.
    let headers = format!("transfer-encoding: chunked\r\n{}", signature_line(b"other"));
    raw.send(&post(&headers, &chunked(&body, 1)))
        .await
        .expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 401);
    app.assert_not_called();
    assert!(app.delivers_on(&mut raw).await);

    // HTTP/2, 100 000 DATA frames of one byte: h2 budgets the framing overhead of small
    // DATA frames buffered but not yet read (255 bytes each, half the connection window in
    // all) and answers a flood with GOAWAY(ENHANCE_YOUR_CALM). Whether the layer reads
    // them as fast as they come depends on scheduling, so either outcome is allowed here,
    // but nothing else: accepted intact, or the connection refused with nothing delivered.
    let mut h2 = app.h2().await;
    let split = Script::split(&body, &vec![1; body.len() - 1]);
    match h2.post(&[signature_value(&body)], frames(split)).await {
        Ok((status, _)) => {
            assert_eq!(status, StatusCode::OK);
            app.assert_delivered(&body);
        }
        Err(error) => {
            assert!(is_go_away_or_closed(&error), "{error:?}");
            app.assert_not_called();
        }
    }
    // 1 000 one-byte DATA frames stay within that budget however slowly they are read.
    let mut h2 = app.h2().await;
    let small = &body[..1000];
    let split = Script::split(small, &[1; 999]);
    let answer = h2.post(&[signature_value(small)], frames(split)).await;
    assert_eq!(answer.expect("an answer").0, StatusCode::OK);
    app.assert_delivered(small);
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn body_exactly_at_the_limit_and_one_byte_over() {
    let mut app = App::new().await;
    let at: Vec<u8> = (0..LIMIT).map(|i| (i % 251) as u8).collect();
    let over: Vec<u8> = (0..=LIMIT).map(|i| (i % 251) as u8).collect();

    // HTTP/1.1 with Content-Length, and chunked.
    let mut raw = app.raw().await;
    raw.send(&signed_post(&at)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&at);
    let headers = format!("transfer-encoding: chunked\r\n{}", signature_line(&at));
    raw.send(&post(&headers, &chunked(&at, 4096)))
        .await
        .expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&at);
    assert!(app.delivers_on(&mut raw).await);

    // One byte over, Content-Length: refused from the head alone.
    raw.send(&signed_post(&over)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 413, "{}", response.head);
    app.assert_not_called();
    // hyper then reads on what it already has of the unread body and keeps the connection
    // if that was all of it, else closes it: either way, no wrong answer.
    let _survived = app.delivers_on(&mut raw).await;

    // One byte over, chunked: refused once the limit is crossed.
    let mut raw = app.raw().await;
    let headers = format!("transfer-encoding: chunked\r\n{}", signature_line(&over));
    raw.send(&post(&headers, &chunked(&over, 4096)))
        .await
        .expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 413, "{}", response.head);
    app.assert_not_called();
    let _survived = app.delivers_on(&mut raw).await;

    // HTTP/2, with Content-Length and without. Over the limit, hyper resets the stream
    // after the 413 (the body is not wanted) and the connection goes on.
    let mut h2 = app.h2().await;
    for length in [Some(LIMIT), None] {
        let mut headers = vec![signature_value(&at)];
        headers.extend(length.map(content_length));
        let split = Script::split(&at, &[1000, 5000, 30_000]);
        let answer = h2.post(&headers, frames(split)).await;
        assert_eq!(answer.expect("an answer").0, StatusCode::OK);
        app.assert_delivered(&at);
    }
    for length in [Some(LIMIT + 1), None] {
        let mut headers = vec![signature_value(&over)];
        headers.extend(length.map(content_length));
        let split = Script::split(&over, &[1000, 5000, 30_000]);
        let answer = h2.post(&headers, frames(split)).await;
        assert_eq!(answer.expect("an answer").0, StatusCode::PAYLOAD_TOO_LARGE);
        app.assert_not_called();
    }
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn expect_100_continue() {
    let mut app = App::new().await;
    let body = delivery();

    // Signed: hyper sends 100 Continue when the layer starts reading the body.
    let mut raw = app.raw().await;
    let headers = format!(
        "content-length: {}\r\nexpect: 100-continue\r\n{}",
        body.len(),
        signature_line(&body)
    );
    raw.send(&post(&headers, b"")).await.expect("send");
    let interim = raw.response().await.expect("an answer");
    assert_eq!(interim.status, 100, "{}", interim.head);
    raw.send(&body).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&body);
    assert!(app.delivers_on(&mut raw).await);

    // Unsigned, or announcing too much: refused from the head, without a 100 Continue,
    // so the client never sends the body.
    for (headers, status) in [
        (format!("content-length: {}\r\n", body.len()), 401),
        (
            format!("content-length: {}\r\n{}", LIMIT + 1, signature_line(&body)),
            413,
        ),
    ] {
        let mut raw = app.raw().await;
        let headers = format!("{headers}expect: 100-continue\r\n");
        raw.send(&post(&headers, b"")).await.expect("send");
        let response = raw.response().await.expect("an answer");
        assert_eq!(response.status, status, "{}", response.head);
        // hyper does not wait for a body it never asked for: it closes the connection.
        assert!(raw.closed().await);
        app.assert_not_called();
    }
    // HTTP/2: hyper's client sends the body without waiting for 100 Continue; the header
    // changes nothing.
    let mut h2 = app.h2().await;
    let expect = (header::EXPECT, HeaderValue::from_static("100-continue"));
    let answer = h2
        .post(
            &[expect.clone(), signature_value(&body)],
            full(body.clone()),
        )
        .await;
    assert_eq!(answer.expect("an answer").0, StatusCode::OK);
    app.assert_delivered(&body);
    let answer = h2.post(&[expect], full(body.clone())).await;
    assert_eq!(answer.expect("an answer").0, StatusCode::UNAUTHORIZED);
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn a_signature_header_of_one_mebibyte() {
    let mut app = App::new().await;
    let body = delivery();
    let huge = "a".repeat(1024 * 1024);

    // HTTP/1.1: the head is larger than hyper's read buffer (~400 KiB): hyper answers 431
    // itself and closes; the layer never sees the request.
    let mut raw = app.raw().await;
    let headers = format!(
        "content-length: {}\r\n{SIGNATURE_HEADER}: {huge}\r\n",
        body.len()
    );
    // hyper may close before it has all of it: a failed write is part of the case.
    let _ = raw.send(&post(&headers, &body)).await;
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 431, "{}", response.head);
    assert!(raw.closed().await);
    app.assert_not_called();

    // 64 KiB fits hyper's buffer and reaches the layer: 401, and the connection goes on.
    let mut raw = app.raw().await;
    let big = "a".repeat(64 * 1024);
    let headers = format!(
        "content-length: {}\r\n{SIGNATURE_HEADER}: {big}\r\n",
        body.len()
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 401, "{}", response.head);
    assert_eq!(response.body, b"malformed x-authgear-body-signature header");
    app.assert_not_called();
    assert!(app.delivers_on(&mut raw).await);

    // HTTP/2: over hyper's 16 KiB header list limit h2 answers 431 itself and the
    // connection goes on; over four times that, it is an attack (below).
    let mut h2 = app.h2().await;
    let value = HeaderValue::from_str(&big[..32 * 1024]).expect("ascii");
    let headers = [(SIGNATURE_HEADER, value)];
    let answer = h2.post(&headers, full(body.clone())).await;
    assert_eq!(
        answer.expect("an answer").0,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    // 1 MiB: h2 treats it as an attack (GOAWAY, ENHANCE_YOUR_CALM: too many CONTINUATION
    // frames, or a list over 64 KiB) and closes the connection.
    let headers = [(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&huge).expect("ascii"),
    )];
    let error = h2.post(&headers, full(body.clone())).await.unwrap_err();
    assert!(is_go_away_or_closed(&error), "{error:?}");
    app.assert_not_called();
    assert!(!app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn a_thousand_headers() {
    let mut app = App::new().await;
    let body = delivery();
    let many = |count: usize| -> String {
        (0..count)
            .map(|i| format!("x-filler-{i}: {i}\r\n"))
            .collect()
    };

    // HTTP/1.1: hyper parses at most 100 headers: 431 from hyper itself, then it closes.
    let mut raw = app.raw().await;
    let headers = format!(
        "{}content-length: {}\r\n{}",
        many(1000),
        body.len(),
        signature_line(&body)
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 431, "{}", response.head);
    assert!(raw.closed().await);
    app.assert_not_called();

    // Within hyper's count, the layer finds its header among the others.
    let mut raw = app.raw().await;
    let headers = format!(
        "{}content-length: {}\r\n{}",
        many(90),
        body.len(),
        signature_line(&body)
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&body);
    assert!(app.delivers_on(&mut raw).await);

    // HTTP/2: h2 counts bytes, not headers; 1 000 of them are over hyper's 16 KiB header
    // list limit: 431 from h2, and the connection goes on.
    let mut h2 = app.h2().await;
    let mut headers: Vec<_> = (0..1000)
        .map(|i| {
            let name = HeaderName::try_from(format!("x-filler-{i}")).expect("name");
            (name, HeaderValue::from(i))
        })
        .collect();
    headers.push(signature_value(&body));
    let answer = h2.post(&headers, full(body.clone())).await;
    assert_eq!(
        answer.expect("an answer").0,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn signature_header_with_surrounding_whitespace() {
    let mut app = App::new().await;
    let body = delivery();
    let signature = sign(SECRET, &body);
    let length = format!("content-length: {}\r\n", body.len());

    // HTTP/1.1: spaces and tabs around the value are optional whitespace: accepted.
    let mut raw = app.raw().await;
    let headers = format!("{length}{SIGNATURE_HEADER}: \t  {signature} \t \r\n");
    raw.send(&post(&headers, &body)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&body);
    // Whitespace inside the hex is not: 401, and the connection goes on.
    let headers = format!(
        "{length}{SIGNATURE_HEADER}: {} {}\r\n",
        &signature[..32],
        &signature[32..]
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 401, "{}", response.head);
    app.assert_not_called();
    assert!(app.delivers_on(&mut raw).await);
    // A value folded over two lines (obsolete line folding): hyper refuses it (400), closes.
    let mut raw = app.raw().await;
    let headers = format!(
        "{length}{SIGNATURE_HEADER}: {}\r\n {}\r\n",
        &signature[..32],
        &signature[32..]
    );
    raw.send(&post(&headers, &body)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 400, "{}", response.head);
    assert!(raw.closed().await);
    app.assert_not_called();

    // HTTP/2 passes the value as sent; the layer trims it.
    let mut h2 = app.h2().await;
    for (value, status) in [
        (format!(" \t{signature}\t "), StatusCode::OK),
        (
            format!("{} {}", &signature[..32], &signature[32..]),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let headers = [(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&value).expect("value"),
        )];
        let answer = h2.post(&headers, full(body.clone())).await;
        assert_eq!(answer.expect("an answer").0, status);
        if status == StatusCode::OK {
            app.assert_delivered(&body);
        }
        app.assert_not_called();
    }
    app.assert_healthy().await;
}

#[tokio::test]
async fn non_utf8_header_bytes() {
    let mut app = App::new().await;
    let body = delivery();
    let length = format!("content-length: {}\r\n", body.len());
    let signature = sign(SECRET, &body);

    // HTTP/1.1 allows bytes 0x80-0xFF in values (obs-text).
    let mut raw = app.raw().await;
    // The signature all non-ASCII, or one hex digit replaced by a UTF-8 `é` (two bytes, so
    // 65 bytes) or a Latin-1 `é` (one byte, 64 bytes): malformed, 401, and the connection
    // goes on.
    let mut latin1 = signature.clone().into_bytes();
    latin1[10] = 0xe9;
    let utf8 = format!("{}é{}", &signature[..10], &signature[11..]).into_bytes();
    for value in [vec![0xff; 64], utf8, latin1] {
        let mut request =
            format!("POST /hook HTTP/1.1\r\nhost: x\r\n{length}{SIGNATURE_HEADER}: ").into_bytes();
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(&body);
        raw.send(&request).await.expect("send");
        let response = raw.response().await.expect("an answer");
        assert_eq!(response.status, 401, "{}", response.head);
        assert_eq!(response.body, b"malformed x-authgear-body-signature header");
        app.assert_not_called();
    }
    // Another header with such bytes does not concern the layer: delivered, and the inner
    // service sees the bytes unchanged.
    let mut head = format!(
        "POST /hook HTTP/1.1\r\nhost: x\r\n{length}{SIGNATURE_HEADER}: {signature}\r\nx-note: caf"
    )
    .into_bytes();
    head.extend_from_slice(b"\xe9 \xff\xfe\r\n\r\n");
    head.extend_from_slice(&body);
    raw.send(&head).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&body);
    let seen = app.recorder.seen().pop().expect("recorded");
    assert_eq!(seen.headers["x-note"].as_bytes(), b"caf\xe9 \xff\xfe");
    assert!(app.delivers_on(&mut raw).await);
    // In a header name it is not HTTP: hyper refuses (400) and closes.
    let mut raw = app.raw().await;
    let mut head =
        format!("POST /hook HTTP/1.1\r\nhost: x\r\n{length}{SIGNATURE_HEADER}: {signature}\r\nx-")
            .into_bytes();
    head.extend_from_slice(b"\xff: 1\r\n\r\n");
    head.extend_from_slice(&body);
    raw.send(&head).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 400, "{}", response.head);
    assert!(raw.closed().await);
    app.assert_not_called();

    // HTTP/2: the same values.
    let mut h2 = app.h2().await;
    let value = HeaderValue::from_bytes(&[0xff; 64]).expect("obs-text");
    let answer = h2
        .post(&[(SIGNATURE_HEADER, value)], full(body.clone()))
        .await;
    assert_eq!(answer.expect("an answer").0, StatusCode::UNAUTHORIZED);
    app.assert_not_called();
    let note = HeaderValue::from_bytes(b"caf\xe9 \xff\xfe").expect("obs-text");
    let headers = [
        signature_value(&body),
        (HeaderName::from_static("x-note"), note),
    ];
    let answer = h2.post(&headers, full(body.clone())).await;
    assert_eq!(answer.expect("an answer").0, StatusCode::OK);
    app.assert_delivered(&body);
    let seen = app.recorder.seen().pop().expect("recorded");
    assert_eq!(seen.headers["x-note"].as_bytes(), b"caf\xe9 \xff\xfe");
    app.assert_healthy().await;
}

#[tokio::test]
async fn gzip_body_is_verified_as_sent() {
    let mut app = App::new().await;
    let body = delivery();
    let compressed = gzip(&body);
    let encoding = "content-encoding: gzip\r\n";

    // Signed over the compressed bytes, as sent: accepted, and the inner service gets the
    // compressed bytes (decompressing is up to it, or to a layer inside this one).
    let mut raw = app.raw().await;
    let headers = format!(
        "{encoding}content-length: {}\r\n{}",
        compressed.len(),
        signature_line(&compressed)
    );
    raw.send(&post(&headers, &compressed)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 200);
    app.assert_delivered(&compressed);
    assert_eq!(gunzip(&app.recorder.seen()[0].body), body);
    // Signed over the decompressed bytes: refused.
    let headers = format!(
        "{encoding}content-length: {}\r\n{}",
        compressed.len(),
        signature_line(&body)
    );
    raw.send(&post(&headers, &compressed)).await.expect("send");
    assert_eq!(raw.response().await.expect("an answer").status, 401);
    app.assert_not_called();
    assert!(app.delivers_on(&mut raw).await);

    let mut h2 = app.h2().await;
    let gzip_header = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let headers = [gzip_header.clone(), signature_value(&compressed)];
    let answer = h2.post(&headers, full(compressed.clone())).await;
    assert_eq!(answer.expect("an answer").0, StatusCode::OK);
    app.assert_delivered(&compressed);
    let headers = [gzip_header, signature_value(&body)];
    let answer = h2.post(&headers, full(compressed.clone())).await;
    assert_eq!(answer.expect("an answer").0, StatusCode::UNAUTHORIZED);
    app.assert_not_called();
    app.assert_healthy().await;
}

#[tokio::test]
async fn http_1_0_without_content_length() {
    let mut app = App::new().await;
    let body = delivery();
    let request = |headers: &str, body: &[u8]| {
        let mut raw = format!("POST /hook HTTP/1.0\r\nhost: x\r\n{headers}\r\n").into_bytes();
        raw.extend_from_slice(body);
        raw
    };

    // Without Content-Length (or chunked, which HTTP/1.0 lacks) a request has no body
    // (RFC 9112 6.3): the MAC is over no bytes, so a signature over the bytes that follow
    // is refused. HTTP/1.0 does not keep connections: hyper closes after answering.
    let mut raw = app.raw().await;
    raw.send(&request(&signature_line(&body), &body))
        .await
        .expect("send");
    raw.shutdown().await;
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 401, "{}", response.head);
    assert!(
        response.head.starts_with("HTTP/1.0 401"),
        "{}",
        response.head
    );
    assert_eq!(response.body, b"invalid signature");
    assert!(raw.closed().await);
    app.assert_not_called();
    // Signed over the empty body: accepted, with an empty body.
    let mut raw = app.raw().await;
    raw.send(&request(&signature_line(b""), b""))
        .await
        .expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 200, "{}", response.head);
    app.assert_delivered(b"");
    assert!(raw.closed().await);
    // With Content-Length, HTTP/1.0 works as HTTP/1.1 does.
    let mut raw = app.raw().await;
    let headers = format!(
        "content-length: {}\r\n{}",
        body.len(),
        signature_line(&body)
    );
    raw.send(&request(&headers, &body)).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 200, "{}", response.head);
    app.assert_delivered(&body);
    assert!(raw.closed().await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn half_a_body_then_a_stall_ends_with_the_timeout() {
    // Without a timeout the layer would wait for the rest of the body as long as the
    // connection stays open: a timeout belongs in every production stack.
    let mut app = App::with_timeout().await;
    let body = delivery();
    let signed = signed_post(&body);
    let half = &signed[..signed.len() - body.len() / 2];

    // HTTP/1.1: 408 from the timeout, and hyper closes (the body was never finished).
    let mut raw = app.raw().await;
    raw.send(half).await.expect("send");
    let response = raw.response().await.expect("an answer");
    assert_eq!(response.status, 408, "{}", response.head);
    assert!(raw.closed().await);
    app.assert_not_called();

    // HTTP/2: 408, the stream is reset and the connection goes on.
    let mut h2 = app.h2().await;
    // Its first half, then never another frame: a stalled client.
    let stalled = Script::split(&body[..body.len() / 2], &[]).then(Step::Stall);
    let headers = [signature_value(&body), content_length(body.len())];
    let answer = h2.post(&headers, frames(stalled)).await;
    assert_eq!(answer.expect("an answer").0, StatusCode::REQUEST_TIMEOUT);
    app.assert_not_called();
    assert!(app.delivers_on_h2(&mut h2).await);
    app.assert_healthy().await;
}

/// Whether `error` is the server closing the connection: a GOAWAY with ENHANCE_YOUR_CALM,
/// or the socket closed under a write.
fn is_go_away_or_closed(error: &hyper::Error) -> bool {
    let h2 = error
        .source()
        .and_then(|source| source.downcast_ref::<h2::Error>());
    match h2 {
        Some(h2) if h2.is_go_away() => h2.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM),
        Some(h2) => h2.is_io(),
        None => error
            .source()
            .is_some_and(|source| source.is::<std::io::Error>()),
    }
}

/// Whether `error` is the server resetting the stream with `reason`.
fn is_reset(error: &hyper::Error, reason: h2::Reason) -> bool {
    error
        .source()
        .and_then(|source| source.downcast_ref::<h2::Error>())
        .is_some_and(|error| error.is_remote() && error.reason() == Some(reason))
}
