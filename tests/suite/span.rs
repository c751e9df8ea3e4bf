//! Spans (feature `tracing`): one `authgear_webhook.delivery` per delivery, with the
//! event's id and type once verified, holding what the inbox logs while answering it; one
//! `authgear_webhook.handle` per handler run, holding what the handler logs. Seen through a
//! real socket by a subscriber installed on the test's thread (the current-thread runtime
//! runs the server, the client and the worker there).

use std::time::{Duration, Instant};

use crate::common::{Captured, SECRET, TIMEOUT, TempDir, serve, stamped_event};
use authgear_webhook::{
    VerifySignatureLayer,
    inbox::{CancellationToken, Delivery, Inbox, SqliteStore, Worker},
    sign,
};
use axum::{Router, routing::post};
use http::StatusCode;
use tower::ServiceBuilder;

#[tokio::test]
async fn a_delivery_and_its_handler_run_each_in_a_span_with_the_event_id_and_type() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A second dispatcher held alongside: with a single one, tracing-core works out the
    // interest of a callsite first reached on another thread (another test's) from that
    // thread's default, no subscriber, and never asks this one again.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = TempDir::new("span");
    let inbox = Inbox::new(SqliteStore::open(dir.path().join("inbox.sqlite3")).expect("open"));
    let app = Router::new()
        .route("/", post(|| async { r#"{"is_allowed":true}"# }))
        .layer(
            ServiceBuilder::new()
                .layer(VerifySignatureLayer::new(SECRET))
                .layer(inbox.layer()),
        );
    let addr = serve(app).await;
    let shutdown = CancellationToken::new();
    let handler = |delivery: Delivery| async move {
        tracing::info!(seen = %delivery.event.id, "the handler ran");
        Ok::<_, String>(())
    };
    let worker = tokio::spawn(
        Worker::new(inbox.clone())
            .poll(Duration::from_millis(20))
            .run(handler, shutdown.clone()),
    );

    let url = format!("http://{addr}/");
    let body = stamped_event("user.created", "span-0001");
    let (status, _, _) = crate::common::post(&url, &body, Some(sign(SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK);
    let forged = stamped_event("user.created", "span-forged");
    let (status, _, _) = crate::common::post(&url, &forged, Some(sign("wrong", &forged))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut log = String::new();
    let deadline = Instant::now() + TIMEOUT;
    while !log.contains("inbox: handled") {
        assert!(Instant::now() < deadline, "not handled: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        log.push_str(&captured.take());
    }
    shutdown.cancel();
    tokio::time::timeout(TIMEOUT, worker)
        .await
        .expect("the worker stops")
        .expect("the worker ran");

    let line = |message: &str| {
        log.lines()
            .find(|line| line.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in {log}"))
    };
    let delivery = r#"authgear_webhook.delivery{id="span-0001" event_type="user.created"}:"#;
    let stored = line("inbox: stored");
    assert!(stored.contains(delivery), "{stored}");
    // The forgery: its own delivery span, with no id (its body was never trusted).
    let refused = line("authgear webhook refused");
    assert!(refused.contains("authgear_webhook.delivery:"), "{refused}");
    assert!(!refused.contains("span-forged"), "{refused}");

    let handle = "authgear_webhook.handle{id=span-0001 event_type=user.created endpoint=/ \
                  attempt=1 recovered=false}:";
    for message in ["the handler ran", "inbox: handled"] {
        let ran = line(message);
        assert!(ran.contains(handle), "{ran}");
        // The worker's run is not inside the delivery's span: a trace of its own.
        assert!(!ran.contains("authgear_webhook.delivery"), "{ran}");
    }
}

/// The example server's log (`AUTHGEAR_WEBHOOK_LOG`): the delivery's lines and its
/// handler's carry the event's id in their spans, so the one is followed to the other.
#[cfg(all(feature = "axum", feature = "replay-redis", feature = "inbox-redis"))]
#[test]
fn the_example_logs_a_delivery_and_its_handler_run_in_spans_with_the_event_id() {
    use std::{
        io::{BufRead, BufReader, Read},
        process::{Command, Stdio},
    };
    let dir = TempDir::new("example-log");
    let inbox = dir.path().join("inbox.sqlite3");
    let mut child = Command::new(crate::common::example::path("axum_server"))
        .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
        .env("ADDR", "127.0.0.1:0")
        .env("AUTHGEAR_WEBHOOK_INBOX", &inbox)
        .env("AUTHGEAR_WEBHOOK_LOG", "debug")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("ADMIN_ADDR")
        .env_remove("AUTHGEAR_WEBHOOK_SECRET_FILE")
        .env_remove("AUTHGEAR_ADMIN_API_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = stdout.next().expect("a line").expect("utf-8");
    let addr = first
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split(' ').next())
        .expect("a listening line")
        .to_owned();
    let body = stamped_event("user.created", "log-0001");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (status, _, _) = runtime.block_on(crate::common::post(
        &format!("http://{addr}/"),
        &body,
        Some(sign(SECRET, &body)),
    ));
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let line = stdout.next().expect("a line").expect("utf-8");
        if line == "handled user.created log-0001" {
            break;
        }
        assert!(Instant::now() < deadline, "no handled line");
    }
    // The handler's "handled" log line is written after its stdout line: give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut log)
        .expect("utf-8");
    let delivery = log
        .lines()
        .find(|line| line.contains("authgear_webhook.delivery{") && line.contains("log-0001"))
        .unwrap_or_else(|| panic!("no delivery span with the id in:\n{log}"));
    assert!(delivery.contains("user.created"), "{delivery}");
    let handled = log
        .lines()
        .find(|line| line.contains("authgear_webhook.handle{") && line.contains("inbox: handled"))
        .unwrap_or_else(|| panic!("no handler span in:\n{log}"));
    assert!(handled.contains("log-0001"), "{handled}");
    assert!(!log.contains(SECRET), "the log shows no secret");
}
