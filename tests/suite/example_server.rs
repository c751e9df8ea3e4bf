//! `cargo run --example axum_server`, run for real: the built example binary on a loopback
//! port, driven by a real HTTP client.

use std::process::Command;

use crate::common::example::{self, SECRET, Server};
use authgear_webhook::{SIGNATURE_HEADER, sign};
use http::StatusCode;

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

/// A realistic delivery from `tests/fixtures/events/`.
fn fixture_event(event_type: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/events/{event_type}.json")).expect("fixture")
}

#[tokio::test]
async fn answers_authgear_like_a_webhook_should() {
    let server = Server::start("axum_server", &[]);

    let fixture = std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture");
    let blocking = fresh(&fixture, None);
    let (status, content_type, body) = server.post(&blocking, Some(sign(SECRET, &blocking))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"is_allowed":true}"#);
    assert_eq!(server.next_line(), "200 user.pre_create 0000000000546d54");

    let event = &fresh(&fixture_event("user.created"), Some("0000000000000001"));
    let (status, _, body) = server.post(event, Some(sign(SECRET, event))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert_eq!(server.next_line(), "200 user.created 0000000000000001");

    // Replay protection is on by default: the same delivery again gets the first answer
    // without running the handler; an old one is refused.
    let (status, _, body) = server.post(event, Some(sign(SECRET, event))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert_eq!(server.next_line(), "200 repeated: the first answer");
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
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_REPLAY", "off")]);
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
    assert_eq!(server.next_line(), "400 body is not a valid Authgear event");
}

#[tokio::test]
async fn denies_blocked_domains_and_adds_a_claim_to_access_tokens() {
    let server = Server::start(
        "axum_server",
        &[("BLOCKED_DOMAINS", "spam.example, Example.COM")],
    );

    // user@example.com: its domain is on the list (compared without case).
    let sign_up = fresh(&fixture_event("user.pre_create"), None);
    let (status, _, body) = server.post(&sign_up, Some(sign(SECRET, &sign_up))).await;
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["is_allowed"], false);
    assert!(server.next_line().ends_with(" (denied)"));

    // The token keeps every claim it had, plus one.
    let token = fresh(&fixture_event("oidc.jwt.pre_create"), None);
    let (status, _, body) = server.post(&token, Some(sign(SECRET, &token))).await;
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    let original: serde_json::Value = serde_json::from_slice(&token).expect("json");
    let mut expected = original["payload"]["jwt"]["payload"].clone();
    expected["https://authgear-webhook.example/plan"] = "free".into();
    assert_eq!(answer["is_allowed"], true);
    assert_eq!(answer["mutations"]["jwt"]["payload"], expected);
    assert!(server.next_line().starts_with("200 oidc.jwt.pre_create "));
}

#[tokio::test]
async fn allows_every_domain_by_default() {
    let server = Server::start("axum_server", &[]);
    let sign_up = fresh(&fixture_event("user.pre_create"), Some("0000000000000002"));
    let (_, _, body) = server.post(&sign_up, Some(sign(SECRET, &sign_up))).await;
    assert_eq!(body, r#"{"is_allowed":true}"#);
    assert_eq!(server.next_line(), "200 user.pre_create 0000000000000002");
}

#[tokio::test]
async fn two_instances_share_replay_protection_through_redis() {
    let Some(redis) = crate::common::RedisServer::start().await else {
        return;
    };
    let env = [("REDIS_URL", redis.url.as_str())];
    let (first, second) = (
        Server::start("axum_server", &env),
        Server::start("axum_server", &env),
    );
    let id = format!("redis-{}", now());
    let event = fresh(&fixture_event("user.created"), Some(&id));
    assert_eq!(
        first.post(&event, Some(sign(SECRET, &event))).await.0,
        StatusCode::OK
    );
    assert_eq!(first.next_line(), format!("200 user.created {id}"));
    let (status, _, _) = second.post(&event, Some(sign(SECRET, &event))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second.next_line(), "200 repeated: the first answer");
    settle(&[&first, &second]).await;
    assert_eq!(handled(&[&first, &second], &id), 1);
}

/// Waits until each server has printed every line of the requests answered so far: sends
/// an unsigned request, whose refusal line comes after them, and reads up to it.
async fn settle(servers: &[&Server]) {
    for server in servers {
        let (status, _, _) = server.post(b"{}", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        while !server
            .next_line()
            .contains("missing x-authgear-body-signature")
        {}
    }
}

/// How many times the servers' handlers ran for the delivery `id` (`handled` lines).
fn handled(servers: &[&Server], id: &str) -> usize {
    servers
        .iter()
        .flat_map(|server| server.handled())
        .filter(|line| line.ends_with(&format!(" {id}")))
        .count()
}

/// Sends `copies` copies of `event` to the servers, alternating, `at_once` or one after the
/// other; returns each copy's status, content type and body.
async fn send_copies(
    servers: &[&Server],
    event: &[u8],
    copies: usize,
    at_once: bool,
) -> Vec<(StatusCode, Option<String>, String)> {
    let signature = sign(SECRET, event);
    let send = |i: usize| servers[i % servers.len()].post(event, Some(signature.clone()));
    if !at_once {
        let mut answers = Vec::new();
        for i in 0..copies {
            answers.push(send(i).await);
        }
        return answers;
    }
    let mut pending: Vec<_> = (0..copies).map(|i| Box::pin(send(i))).collect();
    let mut answers: Vec<Option<_>> = (0..copies).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, answer) in pending.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none()
                && let std::task::Poll::Ready(output) = future.as_mut().poll(cx)
            {
                *answer = Some(output);
            }
        }
        match answers.iter().all(Option::is_some) {
            true => std::task::Poll::Ready(()),
            false => std::task::Poll::Pending,
        }
    })
    .await;
    answers.into_iter().flatten().collect()
}

/// Authgear's repeated deliveries (a URL configured twice; `"*"` and a named event), one
/// after the other and 16 at once, blocking and not: the handler runs once per delivery,
/// no copy gets a 5xx, every copy of a blocking one gets the first copy's decision.
async fn repeated_deliveries_are_handled_once(servers: &[&Server]) {
    let run = now();
    for (event_type, blocking) in [("user.pre_create", true), ("user.created", false)] {
        for (copies, at_once) in [(3, false), (16, true)] {
            let id = format!("{event_type}-{copies}-{run}");
            let event = fresh(&fixture_event(event_type), Some(&id));
            let answers = send_copies(servers, &event, copies, at_once).await;
            let first = answers[0].clone();
            assert_eq!(first.0, StatusCode::OK, "{id}");
            if blocking {
                let decision: serde_json::Value = serde_json::from_str(&first.2).expect("json");
                assert_eq!(decision["is_allowed"], true, "{id}");
                assert_eq!(first.1.as_deref(), Some("application/json"));
            }
            for answer in &answers {
                assert_eq!(*answer, first, "{id}: {answers:?}");
            }
            settle(servers).await;
            assert_eq!(handled(servers, &id), 1, "{id}");
        }
    }
    let lines: Vec<String> = servers.iter().flat_map(|server| server.handled()).collect();
    assert!(
        lines.iter().all(|line| line.starts_with("handled user.")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_deliveries_run_the_handler_once_in_memory() {
    let server = Server::start("axum_server", &[]);
    repeated_deliveries_are_handled_once(&[&server]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_deliveries_run_the_handler_once_on_two_instances_sharing_redis() {
    let Some(redis) = crate::common::RedisServer::start().await else {
        return;
    };
    let env = [("REDIS_URL", redis.url.as_str())];
    let (first, second) = (
        Server::start("axum_server", &env),
        Server::start("axum_server", &env),
    );
    repeated_deliveries_are_handled_once(&[&first, &second]).await;
}

#[tokio::test]
async fn each_run_of_the_handler_prints_one_handled_line() {
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_REPLAY", "off")]);
    let event = fixture_event("user.created");
    for _ in 0..2 {
        assert_eq!(
            server.post(&event, Some(sign(SECRET, &event))).await.0,
            StatusCode::OK
        );
    }
    // Not an event: the handler does not run for it.
    server
        .post(b"not json", Some(sign(SECRET, b"not json")))
        .await;
    settle(&[&server]).await;
    let id: serde_json::Value = serde_json::from_slice(&event).expect("json");
    let line = format!("handled user.created {}", id["id"].as_str().expect("an id"));
    assert_eq!(server.handled(), [line.clone(), line]);
}

#[test]
fn exits_at_once_without_a_secret() {
    for value in [None, Some("")] {
        let mut command = Command::new(example::path("axum_server"));
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

/// `examples/actix_server.rs`: the Verifier outside tower answers as the layer does.
#[tokio::test]
async fn actix_server_answers_as_the_layer_does() {
    let server = Server::start("actix_server", &[]);

    let blocking = std::fs::read("tests/fixtures/user.pre_create.json").expect("fixture");
    let (status, content_type, body) = server.post(&blocking, Some(sign(SECRET, &blocking))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"is_allowed":true}"#);
    assert_eq!(server.next_line(), "200 user.pre_create 0000000000546d54");

    let event = fixture_event("user.created");
    let upper = sign(SECRET, &event).to_uppercase();
    let (status, _, body) = server.post(&event, Some(upper)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert!(server.next_line().starts_with("200 user.created "));

    let padded = format!(" {} ", sign(SECRET, &event));
    let refusals = [
        (
            None,
            StatusCode::UNAUTHORIZED,
            "missing x-authgear-body-signature header",
        ),
        (
            Some(String::new()),
            StatusCode::UNAUTHORIZED,
            "missing x-authgear-body-signature header",
        ),
        (
            Some(format!("sha256={}", sign(SECRET, &event))),
            StatusCode::UNAUTHORIZED,
            "malformed x-authgear-body-signature header",
        ),
        (
            Some(sign("not-the-secret", &event)),
            StatusCode::UNAUTHORIZED,
            "invalid signature",
        ),
        (Some(padded), StatusCode::OK, ""),
    ];
    for (signature, want, message) in refusals {
        let (status, content_type, body) = server.post(&event, signature).await;
        assert_eq!((status, body.as_str()), (want, message));
        let line = server.next_line();
        if want != StatusCode::OK {
            assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
            assert_eq!(line, format!("{} refused: {message}", want.as_u16()));
        }
    }

    // Signed, but not an Authgear event.
    let (status, _, body) = server.post(b"[1]", Some(sign(SECRET, b"[1]"))).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "body is not a valid Authgear event"
        )
    );
    assert_eq!(server.next_line(), "400 body is not a valid Authgear event");

    // Above the limit, announced: 413 without the body being sent.
    let signature = sign(SECRET, b"{}");
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n",
        1024 * 1024 + 1
    );
    assert_eq!(raw_status(&server.addr, head.as_bytes(), &[]).await, 413);
    assert_eq!(server.next_line(), "413 refused: request body too large");

    // Above the limit, chunked: refused once the bytes read cross it, not read to the end.
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n"
    );
    let mut chunk = b"10000\r\n".to_vec();
    chunk.extend_from_slice(&[b' '; 0x10000]);
    chunk.extend_from_slice(b"\r\n");
    // 17 chunks of 64 KiB: past 1 MiB; the stream never ends (no last chunk).
    let chunks = chunk.repeat(17);
    assert_eq!(
        raw_status(&server.addr, head.as_bytes(), &chunks).await,
        413
    );
    assert_eq!(server.next_line(), "413 refused: request body too large");
}

/// Sends `head` then `body` on a fresh connection (the server may stop reading early) and
/// returns the status of the answer.
async fn raw_status(addr: &str, head: &[u8], body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(head).await.expect("head sent");
        let (mut read, mut write) = stream.into_split();
        let body = body.to_vec();
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&body).await;
            write
        });
        let mut answer = [0; 64];
        let mut got = 0;
        while got < 12 {
            let n = read.read(&mut answer[got..]).await.expect("read");
            assert!(n > 0, "connection closed without an answer");
            got += n;
        }
        writer.abort();
        let line = String::from_utf8_lossy(&answer[..got]).into_owned();
        line[9..12].parse().expect("a status code")
    };
    tokio::time::timeout(crate::common::TIMEOUT, exchange)
        .await
        .expect("in time")
}

#[test]
fn actix_server_exits_at_once_without_a_secret() {
    let mut command = Command::new(example::path("actix_server"));
    command
        .env_remove("AUTHGEAR_WEBHOOK_SECRET")
        .env("ADDR", "127.0.0.1:0");
    let output = command.output().expect("the example runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("AUTHGEAR_WEBHOOK_SECRET"), "{stderr}");
}

/// `examples/actix_server.rs` keeps the layer's body budget: 40 clients each announcing
/// 1 MiB and stalling after 1 000 000 bytes hold at most the 32 MiB budget; the others are
/// answered 503 with `Retry-After` at once; once they hang up, the room is back.
#[tokio::test]
async fn actix_server_bounds_stalled_bodies_with_the_budget() {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    let server = Server::start("actix_server", &[]);
    let signature = sign(SECRET, b"never sent in full");
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n"
    );
    let stall = |addr: String, head: String| async move {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("head");
        // The server may refuse and close while this is still being written.
        let _ = stream.write_all(&vec![b' '; 1_000_000]).await;
        let mut answer = vec![0; 1024];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(3), stream.read(&mut answer)).await;
        let answer = match read {
            Ok(Ok(n)) => String::from_utf8_lossy(&answer[..n]).into_owned(),
            // Still waiting for the rest of its body: held, not answered.
            _ => String::new(),
        };
        (stream, answer)
    };
    let clients: Vec<_> = (0..40)
        .map(|_| tokio::spawn(stall(server.addr.clone(), head.clone())))
        .collect();
    let mut streams = Vec::new();
    let (mut held, mut refused) = (0, 0);
    for client in clients {
        let (stream, answer) = client.await.expect("client");
        if answer.is_empty() {
            held += 1;
        } else {
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(
                answer.to_ascii_lowercase().contains("retry-after: 1"),
                "{answer}"
            );
            assert!(
                answer.ends_with("too many request bodies in flight"),
                "{answer}"
            );
            refused += 1;
        }
        streams.push(stream);
    }
    assert!(
        held <= 32,
        "{held} bodies of ~1 MiB held in a 32 MiB budget"
    );
    assert!(refused >= 8, "{refused} refused");

    // Every stalled client hangs up: their room goes back, a delivery fits again.
    drop(streams);
    let event = fixture_event("user.created");
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = server.post(&event, Some(sign(SECRET, &event))).await.0;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK);
}
