//! `cargo run --example axum_server`, run for real: the built example binary on a loopback
//! port, driven by a real HTTP client.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
};

use authgear_webhook::{SIGNATURE_HEADER, sign};
use bytes::Bytes;
use common::{TIMEOUT, client, text};
use http::{Request, StatusCode, header};
use http_body_util::Full;

const SECRET: &str = "Lx8k3mVq2ZpT9wR4yN6bC1dF7gH0jK5s";

/// The example binary, which `cargo test` builds beside the test binaries (built here when
/// only this test was asked for).
fn example() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir
        .join("examples")
        .join(format!("axum_server{}", std::env::consts::EXE_SUFFIX));
    BUILD.call_once(|| {
        if !path.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--example", "axum_server"])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "the example builds");
        }
    });
    path
}

/// The running example: its address and the lines it prints.
struct Server {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(example())
            .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
            .env("ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example runs");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let first = lines.recv_timeout(TIMEOUT).expect("the server starts");
        let addr = first
            .strip_prefix("listening on http://")
            .expect("a listening line")
            .to_owned();
        Self { child, addr, lines }
    }

    fn next_line(&self) -> String {
        self.lines.recv_timeout(TIMEOUT).expect("a log line")
    }

    async fn post(
        &self,
        body: &[u8],
        signature: Option<String>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = Request::post(format!("http://{}/", self.addr));
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let request = request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        let response = tokio::time::timeout(TIMEOUT, client(false).request(request))
            .await
            .expect("in time")
            .expect("a response");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii").to_owned());
        (status, content_type, text(response).await)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn answers_authgear_like_a_webhook_should() {
    let server = Server::start();

    let blocking = std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture");
    let (status, content_type, body) = server.post(&blocking, Some(sign(SECRET, &blocking))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"is_allowed":true}"#);
    assert_eq!(server.next_line(), "200 user.pre_create 0000000000546d54");

    let event =
        br#"{"id":"0000000000000001","seq":1,"type":"user.created","payload":{},"context":{}}"#;
    let (status, _, body) = server.post(event, Some(sign(SECRET, event))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert_eq!(server.next_line(), "200 user.created 0000000000000001");

    let (status, _, _) = server
        .post(b"not json", Some(sign(SECRET, b"not json")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(server.next_line(), "400 verified body is not JSON");

    let (status, _, body) = server.post(event, Some(sign("wrong", event))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid signature")
    );
    assert_eq!(server.next_line(), "401 refused: invalid signature");

    let (status, _, _) = server.post(event, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.next_line(),
        "401 refused: missing x-authgear-body-signature header"
    );
}

#[test]
fn exits_at_once_without_a_secret() {
    for value in [None, Some("")] {
        let mut command = Command::new(example());
        command
            .env_remove("AUTHGEAR_WEBHOOK_SECRET")
            .env("ADDR", "127.0.0.1:0");
        if let Some(value) = value {
            command.env("AUTHGEAR_WEBHOOK_SECRET", value);
        }
        let output = command.output().expect("the example runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).expect("utf-8");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("AUTHGEAR_WEBHOOK_SECRET"), "{stderr}");
    }
}
