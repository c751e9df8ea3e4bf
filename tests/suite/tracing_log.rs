//! With feature `tracing`, every refusal is logged with its reason, and never with the
//! signature, the secret or the body.

use crate::common::{Captured, Recorder, Script};
use authgear_webhook::{SIGNATURE_HEADER, VerifySignatureLayer, sign};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower::{Layer, ServiceExt};

use crate::common::SECRET;
const BODY: &str =
    r#"{"id":"0000000000000001","type":"user.created","payload":{"email":"alice@example.com"}}"#;

#[tokio::test]
async fn refusals_are_logged_with_their_reason_only() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let layer = VerifySignatureLayer::new(SECRET).body_limit(200);
    let good = sign(SECRET, BODY.as_bytes());
    let forged = sign("not-the-secret", BODY.as_bytes());
    let requests = [
        (Some(forged.as_str()), BODY.as_bytes().to_vec()),
        (None, BODY.as_bytes().to_vec()),
        (Some("sha256=abc"), BODY.as_bytes().to_vec()),
        (Some(good.as_str()), vec![b'x'; 201]),
        (Some(good.as_str()), BODY.as_bytes().to_vec()),
    ];
    let recorder = Recorder::default();
    for (signature, body) in requests {
        let mut request = Request::post("/")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        if let Some(signature) = signature {
            request
                .headers_mut()
                .insert(SIGNATURE_HEADER, signature.parse().expect("header"));
        }
        layer
            .layer(recorder.service())
            .oneshot(request)
            .await
            .expect("infallible");
    }
    // A body that breaks off.
    let request = Request::post("/")
        .header(SIGNATURE_HEADER, good.as_str())
        .body(Script::split(BODY.as_bytes(), &[10]).then_error())
        .expect("request");
    layer
        .layer(recorder.service())
        .oneshot(request)
        .await
        .expect("infallible");

    let log = captured.take();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    let expected = [
        ("WARN", "invalid signature", 401),
        ("WARN", "missing x-authgear-body-signature header", 401),
        ("WARN", "malformed x-authgear-body-signature header", 401),
        ("WARN", "request body too large", 413),
        ("DEBUG", "request body could not be read", 400),
    ];
    for (line, (level, reason, status)) in lines.iter().zip(expected) {
        assert!(line.contains(level), "{line}");
        assert!(line.contains(&format!("reason=\"{reason}\"")), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
    }
    for secretish in [SECRET, &good, &forged, "alice@example.com", "user.created"] {
        assert!(!log.contains(secretish), "the log shows {secretish}: {log}");
    }
    assert_eq!(recorder.calls(), 1);
}

#[test]
fn a_secrets_file_that_cannot_be_used_is_logged_without_a_secret() {
    use authgear_webhook::Secrets;
    use std::time::{Duration, Instant};

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The watching thread logs to the subscriber of the code that started it.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = crate::common::TempDir::new("secrets-log");
    let path = dir.path().join("webhook-secrets");
    std::fs::write(&path, "hunter2hunter2\n").expect("write");
    let secrets = Secrets::from_file(&path).expect("a good file");
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = String::new();
        while !seen.contains(text) {
            assert!(Instant::now() < deadline, "no {text:?} in {seen}");
            // Another test's watching thread, with no subscriber, may have been the first
            // to reach the watcher's events: with one subscriber registered, tracing then
            // caches "never" for them from that thread's view. Computed again from here.
            tracing::callsite::rebuild_interest_cache();
            std::thread::sleep(Duration::from_millis(50));
            seen.push_str(&captured.take());
        }
        seen
    };

    std::fs::write(&path, "\0hunter3hunter3\n").expect("write");
    let logged = wait_for("unusable");
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains(&*path.to_string_lossy()), "{logged}");
    assert!(logged.contains("is not text"), "{logged}");
    assert!(secrets.problem().is_some());

    std::fs::write(&path, "hunter4hunter4\nhunter2hunter2\n").expect("write");
    let logged = logged + &wait_for("reloaded");
    assert!(logged.contains("secrets=2"), "{logged}");
    assert!(!logged.contains("hunter"), "{logged}");
    assert!(secrets.problem().is_none());
}
