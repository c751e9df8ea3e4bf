//! `authgear-webhook send`, run for real: the built binary sends to the example server and
//! to small servers here, over loopback (http:// and https://). Every event type is sent and
//! accepted; every answer Authgear would refuse makes it fail, saying why in one line.

use std::{
    fs,
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::common::example::{self, Output, SECRET, Server};
use authgear_webhook::{SIGNATURE_HEADER, event::is_blocking_type, sign};
use axum::{Router, http::HeaderMap, routing::post};
use bytes::Bytes;
use http::{StatusCode, header};

/// Longer than the sender's own limit for a blocking event (5 s).
const SEND_LIMIT: Duration = Duration::from_secs(20);

/// Runs `authgear-webhook send` with `args` and `secret` in `AUTHGEAR_WEBHOOK_SECRET`.
fn send_with(secret: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authgear-webhook"));
    command
        .arg("send")
        .args(args)
        .env_remove("AUTHGEAR_WEBHOOK_SECRET");
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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/events");
    let mut types: Vec<_> = fs::read_dir(dir)
        .expect("fixtures/events")
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
    let output = send(&[&server.url(), "../tests/fixtures/user.pre_create.json"]);
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
    // Longer than the sender reads (1 MiB).
    let huge =
        post(|| async { format!(r#"{{"is_allowed":true,"title":"{}"}}"#, "x".repeat(2 << 20)) });
    let addr = crate::common::serve(router.route("/slow", slow).route("/huge", huge)).await;
    (format!("http://{addr}"), received)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_is_sent_byte_for_byte_and_signed() {
    let (base, received) = answering().await;
    let file = "../tests/fixtures/user.pre_create.json";
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
        ("/huge", "user.created"),
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
        ("/huge", "user.pre_create", "longer than 1048576 bytes"),
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
    assert_fails(&send(&["ftp://example.com/", "user.created"]), "http://");
    for secret in [None, Some("")] {
        let output = send_with(secret, &[&url, "user.created"]);
        assert_fails(&output, "AUTHGEAR_WEBHOOK_SECRET");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn options_set_the_user_the_id_the_timestamp_and_headers() {
    let (base, received) = answering().await;
    let output = send(&[
        &format!("{base}/allow"),
        "user.pre_create",
        "--user-id",
        "user-42",
        "--email",
        "new@example.net",
        "--id",
        "my-event",
        "--timestamp",
        "1700000000",
        "-H",
        "X-Trace: abc",
        "--header",
        "content-type: application/json; charset=utf-8",
    ]);
    assert!(output.status.success(), "{output:?}");
    let received = received.lock().expect("not poisoned");
    let (headers, body) = &received[0];
    let event: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    assert_eq!(event["id"], "my-event");
    assert_eq!(event["type"], "user.pre_create");
    assert_eq!(event["context"]["timestamp"], 1_700_000_000);
    assert_eq!(event["context"]["user_id"], "user-42");
    let user = &event["payload"]["user"];
    assert_eq!(user["id"], "user-42");
    assert_eq!(user["standard_attributes"]["email"], "new@example.net");
    let claims = &event["payload"]["identities"][0]["claims"];
    assert_eq!(claims["email"], "new@example.net");
    assert_eq!(
        claims["https://authgear.com/claims/login_id/value"],
        "new@example.net"
    );
    assert_eq!(headers["x-trace"], "abc");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    assert_eq!(headers[SIGNATURE_HEADER], sign(SECRET, body));
}

#[test]
fn options_that_cannot_apply_say_why() {
    let url = "http://127.0.0.1:9/";
    let file = "../tests/fixtures/user.pre_create.json";
    assert_fails(&send(&[url, file, "--email", "a@b.c"]), "byte for byte");
    assert_fails(&send(&[url, file, "--timestamp", "1"]), "byte for byte");
    let output = send(&[url, "usage.alert.triggered", "--email", "a@b.c"]);
    assert_fails(&output, "no user email");
    assert_fails(
        &send(&[url, "user.created", "-H", "no colon"]),
        "NAME: VALUE",
    );
    let output = send(&[url, "user.created", "--cacert", "missing.pem"]);
    assert_fails(&output, "cannot read missing.pem");
}

#[test]
fn a_wrong_signature_header_is_refused_with_401() {
    let server = Server::start("axum_server", &[]);
    let header = format!("{SIGNATURE_HEADER}: {}", "0".repeat(64));
    let output = send(&[&server.url(), "user.created", "-H", &header]);
    assert_fails(&output, "401");
    assert_eq!(server.next_line(), "401 refused: invalid signature");
}

/// A throw-away CA (its PEM written to a file) and an HTTPS server on loopback with a
/// certificate it signed, for `127.0.0.1` and `localhost`, verifying signatures with
/// [`SECRET`] and allowing everything.
async fn https_server() -> (std::net::SocketAddr, PathBuf) {
    use authgear_webhook::VerifySignatureLayer;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio_rustls::{
        TlsAcceptor,
        rustls::{
            self,
            pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
        },
    };

    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA");
    let key = KeyPair::generate().expect("server key");
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let certificate = CertificateParams::new(names)
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let ca_file = std::env::temp_dir().join(format!("authgear-send-ca-{}.pem", std::process::id()));
    fs::write(&ca_file, ca.pem()).expect("write the CA");

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![certificate.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .expect("server TLS config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let router = Router::new()
        .route("/", post(|| async { r#"{"is_allowed":true}"# }))
        .layer(VerifySignatureLayer::new(SECRET));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(router),
                )
                .await;
            });
        }
    });
    (addr, ca_file)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_trusted_certificate_and_only_then() {
    let (addr, ca_file) = https_server().await;
    let ca = ca_file.to_str().expect("utf-8 path");
    for host in [addr.to_string(), format!("localhost:{}", addr.port())] {
        let url = format!("https://{host}/");
        let output = send(&[&url, "user.pre_create", "--cacert", ca]);
        assert!(output.status.success(), "{url}: {output:?}");
        assert_eq!(output.stdout, "200 OK\n{\"is_allowed\":true}\n");
    }
    // Not trusted without the CA, and no plain HTTP to a TLS port.
    let output = send(&[&format!("https://{addr}/"), "user.created"]);
    assert_fails(&output, "certificate");
    assert_eq!(output.stdout, "");
    assert_fails(
        &send(&[&format!("http://{addr}/"), "user.created"]),
        "no answer",
    );
    let _ = fs::remove_file(&ca_file);
}
