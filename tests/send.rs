//! `cargo run --example send`, run for real: the built example sends to the example server
//! and to small servers here, over loopback. Every event type is sent and accepted; every
//! answer Authgear would refuse makes it fail, saying why in one line.
#![cfg(feature = "event")]

mod common;

use std::{
    fs,
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use authgear_webhook::{SIGNATURE_HEADER, event::is_blocking_type, sign};
use axum::{Router, http::HeaderMap, routing::post};
use bytes::Bytes;
use common::example::{self, Output, SECRET, Server};
use http::{StatusCode, header};

/// Longer than the sender's own limit for a blocking event (5 s).
const SEND_LIMIT: Duration = Duration::from_secs(20);

/// Runs the sender with `args` and `secret` in `AUTHGEAR_WEBHOOK_SECRET`.
fn send_with(secret: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(example::path("send"));
    command.args(args).env_remove("AUTHGEAR_WEBHOOK_SECRET");
    if let Some(secret) = secret {
        command.env("AUTHGEAR_WEBHOOK_SECRET", secret);
    }
    let output = example::run(&mut command, SEND_LIMIT);
    assert!(!output.stdout.contains(SECRET) && !output.stderr.contains(SECRET));
    output
}

fn send(args: &[&str]) -> Output {
    send_with(Some(SECRET), args)
}

/// Asserts that the sender failed, saying `reason` in one line.
fn assert_fails(output: &Output, reason: &str) {
    assert!(!output.status.success(), "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(reason), "{reason:?} in {output:?}");
}

/// Every type with an example delivery, which the sender carries too.
fn event_types() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let mut types: Vec<_> = fs::read_dir(dir)
        .expect("tests/fixtures/events")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    types.sort();
    types
}

#[test]
fn every_event_type_is_sent_fresh_and_accepted() {
    let server = Server::start("axum_server", &[]);
    let types = event_types();
    assert_eq!(types.iter().filter(|t| is_blocking_type(t)).count(), 9);
    assert!(types.len() >= 40, "{types:?}");
    // user.pre_create twice: each delivery has a new id, which replay protection accepts.
    for event_type in types.iter().chain([&"user.pre_create".to_owned()]) {
        let output = send(&[&server.url(), event_type]);
        assert!(output.status.success(), "{event_type}: {output:?}");
        let mut lines = output.stdout.lines();
        assert_eq!(lines.next(), Some("200 OK"), "{event_type}");
        if is_blocking_type(event_type) {
            let body = lines.next().expect("the answer");
            assert!(
                body.starts_with(r#"{"is_allowed":"#),
                "{event_type}: {body}"
            );
        }
        let line = server.next_line();
        assert!(line.starts_with(&format!("200 {event_type} ")), "{line}");
    }
}

#[test]
fn a_denied_sign_up_is_a_valid_answer() {
    // The example server denies sign-ups from BLOCKED_DOMAINS (older versions allow them):
    // either way Authgear accepts the answer.
    let server = Server::start("axum_server", &[("BLOCKED_DOMAINS", "example.com")]);
    let output = send(&[&server.url(), "user.pre_create"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout.lines().next(), Some("200 OK"));
    assert!(server.next_line().starts_with("200 user.pre_create "));
}

#[test]
fn a_file_is_sent_as_it_is() {
    // A captured (old) delivery: accepted with replay protection off.
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_REPLAY", "off")]);
    let output = send(&[&server.url(), "tests/fixtures/user.pre_create.json"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(server.next_line(), "200 user.pre_create 0000000000546d54");

    // A fresh one, from a file whose name does not end in `.json`, with replay protection on.
    let server = Server::start("axum_server", &[]);
    let path = std::env::temp_dir().join(format!("authgear-send-{}.delivery", std::process::id()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let body = format!(
        r#"{{"id":"send-file-{now}","seq":1,"type":"user.created","payload":{{"user":{}}},"context":{{"timestamp":{now}}}}}"#,
        r#"{"id":"u1","created_at":"2006-01-02T03:04:05Z","updated_at":"2006-01-02T03:04:05Z","is_anonymous":false,"is_verified":true,"is_disabled":false}"#
    );
    fs::write(&path, &body).expect("write the delivery");
    let output = send(&[&server.url(), path.to_str().expect("utf-8 path")]);
    let _ = fs::remove_file(&path);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        server.next_line(),
        format!("200 user.created send-file-{now}")
    );
}

#[test]
fn a_wrong_secret_is_refused_with_401() {
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_SECRET", "another")]);
    let output = send(&[&server.url(), "user.created"]);
    assert_fails(&output, "401");
    assert_eq!(output.stdout.lines().next(), Some("401 Unauthorized"));
    assert_eq!(server.next_line(), "401 refused: invalid signature");
}

/// A server answering each path with a fixed status and body, recording what it received.
async fn answering() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    for (path, status, body) in [
        ("/allow", StatusCode::OK, r#"{"is_allowed":true}"#),
        (
            "/deny",
            StatusCode::OK,
            r#"{"is_allowed":false,"title":"No","reason":"Not today."}"#,
        ),
        (
            "/mutations",
            StatusCode::OK,
            r#"{"is_allowed":true,"mutations":{}}"#,
        ),
        ("/yes", StatusCode::OK, r#"{"is_allowed":"yes"}"#),
        (
            "/deny-more",
            StatusCode::OK,
            r#"{"is_allowed":false,"mutations":{}}"#,
        ),
        ("/text", StatusCode::OK, "ok"),
        (
            "/500",
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"is_allowed":true}"#,
        ),
        ("/redirect", StatusCode::TEMPORARY_REDIRECT, ""),
    ] {
        let received = Arc::clone(&received);
        router = router.route(
            path,
            post(move |headers: HeaderMap, request: Bytes| async move {
                received
                    .lock()
                    .expect("not poisoned")
                    .push((headers, request));
                (status, [(header::LOCATION, "/allow")], body)
            }),
        );
    }
    let slow = post(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        r#"{"is_allowed":true}"#
    });
    let addr = common::serve(router.route("/slow", slow)).await;
    (format!("http://{addr}"), received)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_is_sent_byte_for_byte_and_signed() {
    let (base, received) = answering().await;
    let file = "tests/fixtures/user.pre_create.json";
    let output = send(&[&format!("{base}/allow"), file]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, "200 OK\n{\"is_allowed\":true}\n");
    let received = received.lock().expect("not poisoned");
    let (headers, body) = &received[0];
    // Go's `\u0026` escapes and all: the bytes of the file, not a re-serialisation.
    assert_eq!(body, &fs::read(file).expect("fixture"));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[SIGNATURE_HEADER], sign(SECRET, body));
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_authgear_accepts_pass() {
    let (base, _) = answering().await;
    for (path, event_type) in [
        ("/allow", "authentication.pre_initialize"),
        ("/deny", "user.pre_create"),
        ("/mutations", "user.pre_create"),
        // The answer to a non-blocking event is not read.
        ("/text", "user.created"),
        ("/yes", "identity.email.added"),
    ] {
        let output = send(&[&format!("{base}{path}"), event_type]);
        assert!(output.status.success(), "{path} {event_type}: {output:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_authgear_refuses_fail_saying_why() {
    let (base, _) = answering().await;
    let schema = "does not match Authgear's schema";
    for (path, event_type, reason) in [
        ("/yes", "user.pre_create", schema),
        ("/deny-more", "oidc.jwt.pre_create", schema),
        // Mutations are for user and token events only.
        ("/mutations", "authentication.pre_initialize", schema),
        ("/text", "user.pre_create", "not JSON"),
        ("/500", "user.pre_create", "500 Internal Server Error"),
        ("/500", "user.created", "500 Internal Server Error"),
        ("/redirect", "user.pre_create", "307"),
        ("/slow", "user.pre_create", "no answer within 5 s"),
    ] {
        let output = send(&[&format!("{base}{path}"), event_type]);
        assert_fails(&output, reason);
    }
}

#[test]
fn failures_before_any_answer_say_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", closed.local_addr().expect("address"));
    drop(closed);
    assert_fails(&send(&[&url, "user.created"]), "no answer");
    assert_fails(&send(&[]), "usage");
    assert_fails(&send(&[&url]), "usage");
    let output = send(&[&url, "user.nonexistent"]);
    assert_fails(&output, "unknown event type");
    assert!(output.stderr.contains("user.pre_create, "), "{output:?}");
    assert_fails(&send(&[&url, "missing.json"]), "cannot read missing.json");
    assert_fails(&send(&["https://example.com/", "user.created"]), "http://");
    for secret in [None, Some("")] {
        let output = send_with(secret, &[&url, "user.created"]);
        assert_fails(&output, "AUTHGEAR_WEBHOOK_SECRET");
    }
}
