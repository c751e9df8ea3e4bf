//! The middleware in process: every row of the behaviour table, tower discipline, and
//! properties over random bodies and chunkings.

use std::convert::Infallible;

use crate::common::{Recorder, Script, Step, text};
use authgear_webhook::{
    Rejection, RejectionKind, SIGNATURE_HEADER, VerifiedBody, Verifier, VerifySignatureLayer, sign,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::{Either, Full};
use proptest::prelude::*;
use tower::{Layer, Service, ServiceExt};

use crate::common::SECRET;
const BODY: &[u8] = br#"{"id":"0000000000022b55","seq":142165,"type":"user.created"}"#;

fn signed<B>(body: B, signature: &str) -> Request<B> {
    Request::post("/hook")
        .header(header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .expect("valid request")
}

/// Sends `request` through the layer to a recorder; returns status, text and the recorder.
async fn send<B>(layer: VerifySignatureLayer, request: Request<B>) -> (StatusCode, String, Recorder)
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let recorder = Recorder::default();
    let response = layer
        .layer(recorder.service())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    (status, text(response).await, recorder)
}

#[tokio::test]
async fn signed_body_reaches_the_inner_service_unchanged() {
    let request = signed(Full::new(Bytes::from_static(BODY)), &sign(SECRET, BODY));
    let expected_headers = request.headers().clone();
    let (status, text, recorder) = send(VerifySignatureLayer::new(SECRET), request).await;

    assert_eq!((status, text.as_str()), (StatusCode::OK, "inner"));
    assert_eq!(recorder.calls(), 1);
    let seen = &recorder.seen()[0];
    assert_eq!(seen.body, BODY);
    assert_eq!(seen.headers, expected_headers);
    assert_eq!(seen.verified.map(|v| v.secret_index()), Some(0));
}

#[tokio::test]
async fn any_accepted_secret_verifies_and_is_named() {
    let layer = VerifySignatureLayer::new("new")
        .also_accept("old")
        .also_accept("older");
    for (secret, index) in [("new", 0), ("old", 1), ("older", 2)] {
        let request = signed(Full::new(Bytes::from_static(BODY)), &sign(secret, BODY));
        let (status, _, recorder) = send(layer.clone(), request).await;
        assert_eq!(status, StatusCode::OK, "{secret}");
        assert_eq!(
            recorder.seen()[0].verified.map(|v| v.secret_index()),
            Some(index)
        );
    }
    let request = signed(Full::new(Bytes::from_static(BODY)), &sign("other", BODY));
    assert_eq!(send(layer, request).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_signature_headers_are_refused_with_401() {
    let good = sign(SECRET, BODY);
    let cases: Vec<(&str, Vec<HeaderValue>, RejectionKind)> = vec![
        ("missing", vec![], RejectionKind::MissingSignature),
        (
            "empty",
            vec![HeaderValue::from_static("")],
            RejectionKind::MissingSignature,
        ),
        (
            "short",
            vec![HeaderValue::from_str(&good[1..]).expect("hex")],
            RejectionKind::MalformedSignature,
        ),
        (
            "long",
            vec![HeaderValue::from_str(&format!("{good}00")).expect("hex")],
            RejectionKind::MalformedSignature,
        ),
        (
            "non-hex",
            vec![HeaderValue::from_str(&format!("{}z", &good[1..])).expect("ascii")],
            RejectionKind::MalformedSignature,
        ),
        (
            "prefixed",
            vec![HeaderValue::from_str(&format!("sha256={good}")).expect("ascii")],
            RejectionKind::MalformedSignature,
        ),
        (
            "twice",
            vec![HeaderValue::from_str(&good).expect("hex"); 2],
            RejectionKind::MalformedSignature,
        ),
        (
            "other secret",
            vec![HeaderValue::from_str(&sign("other", BODY)).expect("hex")],
            RejectionKind::InvalidSignature,
        ),
    ];
    for (name, values, kind) in cases {
        let mut request = Request::post("/hook")
            .body(Full::new(Bytes::from_static(BODY)))
            .expect("valid request");
        for value in values {
            request.headers_mut().append(SIGNATURE_HEADER, value);
        }
        let recorder = Recorder::default();
        let response = VerifySignatureLayer::new(SECRET)
            .layer(recorder.service())
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            response
                .extensions()
                .get::<Rejection>()
                .map(Rejection::kind),
            Some(kind),
            "{name}"
        );
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"text/plain; charset=utf-8"[..])
        );
        let text = text(response).await;
        assert_no_leak(&text);
        assert_eq!(recorder.calls(), 0, "{name}");
    }
}

/// A refusal message says what happened and nothing more.
fn assert_no_leak(text: &str) {
    assert!(!text.is_empty() && text.len() < 80, "{text:?}");
    assert!(!text.contains(SECRET), "{text:?}");
    assert!(!text.contains(&sign(SECRET, BODY)), "{text:?}");
    assert!(!text.contains("user.created"), "{text:?}");
}

#[tokio::test]
async fn changed_body_is_refused() {
    let signature = sign(SECRET, BODY);
    let mut flipped = BODY.to_vec();
    flipped[10] ^= 1;
    let reserialised = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(BODY).expect("json"),
    )
    .expect("json");
    let mut extended = BODY.to_vec();
    extended.push(b'\n');
    for body in [flipped, reserialised, extended, Vec::new()] {
        let (status, text, recorder) = send(
            VerifySignatureLayer::new(SECRET),
            signed(Full::new(Bytes::from(body)), &signature),
        )
        .await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid signature")
        );
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn upper_case_hex_is_accepted() {
    let request = signed(
        Full::new(Bytes::from_static(BODY)),
        &sign(SECRET, BODY).to_uppercase(),
    );
    let (status, _, recorder) = send(VerifySignatureLayer::new(SECRET), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorder.calls(), 1);
}

#[tokio::test]
async fn empty_body_correctly_signed_is_accepted() {
    let request = signed(Full::new(Bytes::new()), &sign(SECRET, b""));
    let (status, _, recorder) = send(VerifySignatureLayer::new(SECRET), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body, "");
}

#[tokio::test]
async fn an_empty_secret_matches_nothing() {
    let request = signed(Full::new(Bytes::from_static(BODY)), &sign("", BODY));
    let (status, _, recorder) = send(VerifySignatureLayer::new(""), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn declared_length_above_the_limit_is_refused_without_reading() {
    // Announced by the body (as hyper does from Content-Length); its first poll panics,
    // proving the layer answered without reading it.
    let unreadable = Script::new([Step::Panic]).exact(1001);
    let request = signed(unreadable, &sign(SECRET, b""));
    let (status, text, recorder) =
        send(VerifySignatureLayer::new(SECRET).body_limit(1000), request).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    );
    assert_eq!(recorder.calls(), 0);

    // Announced by the header only; and by the header, while the body knows a smaller
    // exact length: the two disagree, and the larger is judged (found by fuzzing).
    let header_only = signed(Script::split(&[b'x'; 10], &[]), &sign(SECRET, &[b'x'; 10]));
    let smaller_body = signed(Full::new(Bytes::from_static(BODY)), &sign(SECRET, BODY));
    for mut request in [
        header_only.map(Either::Left),
        smaller_body.map(Either::Right),
    ] {
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("2000000"));
        let (status, _, recorder) = send(VerifySignatureLayer::new(SECRET), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn streamed_body_is_refused_as_soon_as_it_crosses_the_limit() {
    // 10 frames of 100 bytes, limit 450: the fifth frame crosses it and the sixth is never
    // read (it would panic).
    let body = vec![b'a'; 500];
    let frames = Script::split(&body, &[100; 4]);
    let request = signed(frames.then_error(), &sign(SECRET, &body));
    let (status, _, recorder) =
        send(VerifySignatureLayer::new(SECRET).body_limit(450), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(recorder.calls(), 0);

    // Exactly at the limit is fine.
    let request = signed(Script::split(&body, &[100; 4]), &sign(SECRET, &body));
    let (status, _, recorder) =
        send(VerifySignatureLayer::new(SECRET).body_limit(500), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorder.seen()[0].body, body);
}

#[tokio::test]
async fn body_failing_midway_is_a_400() {
    let request = signed(Script::split(BODY, &[5]).then_error(), &sign(SECRET, BODY));
    let (status, text, recorder) = send(VerifySignatureLayer::new(SECRET), request).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::BAD_REQUEST, "request body could not be read")
    );
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn one_byte_frames_and_trailers_arrive_intact() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("abc"));
    let request = signed(
        Script::split(BODY, &vec![1; BODY.len()]).then_trailers(trailers.clone()),
        &sign(SECRET, BODY),
    );
    let (status, _, recorder) = send(VerifySignatureLayer::new(SECRET), request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = &recorder.seen()[0];
    assert_eq!(seen.body, BODY);
    assert_eq!(seen.trailers, Some(trailers));
}

#[tokio::test]
async fn inner_errors_and_responses_pass_through() {
    let inner = tower::service_fn(|_: Request<VerifiedBody>| async {
        Err::<http::Response<String>, _>("inner failed")
    });
    let service = VerifySignatureLayer::new(SECRET).layer(inner);
    let request = signed(Full::new(Bytes::from_static(BODY)), &sign(SECRET, BODY));
    assert_eq!(
        service.clone().oneshot(request).await.err(),
        Some("inner failed")
    );

    // A client mistake is still a response, not an error, even with a fallible inner service.
    let request = signed(Full::new(Bytes::from_static(BODY)), &sign("x", BODY));
    let response = service.oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let inner = tower::service_fn(|_: Request<VerifiedBody>| async {
        let response = http::Response::builder()
            .status(StatusCode::ACCEPTED)
            .header("x-inner", "1")
            .body("answer".to_owned())
            .expect("valid response");
        Ok::<_, Infallible>(response)
    });
    let request = signed(Full::new(Bytes::from_static(BODY)), &sign(SECRET, BODY));
    let response = VerifySignatureLayer::new(SECRET)
        .layer(inner)
        .oneshot(request)
        .await
        .expect("ok");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-inner"], "1");
    assert!(response.extensions().get::<Rejection>().is_none());
    assert_eq!(text(response).await, "answer");
}

#[tokio::test]
async fn the_ready_service_is_the_one_called() {
    // tower-test's mock panics when a clone that was not made ready is called.
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<VerifiedBody>, http::Response<String>>();
    let mut service = VerifySignatureLayer::new(SECRET).layer(mock);
    handle.allow(1);
    std::future::poll_fn(|cx| Service::<Request<Script>>::poll_ready(&mut service, cx))
        .await
        .expect("ready");
    let request = signed(Script::split(BODY, &[3, 3]), &sign(SECRET, BODY));
    let response = tokio::spawn(service.call(request));

    let next = tokio::time::timeout(std::time::Duration::from_secs(10), handle.next_request());
    let (request, respond) = next
        .await
        .expect("the ready inner service was called")
        .expect("a request");
    assert_eq!(request.into_body().into_bytes(), BODY);
    respond.send_response(http::Response::new("done".to_owned()));
    let response = response.await.expect("no panic").expect("ok");
    assert_eq!(text(response).await, "done");
}

#[test]
fn layer_service_and_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let layer = VerifySignatureLayer::new(SECRET);
    send_sync(&layer);
    let mut service = layer.layer(Recorder::default().service());
    send_sync(&service);
    let future = service.call(signed(axum::body::Body::from(BODY), &sign(SECRET, BODY)));
    send(&future);
}

#[test]
fn debug_shows_no_key_material() {
    let layer = VerifySignatureLayer::new(SECRET).also_accept("another-secret");
    let debug = format!("{layer:?} {:?}", layer.layer(()));
    assert!(
        !debug.contains(SECRET) && !debug.contains("another-secret"),
        "{debug}"
    );
    assert!(debug.contains("body_limit: 1048576"), "{debug}");
}

/// Splits `len` at the given cut points (sorted, deduplicated) into frame lengths.
fn frame_lengths(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
    points.sort_unstable();
    let mut last = 0;
    points
        .into_iter()
        .map(|point| {
            let length = point - last;
            last = point;
            length
        })
        .collect()
}

fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signed_bodies_arrive_byte_for_byte(
        body in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let lengths = frame_lengths(body.len(), &cuts);
        let request = signed(Script::split(&body, &lengths), &sign(SECRET, &body));
        let (status, _, recorder) = run(send(VerifySignatureLayer::new(SECRET), request));
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(recorder.calls(), 1);
        prop_assert_eq!(&recorder.seen()[0].body[..], &body[..]);
    }

    #[test]
    fn any_change_is_refused(
        body in prop::collection::vec(any::<u8>(), 1..2048),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        bit in any::<prop::sample::Index>(),
        what in 0..3u8,
    ) {
        let mut signature = hex::decode(sign(SECRET, &body)).expect("hex");
        let mut sent = body.clone();
        let mut secret = SECRET.as_bytes().to_vec();
        let target: &mut Vec<u8> = match what {
            0 => &mut sent,
            1 => &mut signature,
            _ => &mut secret,
        };
        let bit = bit.index(target.len() * 8);
        target[bit / 8] ^= 1 << (bit % 8);

        let lengths = frame_lengths(sent.len(), &cuts);
        let request = signed(Script::split(&sent, &lengths), &hex::encode(&signature));
        let (status, _, recorder) = run(send(VerifySignatureLayer::new(secret), request));
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn a_body_in_one_frame_is_handed_on_without_a_copy() {
    let body = Bytes::from(BODY.to_vec());
    let address = body.as_ptr() as usize;
    let inner = tower::service_fn(move |request: Request<VerifiedBody>| async move {
        let received = request.into_body().into_bytes();
        let same = received.as_ptr() as usize == address;
        Ok::<_, Infallible>(http::Response::new(same.to_string()))
    });
    let request = signed(Full::new(body), &sign(SECRET, BODY));
    let response = VerifySignatureLayer::new(SECRET)
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(text(response).await, "true");
}

/// A signature header value of one of several shapes: valid (lower or upper case, padded),
/// wrong (one bit flipped), malformed (random printable text, truncated, `sha256=`) or empty.
fn signature_of(valid: &str, shape: u8, noise: &str, bit: prop::sample::Index) -> String {
    match shape {
        0 => valid.to_owned(),
        1 => valid.to_uppercase(),
        2 => format!(" {valid}\t"),
        3 => {
            let mut tag = hex::decode(valid).expect("hex");
            let bit = bit.index(tag.len() * 8);
            tag[bit / 8] ^= 1 << (bit % 8);
            hex::encode(tag)
        }
        4 => noise.to_owned(),
        5 => valid[..bit.index(valid.len())].to_owned(),
        6 => format!("sha256={valid}"),
        _ => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `Verifier::verify`, its incremental form over a random chunking and the layer give
    /// the same answer on every input: which secret matched, or why it was refused.
    #[test]
    fn verifier_incremental_and_layer_agree(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        secrets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..4),
        signer in any::<prop::sample::Index>(),
        stranger in any::<bool>(),
        shape in 0..8u8,
        noise in "[ -~]{0,70}",
        bit in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let key: &[u8] = if stranger { b"not-an-accepted-secret" } else { &secrets[signer.index(secrets.len())] };
        let signature = signature_of(&sign(key, &body), shape, &noise, bit);

        let mut verifier = Verifier::new(secrets[0].clone());
        let mut layer = VerifySignatureLayer::new(secrets[0].clone());
        for secret in &secrets[1..] {
            verifier = verifier.also_accept(secret.clone());
            layer = layer.also_accept(secret.clone());
        }

        let whole = verifier.verify(signature.as_bytes(), &body);

        let lengths = frame_lengths(body.len(), &cuts);
        let mut verification = verifier.start();
        let mut at = 0;
        for length in &lengths {
            verification.update(&body[at..at + length]);
            at += length;
        }
        verification.update(&body[at..]);
        let incremental = verification.finish(signature.as_bytes());

        let recorder = Recorder::default();
        let at_layer = run(async {
            let split = lengths.clone();
            let request = signed(Script::split(&body, &split), &signature);
            let response = layer.layer(recorder.service()).oneshot(request).await.expect("infallible");
            match response.extensions().get::<Rejection>() {
                Some(rejection) => Err(rejection.kind()),
                None => recorder.seen()[0].verified.ok_or(RejectionKind::InvalidSignature),
            }
        });

        prop_assert_eq!(whole, incremental);
        prop_assert_eq!(whole, at_layer);
        // And the answer is the right one.
        let expected_index = (!stranger && shape <= 2)
            .then(|| secrets.iter().position(|secret| !secret.is_empty() && secret[..] == *key))
            .flatten();
        match (shape, expected_index) {
            (0..=2, Some(index)) => prop_assert_eq!(whole.map(|v| v.secret_index()), Ok(index)),
            (0..=3, _) => prop_assert_eq!(whole, Err(RejectionKind::InvalidSignature)),
            _ => prop_assert!(whole.is_err()),
        }
    }
}
