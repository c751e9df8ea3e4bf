//! `cargo run --example axum_server`, run for real: the built example binary on a loopback
//! port, driven by a real HTTP client.

use std::process::Command;

use crate::common::{
    example::{self, SECRET, Server},
    fixture_event,
};
use authgear_webhook::sign;
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
    two_instances_share_replay_protection(&[("REDIS_URL", redis.url.as_str())], "redis").await;
}

#[tokio::test]
async fn two_instances_share_replay_protection_through_postgres() {
    let Some(postgres) = crate::common::PostgresServer::start().await else {
        return;
    };
    let env = [("DATABASE_URL", postgres.url.as_str())];
    two_instances_share_replay_protection(&env, "postgres").await;
}

/// Two instances started with `env`, whose replay protection is in the store `name`: a
/// delivery repeated on the second gets the first's answer and runs the handler once.
async fn two_instances_share_replay_protection(env: &[(&str, &str)], name: &str) {
    let (first, second) = (
        Server::start("axum_server", env),
        Server::start("axum_server", env),
    );
    let protection = format!("replay protection: {name},");
    assert!(first.startup.contains(&protection), "{}", first.startup);
    let id = format!("{name}-{}", now());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_deliveries_run_the_handler_once_on_two_instances_sharing_postgres() {
    let Some(postgres) = crate::common::PostgresServer::start().await else {
        return;
    };
    let env = [("DATABASE_URL", postgres.url.as_str())];
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
