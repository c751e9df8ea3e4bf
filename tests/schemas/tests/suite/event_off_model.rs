//! A verified delivery is never refused for its shape: deliveries whose payload (or context,
//! or seq) does not fit the typed model reach the handler through the `Event` extractor,
//! behind the real `VerifySignatureLayer`, kept as sent (the JSON value round-trips
//! exactly), with the reason logged through `tracing`; a blocking one still gets an answer
//! Authgear's schema accepts. Only a body that is no Authgear envelope at all gets 400.

use std::{fs, path::PathBuf};

use authgear_webhook::event::{Answer, Event};
use serde_json::{Value, json};

fn fixture(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    serde_json::from_slice(&fs::read(path).expect("read fixture")).expect("json")
}

fn delivery(event_type: &str) -> Value {
    fixture(&format!("events/{event_type}.json"))
}

/// Off-model deliveries of today's event types: (what is wrong, delivery, reason).
fn off_model() -> Vec<(&'static str, Value, &'static str)> {
    let mut cases = Vec::new();

    let mut value = delivery("user.created");
    value["payload"]["user"]["is_verified"] = json!("yes");
    cases.push((
        "a field of the wrong type",
        value,
        "/payload/user/is_verified: invalid type: string, expected a boolean",
    ));

    let mut value = delivery("user.pre_create");
    value["payload"]["user"]
        .as_object_mut()
        .expect("user")
        .remove("id");
    cases.push((
        "a required field missing",
        value,
        "/payload/user: missing field `id`",
    ));

    let mut value = delivery("oidc.jwt.pre_create");
    value["payload"]["jwt"]["payload"] = json!("eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    cases.push((
        "a token that is not an object",
        value,
        "/payload/jwt/payload: invalid type: string, expected a map",
    ));

    let mut value = delivery("authentication.post_identified");
    value["payload"]["identification"]["identification"] = json!(5);
    cases.push((
        "an enum that is not a string",
        value,
        "/payload/identification/identification: invalid type: integer, expected a string",
    ));

    let mut value = delivery("user.authenticated");
    value["payload"]["session"] = json!(["not", "a", "session"]);
    cases.push((
        "a session that is an array",
        value,
        "/payload/session: invalid type: sequence, expected struct Session",
    ));

    let mut value = delivery("authentication.pre_authenticated");
    value["context"]["timestamp"] = json!("2026-11-30T04:00:00Z");
    cases.push((
        "a context that does not fit",
        value,
        "/context/timestamp: invalid type: string, expected i64",
    ));

    let mut value = delivery("user.profile.pre_update");
    value["seq"] = json!(1.5);
    cases.push((
        "a seq that is not an integer",
        value,
        "/seq: not a 64-bit integer",
    ));
    cases
}

/// Through the `Event` extractor (feature `axum`), the reason logged (feature `tracing`).
#[tokio::test]
async fn off_model_deliveries_reach_the_handler_kept_as_sent() {
    use std::sync::{Arc, Mutex};

    use authgear_webhook::{SIGNATURE_HEADER, VerifySignatureLayer, event::Payload, sign};
    use axum::{
        Router,
        body::Body,
        extract::State,
        http::{Request, StatusCode},
        routing::post,
    };
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::common::{Captured, SECRET};

    type Received = Arc<Mutex<Vec<Event>>>;

    /// Keeps every event it gets, and allows it.
    async fn receive(State(received): State<Received>, event: Event) -> Answer {
        received.lock().expect("not poisoned").push(event);
        Answer::allow()
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let received = Received::default();
    let app = Router::new()
        .route("/", post(receive))
        .with_state(received.clone())
        .layer(VerifySignatureLayer::new(SECRET));

    for (what, value, reason) in off_model() {
        let body = serde_json::to_vec(&value).expect("json");
        let request = Request::post("/")
            .header(SIGNATURE_HEADER, sign(SECRET, &body))
            .body(Body::from(body))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        let answer = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(answer, r#"{"is_allowed":true}"#, "{what}");

        let event = received
            .lock()
            .expect("not poisoned")
            .pop()
            .expect("the handler got it");
        assert_eq!(event.event_type(), value["type"], "{what}");
        assert_eq!(event.id, value["id"], "{what}");
        assert_eq!(event.off_model_reason(), Some(reason), "{what}");
        if reason.starts_with("/payload") {
            let Payload::OffModel { payload, .. } = &event.payload else {
                panic!("{what}: not kept off-model");
            };
            assert_eq!(payload, &value["payload"], "{what}");
        }
        // Round trip: the same JSON value as sent.
        assert_eq!(serde_json::to_value(&event).expect("json"), value, "{what}");

        // Logged once, as a warning with the reason, and no value of the delivery.
        let log = captured.take();
        assert_eq!(log.lines().count(), 1, "{what}: {log}");
        assert!(log.contains("WARN"), "{what}: {log}");
        assert!(log.contains(reason), "{what}: {log}");
        assert!(log.contains(value["type"].as_str().expect("type")), "{log}");
        for secret in ["yes", "eyJhbGciOiJSUzI1NiJ9", "2026-11-30T04:00:00Z"] {
            assert!(!log.contains(secret), "{what}: {log}");
        }
    }

    // A delivery that fits is not logged.
    let body = fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events/user.created.json"),
    )
    .expect("fixture");
    let request = Request::post("/")
        .header(SIGNATURE_HEADER, sign(SECRET, &body))
        .body(Body::from(body))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let event = received.lock().expect("not poisoned").pop().expect("event");
    assert_eq!(event.off_model_reason(), None);
    assert_eq!(captured.take(), "");

    // Not an envelope at all: 400, logged as a warning, the handler never runs.
    for body in [&b"not json"[..], b"{}", br#"{"id":"1","payload":{}}"#] {
        let request = Request::post("/")
            .header(SIGNATURE_HEADER, sign(SECRET, body))
            .body(Body::from(body.to_vec()))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let log = captured.take();
        assert!(log.contains("WARN") && log.contains("refused"), "{log}");
    }
    assert!(received.lock().expect("not poisoned").is_empty());
}

#[test]
fn answers_to_off_model_blocking_events_fit_authgears_schema() {
    for (what, value, _) in off_model() {
        let event: Event = serde_json::from_value(value.clone()).expect(what);
        if !event.is_blocking() {
            continue;
        }
        let schema = fixture(&format!(
            "schema/{}.response.schema.json",
            event.event_type()
        ));
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        for answer in [
            Answer::allow(),
            Answer::deny().reason("no").into(),
            Answer::deny().title("Refused").reason("no").into(),
        ] {
            let answer = serde_json::to_value(&answer).expect("json");
            assert!(validator.is_valid(&answer), "{what}: {answer}");
        }
    }
}
