//! axum, over a real socket: the layer on a whole router, on matched routes only and on one
//! route; a different secret and limit per route in one app; composed with the tower-http
//! layers people put around webhooks; and axum's own extractors on the verified body.

use std::{net::SocketAddr, time::Duration};

use crate::common::{TIMEOUT, client, serve};
use authgear_webhook::{
    Rejection, RejectionKind, SIGNATURE_HEADER, Verified, VerifySignatureLayer, sign,
};
use axum::{
    Extension, Json, Router,
    body::Bytes,
    http::{HeaderMap, Request, StatusCode, header},
    middleware::map_response,
    response::Response,
    routing::{get, post},
};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::timeout;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer, compression::CompressionLayer, limit::RequestBodyLimitLayer,
    timeout::TimeoutLayer, trace::TraceLayer,
};

use crate::common::SECRET as SECRET_A;
const SECRET_B: &str = "q7Wn2Bv5Xc8Zl1Kj4Hg6Fd9Sa3Pm0Ot_";
const EVENT: &str = r#"{"id":"0000000000000001","seq":1,"type":"user.created"}"#;

/// How a request is signed.
#[derive(Clone, Copy, Debug)]
enum Signed<'a> {
    No,
    With(&'a str),
}

/// A response, with the parts the tests look at.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// The body, as text.
    body: String,
    raw: Bytes,
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    signed: Signed<'_>,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let body = body.into();
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Signed::With(secret) = signed {
        builder = builder.header(SIGNATURE_HEADER, sign(secret, &body));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body)).expect("request");
    let response = timeout(TIMEOUT, client(false).request(request))
        .await
        .expect("in time")
        .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
        raw,
    }
}

async fn post_to(addr: SocketAddr, path: &str, signed: Signed<'_>, body: &'static str) -> Answer {
    request(addr, "POST", path, signed, &[], body).await
}

async fn echo(body: Bytes) -> Bytes {
    body
}

#[tokio::test]
async fn router_layer_guards_every_route_and_the_fallback() {
    let app = Router::new()
        .route("/hooks/authgear", post(echo))
        .layer(VerifySignatureLayer::new(SECRET_A));
    let addr = serve(app).await;

    let signed = post_to(addr, "/hooks/authgear", Signed::With(SECRET_A), EVENT).await;
    assert_eq!(
        (signed.status, signed.body.as_str()),
        (StatusCode::OK, EVENT)
    );
    let unsigned = post_to(addr, "/hooks/authgear", Signed::No, EVENT).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    // `Router::layer` wraps the fallback too: an unknown path is refused before routing.
    let unknown = post_to(addr, "/nowhere", Signed::No, EVENT).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let unknown = post_to(addr, "/nowhere", Signed::With(SECRET_A), EVENT).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn route_layer_guards_matched_routes_and_a_404_stays_a_404() {
    let app = Router::new()
        .route("/hooks/authgear", post(echo))
        .route_layer(VerifySignatureLayer::new(SECRET_A));
    let addr = serve(app).await;

    let signed = post_to(addr, "/hooks/authgear", Signed::With(SECRET_A), EVENT).await;
    assert_eq!(
        (signed.status, signed.body.as_str()),
        (StatusCode::OK, EVENT)
    );
    let unsigned = post_to(addr, "/hooks/authgear", Signed::No, EVENT).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let unknown = post_to(addr, "/nowhere", Signed::No, EVENT).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn method_router_layer_guards_one_route_only() {
    let app = Router::new()
        .route(
            "/hooks/authgear",
            post(echo).layer(VerifySignatureLayer::new(SECRET_A)),
        )
        .route("/public", post(echo));
    let addr = serve(app).await;

    let signed = post_to(addr, "/hooks/authgear", Signed::With(SECRET_A), EVENT).await;
    assert_eq!(
        (signed.status, signed.body.as_str()),
        (StatusCode::OK, EVENT)
    );
    let unsigned = post_to(addr, "/hooks/authgear", Signed::No, EVENT).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let public = post_to(addr, "/public", Signed::No, EVENT).await;
    assert_eq!(
        (public.status, public.body.as_str()),
        (StatusCode::OK, EVENT)
    );
}

/// `/hooks/authgear` with secret A and a 64 KiB limit, `/hooks/sms` (Authgear's custom SMS
/// provider hook, same signing) with secret B, and a public route, in one app.
fn per_route_app() -> Router {
    Router::new()
        .route(
            "/hooks/authgear",
            post(echo).layer(VerifySignatureLayer::new(SECRET_A).body_limit(64 * 1024)),
        )
        .route(
            "/hooks/sms",
            post(echo).layer(VerifySignatureLayer::new(SECRET_B)),
        )
        .route("/health", get(|| async { "up" }))
}

#[tokio::test]
async fn per_route_secrets_do_not_cross() {
    let addr = serve(per_route_app()).await;
    let sms = r#"{"to":"+85298765432","body":"Your code is 123456"}"#;

    let a = post_to(addr, "/hooks/authgear", Signed::With(SECRET_A), EVENT).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, EVENT));
    let b = post_to(addr, "/hooks/sms", Signed::With(SECRET_B), sms).await;
    assert_eq!((b.status, b.body.as_str()), (StatusCode::OK, sms));

    // Signed for one route, refused on the other.
    let a_on_b = post_to(addr, "/hooks/sms", Signed::With(SECRET_A), sms).await;
    assert_eq!(a_on_b.status, StatusCode::UNAUTHORIZED);
    let b_on_a = post_to(addr, "/hooks/authgear", Signed::With(SECRET_B), EVENT).await;
    assert_eq!(b_on_a.status, StatusCode::UNAUTHORIZED);

    // The public route is untouched, signed or not.
    let health = request(addr, "GET", "/health", Signed::No, &[], "").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "up")
    );
    let health = request(addr, "GET", "/health", Signed::With(SECRET_B), &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn per_route_limits_apply_to_their_route_only() {
    let addr = serve(per_route_app()).await;
    let limit = 64 * 1024;
    let fits = vec![b' '; limit];
    let too_large = vec![b' '; limit + 1];
    let post = |path, secret, body: &Vec<u8>| {
        request(addr, "POST", path, Signed::With(secret), &[], body.clone())
    };

    assert_eq!(
        post("/hooks/authgear", SECRET_A, &fits).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post("/hooks/authgear", SECRET_A, &too_large).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // The SMS route keeps the default limit (1 MiB).
    assert_eq!(
        post("/hooks/sms", SECRET_B, &too_large).await.status,
        StatusCode::OK
    );
}

/// The tower-http layers people stack around a webhook, outermost first, with an outer
/// middleware that reads the refusal reason the layer attaches to its response.
fn composed_app() -> Router {
    let big = || async { "x".repeat(4096) };
    Router::new()
        .route("/hooks/authgear", post(echo))
        .route("/hooks/big", post(big))
        .route(
            "/hooks/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "too late"
            }),
        )
        .route(
            "/hooks/panic",
            post(|| async {
                panic!("deliberate panic in a verified handler (tests/suite/axum_stack.rs)");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(map_response(expose_rejection))
                .layer(TraceLayer::new_for_http())
                .layer(CatchPanicLayer::new())
                // Outside the timeout: tower-http's limit body has no `Default`, which
                // `TimeoutLayer` needs of the bodies inside it (ours has one).
                .layer(RequestBodyLimitLayer::new(64 * 1024))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_millis(300),
                ))
                .layer(CompressionLayer::new())
                .layer(VerifySignatureLayer::new(SECRET_A)),
        )
}

/// Copies the refusal reason into a header, to show it reaches the outermost layer.
async fn expose_rejection<B>(mut response: Response<B>) -> Response<B> {
    let kind = response
        .extensions()
        .get::<Rejection>()
        .map(|rejection| format!("{:?}", rejection.kind()));
    if let Some(kind) = kind {
        let value = kind.parse().expect("header value");
        response.headers_mut().insert("x-rejection", value);
    }
    response
}

#[tokio::test]
async fn composes_with_tower_http_layers() {
    let addr = serve(composed_app()).await;
    let gzip = [(header::ACCEPT_ENCODING.as_str(), "gzip")];

    // Valid: through every layer to the handler and back, compressed when asked.
    let valid = post_to(addr, "/hooks/authgear", Signed::With(SECRET_A), EVENT).await;
    assert_eq!((valid.status, valid.body.as_str()), (StatusCode::OK, EVENT));
    assert!(valid.headers.get("x-rejection").is_none());
    let big = request(
        addr,
        "POST",
        "/hooks/big",
        Signed::With(SECRET_A),
        &gzip,
        EVENT,
    )
    .await;
    assert_eq!(big.status, StatusCode::OK);
    assert_eq!(big.headers[header::CONTENT_ENCODING], "gzip");
    assert!(big.raw.starts_with(&[0x1f, 0x8b]) && big.raw.len() < 4096);

    // Rejected: the refusal goes out through the same layers, reason attached.
    let forged = request(
        addr,
        "POST",
        "/hooks/authgear",
        Signed::With(SECRET_B),
        &gzip,
        EVENT,
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        forged.headers["x-rejection"],
        format!("{:?}", RejectionKind::InvalidSignature)
    );
    assert_eq!(forged.body, "invalid signature");
    let unsigned = request(addr, "POST", "/hooks/big", Signed::No, &gzip, EVENT).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);

    // tower-http's own limit answers before the body is read.
    let too_large = vec![b' '; 64 * 1024 + 1];
    let limited = request(
        addr,
        "POST",
        "/hooks/authgear",
        Signed::With(SECRET_A),
        &[],
        too_large,
    )
    .await;
    assert_eq!(limited.status, StatusCode::PAYLOAD_TOO_LARGE);

    // A verified handler that is too slow or panics is answered by the outer layers.
    let slow = post_to(addr, "/hooks/slow", Signed::With(SECRET_A), EVENT).await;
    assert_eq!(slow.status, StatusCode::REQUEST_TIMEOUT);
    let panicked = post_to(addr, "/hooks/panic", Signed::With(SECRET_A), EVENT).await;
    assert_eq!(panicked.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(panicked.headers.get("x-rejection").is_none());
}

#[tokio::test]
async fn axum_extractors_read_the_verified_body() {
    let app = Router::new()
        .route(
            "/json",
            post(|Json(event): Json<Value>| async move { Json(event) }),
        )
        .route("/bytes", post(|body: Bytes| async move { body }))
        .route("/string", post(|body: String| async move { body }))
        .route(
            "/headers",
            post(|headers: HeaderMap, body: String| async move {
                let signature = headers[SIGNATURE_HEADER]
                    .to_str()
                    .expect("ascii")
                    .to_owned();
                assert_eq!(signature, sign(SECRET_A, body.as_bytes()));
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .expect("ascii")
                    .to_owned()
            }),
        )
        .route(
            "/verified",
            post(|Extension(verified): Extension<Verified>| async move {
                verified.secret_index().to_string()
            }),
        )
        .layer(VerifySignatureLayer::new(SECRET_A).also_accept(SECRET_B));
    let addr = serve(app).await;
    let json = [(header::CONTENT_TYPE.as_str(), "application/json")];
    // Go's encoder escapes `<`, `>` and `&`: the raw bytes are what was signed.
    let body = r#"{"type":"user.created","payload":{"note":"\u003cb\u003e \u0026"}}"#;

    let post = |path, secret| request(addr, "POST", path, Signed::With(secret), &json, body);

    let parsed = post("/json", SECRET_A).await;
    assert_eq!(parsed.status, StatusCode::OK);
    let value: Value = serde_json::from_str(&parsed.body).expect("json");
    assert_eq!(
        value,
        json!({"type": "user.created", "payload": {"note": "<b> &"}})
    );
    assert_eq!(post("/bytes", SECRET_A).await.body, body);
    assert_eq!(post("/string", SECRET_A).await.body, body);
    let headers = post("/headers", SECRET_A).await;
    assert_eq!(
        (headers.status, headers.body.as_str()),
        (StatusCode::OK, "application/json")
    );
    assert_eq!(post("/verified", SECRET_A).await.body, "0");
    assert_eq!(post("/verified", SECRET_B).await.body, "1");
}
