//! Every example delivery of today's server (`tests/fixtures/events/`, edge cases included),
//! and deliveries whose payload does not fit the model, sent byte for byte and signed to the
//! real `axum_server` example over a socket: 200, never 400, and every answer to a blocking
//! event valid against Authgear's own response schema (`tests/fixtures/schema/`).

use std::{
    fs,
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::common::example::{SECRET, Server};
use authgear_webhook::{event::is_blocking_type, sign};
use http::StatusCode;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every `.json` file of `tests/fixtures/events/` and its `edge/`: (name, bytes).
fn deliveries() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["events", "events/edge"] {
        for entry in fs::read_dir(fixtures().join(dir)).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            (name, fs::read(&path).expect("read"))
        })
        .collect()
}

/// Deliveries that do not fit the model: a wrong-typed field, a required field missing, a
/// context that does not fit.
fn off_model() -> Vec<(String, Vec<u8>)> {
    let read = |event_type: &str| -> Value {
        let path = fixtures().join(format!("events/{event_type}.json"));
        serde_json::from_slice(&fs::read(path).expect("read")).expect("json")
    };
    let mut cases = Vec::new();
    for event_type in [
        "user.pre_create",
        "oidc.jwt.pre_create",
        "authentication.post_identified",
        "user.created",
    ] {
        let mut value = read(event_type);
        let payload = value["payload"].as_object_mut().expect("payload");
        if let Some(user) = payload.get_mut("user") {
            user["is_disabled"] = json!("no");
        } else {
            payload.remove("identification");
        }
        cases.push((format!("{event_type} off-model"), value));
        let mut value = read(event_type);
        value["context"]["preferred_languages"] = json!("en");
        cases.push((format!("{event_type} context off-model"), value));
    }
    cases
        .into_iter()
        .map(|(name, value)| (name, serde_json::to_vec(&value).expect("json")))
        .collect()
}

fn schema(event_type: &str) -> jsonschema::Validator {
    let path = fixtures().join(format!("schema/{event_type}.response.schema.json"));
    let schema: Value = serde_json::from_slice(&fs::read(path).expect("schema")).expect("json");
    jsonschema::validator_for(&schema).expect("a valid schema")
}

#[tokio::test]
async fn every_delivery_of_todays_server_gets_200_and_a_valid_answer() {
    // The fixtures keep their ids and old timestamps: replay protection off, as for a
    // captured delivery.
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_REPLAY", "off")]);
    let deliveries = deliveries();
    assert!(deliveries.len() >= 55, "{}", deliveries.len());
    for (name, body) in deliveries.into_iter().chain(off_model()) {
        let value: Value = serde_json::from_slice(&body).expect("json");
        let event_type = value["type"].as_str().expect("type");
        let (status, content_type, answer) = server.post(&body, Some(sign(SECRET, &body))).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        if is_blocking_type(event_type) {
            assert_eq!(content_type.as_deref(), Some("application/json"), "{name}");
            let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
            if let Err(error) = schema(event_type).validate(&answer) {
                panic!("{name}: Authgear refuses {answer}: {error}");
            }
            assert_eq!(answer["is_allowed"], true, "{name}");
            if event_type == "oidc.jwt.pre_create" && !name.contains("off-model") {
                // The example adds one claim and keeps every claim of the token.
                let claims = answer["mutations"]["jwt"]["payload"]
                    .as_object()
                    .expect("claims");
                let sent = value["payload"]["jwt"]["payload"]
                    .as_object()
                    .expect("sent");
                assert_eq!(claims.len(), sent.len() + 1, "{name}");
                for (claim, sent) in sent {
                    assert_eq!(claims.get(claim), Some(sent), "{name}: {claim}");
                }
            }
        }
    }
}

/// `body` with a new envelope id and the current time, its other bytes as Go wrote them.
fn fresh(body: &[u8], id: &str) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let value: Value = serde_json::from_str(&text).expect("json");
    let old_id = format!(r#"{{"id":{}"#, value["id"]);
    let old_time = format!(r#""timestamp":{}"#, value["context"]["timestamp"]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(text.starts_with(&old_id), "{text}");
    text.replacen(&old_id, &format!(r#"{{"id":"{id}""#), 1)
        .replacen(&old_time, &format!(r#""timestamp":{now}"#), 1)
        .into_bytes()
}

#[tokio::test]
async fn with_replay_protection_on_every_fresh_delivery_gets_200() {
    let server = Server::start("axum_server", &[]);
    for (index, (name, body)) in deliveries().into_iter().enumerate() {
        let body = fresh(&body, &format!("{:016x}", 0x7e57_0000 + index));
        let (status, _, answer) = server.post(&body, Some(sign(SECRET, &body))).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
    }
}
