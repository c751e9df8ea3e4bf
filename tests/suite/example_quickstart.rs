//! `cargo run --features axum --example quickstart`, run for real: signed deliveries are
//! answered, anything else refused.

use crate::common::{
    example::{SECRET, Server},
    fixture, fixture_event,
};
use authgear_webhook::sign;
use http::StatusCode;

#[tokio::test]
async fn quickstart_allows_signed_deliveries_and_refuses_the_rest() {
    let server = Server::start("quickstart", &[]);

    let blocking = fixture("user.pre_create.json");
    let (status, content_type, body) = server.post(&blocking, Some(sign(SECRET, &blocking))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"is_allowed":true}"#);

    let (status, _, _) = server.post(&blocking, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = sign("not-the-secret", &blocking);
    let (status, _, _) = server.post(&blocking, Some(forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let event = fixture_event("user.created");
    let (status, _, _) = server.post(&event, Some(sign(SECRET, &event))).await;
    assert_eq!(status, StatusCode::OK);
    // One line, for the non-blocking event only: the blocking one and the refusals print
    // nothing.
    let id = serde_json::from_slice::<serde_json::Value>(&event).expect("JSON")["id"].clone();
    let id = id.as_str().expect("an id");
    assert_eq!(server.next_line(), format!("user.created {id}"));
    assert_eq!(server.lines_left(), Vec::<String>::new());
}
