//! Sends a signed delivery to a webhook, as Authgear would: a way to test a receiver without
//! Authgear (like `stripe trigger`).
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --example send -- <URL> <EVENT_TYPE or FILE.json>
//! ```
//!
//! With an event type (`user.pre_create`, `user.created`, ... any type Authgear documents),
//! it sends an example delivery of that type with a fresh `id` and `context.timestamp` set
//! to now, so that replay protection accepts it. With a file, it sends the file's bytes as
//! they are (a captured delivery, say), signed; its `type` field says which event it is.
//!
//! `POST`s with `Content-Type: application/json` and the signature header, waits as long as
//! Authgear does (5 s for a blocking event, 60 s for the others), and prints the status and
//! the body of the answer. `http://` URLs only (this example has no TLS client).
//!
//! Exits with 0 only when Authgear would accept the answer: a 2xx status and, for a blocking
//! event, a JSON body that Authgear's response schema for that event accepts. Otherwise
//! exits with 1 and says why in one line on stderr.

use std::{
    collections::hash_map::RandomState,
    env,
    hash::BuildHasher,
    path::Path,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use authgear_webhook::{SIGNATURE_HEADER, Secret, event::is_blocking_type, sign};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri, header};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;

const USAGE: &str = "usage: cargo run --example send -- <URL> <EVENT_TYPE or FILE.json>";

/// `EVENTS`: an example delivery of each type (`tests/fixtures/events/`); `SCHEMAS`: Authgear's
/// response schema for each blocking type (`tests/fixtures/schema/`, each one self-contained).
macro_rules! events {
    (blocking: [$($blocking:literal),* $(,)?], other: [$($other:literal),* $(,)?] $(,)?) => {
        const EVENTS: &[(&str, &str)] = &[$(
            ($blocking, include_str!(concat!("../tests/fixtures/events/", $blocking, ".json"))),
        )* $(
            ($other, include_str!(concat!("../tests/fixtures/events/", $other, ".json"))),
        )*];
        const SCHEMAS: &[(&str, &str)] = &[$(
            ($blocking, include_str!(concat!(
                "../tests/fixtures/schema/", $blocking, ".response.schema.json"
            ))),
        )*];
    };
}

// Every event type Authgear documents.
events! {
    blocking: [
        "user.pre_create",
        "user.profile.pre_update",
        "user.pre_schedule_deletion",
        "user.pre_schedule_anonymization",
        "oidc.jwt.pre_create",
        "oidc.id_token.pre_create",
        "authentication.pre_initialize",
        "authentication.post_identified",
        "authentication.pre_authenticated",
    ],
    other: [
        "user.created",
        "user.authenticated",
        "user.reauthenticated",
        "user.profile.updated",
        "user.disabled",
        "user.reenabled",
        "user.anonymous.promoted",
        "user.deletion_scheduled",
        "user.deletion_unscheduled",
        "user.deleted",
        "user.anonymization_scheduled",
        "user.anonymization_unscheduled",
        "user.anonymized",
        "identity.email.added",
        "identity.email.removed",
        "identity.email.updated",
        "identity.email.verified",
        "identity.email.unverified",
        "identity.phone.added",
        "identity.phone.removed",
        "identity.phone.updated",
        "identity.phone.verified",
        "identity.phone.unverified",
        "identity.username.added",
        "identity.username.removed",
        "identity.username.updated",
        "identity.username.verified",
        "identity.username.unverified",
        "identity.oauth.connected",
        "identity.oauth.disconnected",
        "identity.biometric.enabled",
        "identity.biometric.disabled",
        "usage.alert.triggered",
    ],
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let [url, what] = args.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let url: Uri = url.parse().map_err(|error| format!("URL {url}: {error}"))?;
    if url.scheme_str() != Some("http") {
        return Err(format!(
            "URL {url}: only http:// URLs (this example has no TLS client)"
        ));
    }
    let (event_type, body) = if what.ends_with(".json") || Path::new(what).is_file() {
        from_file(what)?
    } else {
        (what.clone(), generated(what)?)
    };
    let secret = Secret::from_env("AUTHGEAR_WEBHOOK_SECRET").map_err(|error| {
        format!("{error}: set it to the webhook signing secret of the receiver")
    })?;
    let blocking = is_blocking_type(&event_type);

    let request = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sign(&secret, &body))
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| format!("cannot build the request: {error}"))?;
    let timeout = Duration::from_secs(if blocking { 5 } else { 60 });
    let exchange = async {
        let response = Client::builder(TokioExecutor::new())
            .build_http()
            .request(request)
            .await
            .map_err(|error| format!("no answer: {}", chain(&error)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("answer cut off: {}", chain(&error)))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))??;

    println!("{status}");
    println!("{}", String::from_utf8_lossy(&body));
    if !status.is_success() {
        return Err(format!("status {status} is not 2xx"));
    }
    if blocking {
        check_answer(&event_type, &body)?;
    }
    Ok(())
}

/// The example delivery of `event_type`, with a fresh `id` (and `seq`) and timestamp.
fn generated(event_type: &str) -> Result<Vec<u8>, String> {
    let Some((_, fixture)) = EVENTS.iter().find(|(name, _)| *name == event_type) else {
        let known: Vec<_> = EVENTS.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "unknown event type {event_type:?}; known types: {}",
            known.join(", ")
        ));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970".to_owned())?;
    // Authgear's ids are the `seq` in 16 hex digits; 48 random bits make it fresh.
    let seq = RandomState::new().hash_one(now) >> 16;
    let mut event: Value = serde_json::from_str(fixture).map_err(|error| error.to_string())?;
    event["id"] = format!("{seq:016x}").into();
    event["seq"] = seq.into();
    event["context"]["timestamp"] = now.as_secs().into();
    serde_json::to_vec(&event).map_err(|error| error.to_string())
}

/// The bytes of the file at `path` and the event type they say.
fn from_file(path: &str) -> Result<(String, Vec<u8>), String> {
    let body = std::fs::read(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let event: Value =
        serde_json::from_slice(&body).map_err(|error| format!("{path} is not JSON: {error}"))?;
    match event.get("type").and_then(Value::as_str) {
        Some(event_type) => Ok((event_type.to_owned(), body)),
        None => Err(format!("{path} has no \"type\": not an Authgear delivery")),
    }
}

/// Whether Authgear would accept `body` as the answer to a blocking `event_type`.
fn check_answer(event_type: &str, body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|error| {
        format!("the answer is not JSON ({error}): Authgear fails the operation")
    })?;
    let Some((_, schema)) = SCHEMAS.iter().find(|(name, _)| *name == event_type) else {
        return Err(format!("no response schema for {event_type}"));
    };
    let schema: Value = serde_json::from_str(schema).map_err(|error| error.to_string())?;
    let validator = jsonschema::validator_for(&schema).map_err(|error| error.to_string())?;
    validator.validate(&answer).map_err(|error| {
        let path = error.instance_path().to_string();
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at {path}")
        };
        format!("the answer does not match Authgear's schema for {event_type}{at}: {error}")
    })
}

/// An error and its sources, on one line ("client error (Connect): tcp connect error: ...").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        text = format!("{text}: {error}");
        source = error.source();
    }
    text
}
