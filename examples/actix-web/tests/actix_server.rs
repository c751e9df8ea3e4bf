//! `cargo run -p example-actix-web`, run for real: the `Verifier` outside tower, in the
//! most used non-tower Rust server, answers as the layer does, refuses to start without a
//! secret and keeps the layer's body budget against stalled bodies.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::Command;

use crate::common::{
    example::{SECRET, Server},
    fixture, fixture_event,
};
use authgear_webhook::{SIGNATURE_HEADER, sign};
use http::StatusCode;

/// The example's binary, built by `cargo test` with this test.
const ACTIX_SERVER: &str = env!("CARGO_BIN_EXE_example-actix-web");

/// The Verifier outside tower answers as the layer does.
#[tokio::test]
async fn actix_server_answers_as_the_layer_does() {
    let server = Server::start_binary(ACTIX_SERVER, &[]);

    let blocking = fixture("user.pre_create.json");
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
    let mut command = Command::new(ACTIX_SERVER);
    command
        .env_remove("AUTHGEAR_WEBHOOK_SECRET")
        .env("ADDR", "127.0.0.1:0");
    let output = command.output().expect("the example runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("AUTHGEAR_WEBHOOK_SECRET"), "{stderr}");
}

/// The example keeps the layer's body budget: 40 clients each announcing
/// 1 MiB and stalling after 1 000 000 bytes hold at most the 32 MiB budget; the others are
/// answered 503 with `Retry-After` at once; once they hang up, the room is back.
#[tokio::test]
async fn actix_server_bounds_stalled_bodies_with_the_budget() {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    let server = Server::start_binary(ACTIX_SERVER, &[]);
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
