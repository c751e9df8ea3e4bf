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

    // A sign-up from the refused domain: denied, with the reason, as Authgear's schema wants.
    let mut spam: serde_json::Value = serde_json::from_slice(&blocking).expect("JSON");
    spam["payload"]["user"]["standard_attributes"]["email"] = "bot@spam.example".into();
    let spam = serde_json::to_vec(&spam).expect("JSON");
    let (status, _, body) = server.post(&spam, Some(sign(SECRET, &spam))).await;
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    assert_eq!(answer["is_allowed"], false, "{body}");
    assert_eq!(answer["reason"], "Domain not accepted", "{body}");

    let event = fixture_event("user.created");
    let (status, _, _) = server.post(&event, Some(sign(SECRET, &event))).await;
    assert_eq!(status, StatusCode::OK);
    // One line, for the new user only: the blocking ones and the refusals print nothing.
    let user =
        serde_json::from_slice::<serde_json::Value>(&event).expect("JSON")["payload"]["user"]["id"]
            .clone();
    let user = user.as_str().expect("a user id");
    assert_eq!(server.next_line(), format!("new user {user}"));
    assert_eq!(server.lines_left(), Vec::<String>::new());
}

/// The README's handler is `examples/quickstart.rs`, as it is: the code a reader copies is
/// the code this file runs.
#[test]
fn the_readme_shows_the_quickstart_as_it_is() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../../examples/quickstart.rs");
    let code = example
        .split_once("\n\n")
        .map(|(_doc, code)| code)
        .expect("the example's doc, then its code");
    let shown = readme
        .split_once("```rust,no_run\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(shown, _)| shown)
        .expect("the README's first Rust block");
    assert_eq!(shown, code);
}
