//! The `Event` extractor and `Answer` responses over a real socket, behind the real
//! `VerifySignatureLayer`: a route without the layer answers 500, a verified body that is
//! not an event 400, and a verified event the handler's answer.

use std::{fs, net::SocketAddr, path::PathBuf};

use crate::common::{TIMEOUT, client, serve};
use authgear_webhook::{
    SIGNATURE_HEADER, VerifySignatureLayer,
    event::{Answer, Event, EventRejection, EventRejectionKind, Payload},
    sign,
};
use axum::{
    Router,
    body::Bytes,
    http::{Request, StatusCode, header},
    middleware::map_response,
    response::Response,
    routing::post,
};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::timeout;

use crate::common::SECRET;

fn delivery(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(format!("{name}.json"));
    fs::read(path).expect("read fixture")
}

/// Denies sign-ups from `blocked.example`, adds a claim to access tokens, allows the rest.
async fn receive(event: Event) -> Answer {
    match &event.payload {
        Payload::UserPreCreate(payload)
            if payload
                .user
                .email()
                .is_some_and(|email| email.ends_with("@blocked.example")) =>
        {
            Answer::deny().reason("blocked domain").into()
        }
        Payload::OidcJwtPreCreate(payload) => payload
            .allow()
            .add_claim("https://myapp.com/plan", "pro")
            .map_or_else(|_| Answer::allow(), Answer::from),
        _ => Answer::allow(),
    }
}

/// Copies the rejection's kind into a header, to see it from the client.
async fn expose_rejection(mut response: Response) -> Response {
    let kind = response
        .extensions()
        .get::<EventRejection>()
        .map(|rejection| format!("{:?}", rejection.kind()));
    if let Some(kind) = kind {
        let value = kind.parse().expect("header value");
        response.headers_mut().insert("x-rejection", value);
    }
    response
}

async fn app() -> SocketAddr {
    let router = Router::new()
        .route(
            "/hooks/authgear",
            post(receive).layer(VerifySignatureLayer::new(SECRET)),
        )
        // A route that forgot the layer.
        .route("/unguarded", post(receive))
        .layer(map_response(expose_rejection));
    serve(router).await
}

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    rejection: Option<String>,
    body: Bytes,
}

async fn post_to(addr: SocketAddr, path: &str, body: Vec<u8>, signed: bool) -> Reply {
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header(header::CONTENT_TYPE, "application/json");
    if signed {
        request = request.header(SIGNATURE_HEADER, sign(SECRET, &body));
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    let response = timeout(TIMEOUT, client(false).request(request))
        .await
        .expect("in time")
        .expect("response");
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("ascii").to_owned())
    };
    let content_type = header("content-type");
    let rejection = header("x-rejection");
    let body = timeout(TIMEOUT, response.into_body().collect())
        .await
        .expect("in time")
        .expect("body")
        .to_bytes();
    Reply {
        status,
        content_type,
        rejection,
        body,
    }
}

fn json_body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("a JSON body")
}

#[tokio::test]
async fn a_route_without_the_layer_answers_500_and_never_parses() {
    let addr = app().await;
    for signed in [false, true] {
        let reply = post_to(addr, "/unguarded", delivery("user.pre_create"), signed).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            reply.rejection.as_deref(),
            Some(format!("{:?}", EventRejectionKind::NotVerified).as_str())
        );
        // The body says nothing of the setup or the delivery.
        assert_eq!(reply.body, "internal server error");
    }
}

#[tokio::test]
async fn a_verified_body_that_is_not_an_event_gets_400() {
    let addr = app().await;
    // Not an Authgear envelope at all: not JSON, not an object, no string `id` or `type`.
    let not_events: [&[u8]; 6] = [
        b"not json",
        b"",
        b"{}",
        b"[]",
        br#"{"id":1,"seq":1,"type":"user.created","payload":{},"context":{"timestamp":1}}"#,
        br#"{"id":"1","seq":1,"payload":{},"context":{"timestamp":1}}"#,
    ];
    for body in not_events {
        let reply = post_to(addr, "/hooks/authgear", body.to_vec(), true).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.body, "body is not a valid Authgear event");
        assert_eq!(
            reply.rejection.as_deref(),
            Some(format!("{:?}", EventRejectionKind::InvalidEvent).as_str())
        );
    }
    // Unsigned, the layer refuses before the extractor runs.
    let reply = post_to(addr, "/hooks/authgear", delivery("user.pre_create"), false).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.rejection, None);
}

#[tokio::test]
async fn a_verified_event_reaches_the_handler_and_its_answer_is_json() {
    let addr = app().await;

    let reply = post_to(addr, "/hooks/authgear", delivery("user.pre_create"), true).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(json_body(&reply), json!({ "is_allowed": true }));

    // The same event from a blocked domain, re-signed.
    let blocked = String::from_utf8(delivery("user.pre_create"))
        .expect("utf-8")
        .replace("user@example.com", "user@blocked.example");
    let reply = post_to(addr, "/hooks/authgear", blocked.into_bytes(), true).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        json_body(&reply),
        json!({ "is_allowed": false, "reason": "blocked domain" })
    );

    let reply = post_to(
        addr,
        "/hooks/authgear",
        delivery("oidc.jwt.pre_create"),
        true,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    // Every claim of the token, and the one added.
    let sent: Value = serde_json::from_slice(&delivery("oidc.jwt.pre_create")).expect("json");
    let mut claims = sent["payload"]["jwt"]["payload"].clone();
    assert_eq!(claims["iss"], "https://myapp.authgear.cloud");
    claims["https://myapp.com/plan"] = json!("pro");
    assert_eq!(
        json_body(&reply),
        json!({ "is_allowed": true, "mutations": { "jwt": { "payload": claims } } })
    );

    // A non-blocking event, an unknown type and a known type whose payload does not fit the
    // model are handed over too.
    for body in [
        delivery("user.created"),
        br#"{"id":"1","seq":1,"type":"project.new","payload":{},"context":{"timestamp":1}}"#
            .to_vec(),
        br#"{"id":"1","seq":1,"type":"user.pre_create","payload":{},"context":{"timestamp":1}}"#
            .to_vec(),
    ] {
        let reply = post_to(addr, "/hooks/authgear", body, true).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(json_body(&reply), json!({ "is_allowed": true }));
    }
}
