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
    /// Starts the example with `env` added to the secret and a free port.
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example())
            .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
            .env("ADDR", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .env_remove("AUTHGEAR_WEBHOOK_REPLAY")
            .envs(env.iter().copied())
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
            .and_then(|rest| rest.split(' ').next())
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `body` with a fresh `context.timestamp` (and `id`, if given), as replay protection wants.
fn fresh(body: &[u8], id: Option<&str>) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(body).expect("json");
    event["context"]["timestamp"] = now().into();
    if let Some(id) = id {
        event["id"] = id.into();
    }
    serde_json::to_vec(&event).expect("json")
}

#[tokio::test]
async fn answers_authgear_like_a_webhook_should() {
    let server = Server::start(&[]);

    let fixture = std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture");
    let blocking = fresh(&fixture, None);
    let (status, content_type, body) = server.post(&blocking, Some(sign(SECRET, &blocking))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"is_allowed":true}"#);
    assert_eq!(server.next_line(), "200 user.pre_create 0000000000546d54");

    let event = &fresh(
        br#"{"id":"0000000000000001","seq":1,"type":"user.created","payload":{},"context":{}}"#,
        None,
    );
    let (status, _, body) = server.post(event, Some(sign(SECRET, event))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert_eq!(server.next_line(), "200 user.created 0000000000000001");

    // Replay protection is on by default: the same delivery again, or an old one, is refused.
    let (status, _, body) = server.post(event, Some(sign(SECRET, event))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "delivery already received")
    );
    assert_eq!(server.next_line(), "401 refused: delivery already received");
    let (status, _, _) = server.post(&fixture, Some(sign(SECRET, &fixture))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.next_line(), "401 refused: stale delivery");

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

#[tokio::test]
async fn replay_protection_can_be_turned_off() {
    let server = Server::start(&[("AUTHGEAR_WEBHOOK_REPLAY", "off")]);
    // A captured (old) delivery, twice; and a verified body that is not JSON.
    let fixture = std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture");
    for _ in 0..2 {
        let (status, _, _) = server.post(&fixture, Some(sign(SECRET, &fixture))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(server.next_line(), "200 user.pre_create 0000000000546d54");
    }
    let (status, _, _) = server
        .post(b"not json", Some(sign(SECRET, b"not json")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(server.next_line(), "400 verified body is not JSON");
}

#[tokio::test]
async fn two_instances_share_replay_protection_through_redis() {
    let Some(redis) = common::RedisServer::start().await else {
        return;
    };
    let env = [("REDIS_URL", redis.url.as_str())];
    let (first, second) = (Server::start(&env), Server::start(&env));
    let id = format!("redis-{}", now());
    let event = fresh(
        br#"{"id":"","seq":1,"type":"user.created","payload":{},"context":{}}"#,
        Some(&id),
    );
    assert_eq!(
        first.post(&event, Some(sign(SECRET, &event))).await.0,
        StatusCode::OK
    );
    assert_eq!(first.next_line(), format!("200 user.created {id}"));
    let (status, _, _) = second.post(&event, Some(sign(SECRET, &event))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(second.next_line(), "401 refused: delivery already received");
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
