//! `axum_server` with `AUTHGEAR_WEBHOOK_SECRET_FILE`, run for real: the file rewritten while
//! deliveries flow, then broken; and a file it cannot use at start.

use std::{
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::{
    TempDir,
    example::{self, SECRET, Server},
    fixture_event,
};
use authgear_webhook::sign;
use http::StatusCode;

/// How long a change of the file may take to be in use.
const FILE_CHANGE: Duration = Duration::from_secs(5);

/// Posts a `user.created` delivery signed with `secret`; the status.
async fn deliver(url: &str, secret: &str) -> StatusCode {
    let body = fixture_event("user.created");
    let (status, _, _) = crate::common::post(url, &body, Some(sign(secret, &body))).await;
    status
}

/// Delivers until the answer is `want`, for at most `FILE_CHANGE`; whether it came.
async fn answers_within(url: &str, secret: &str, want: StatusCode) -> bool {
    let deadline = Instant::now() + FILE_CHANGE;
    while Instant::now() < deadline {
        if deliver(url, secret).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_its_secret_file_while_deliveries_flow() {
    let dir = TempDir::new("example-secrets");
    let path = dir.path().join("webhook-secrets");
    std::fs::write(&path, "old-secret\n").expect("write");
    let file = path.to_str().expect("a UTF-8 path");
    // The harness sets AUTHGEAR_WEBHOOK_SECRET too: the file wins.
    let server = Server::start(
        "axum_server",
        &[
            ("AUTHGEAR_WEBHOOK_SECRET_FILE", file),
            ("AUTHGEAR_WEBHOOK_REPLAY", "off"),
            ("ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    let url = server.url();
    assert_eq!(
        secrets_health(&server).await,
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(deliver(&url, "old-secret").await, StatusCode::OK);
    assert_eq!(deliver(&url, SECRET).await, StatusCode::UNAUTHORIZED);

    // Deliveries flow throughout, each signed with a secret the file lists before and after
    // the change under way: none may fail.
    let flowing = Arc::new(Mutex::new("old-secret"));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (url, flowing, stop, sent) =
                (url.clone(), flowing.clone(), stop.clone(), sent.clone());
            tokio::spawn(async move {
                let mut failed = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let secret = *flowing.lock().expect("not poisoned");
                    let status = deliver(&url, secret).await;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if status != StatusCode::OK {
                        failed.push((secret, status));
                    }
                }
                failed
            })
        })
        .collect();

    // The new secret first, the old one still listed: the new one is accepted within 5 s.
    std::fs::write(&path, "new-secret\nold-secret\n").expect("write");
    assert!(
        answers_within(&url, "new-secret", StatusCode::OK).await,
        "the new secret in use within {FILE_CHANGE:?}"
    );
    *flowing.lock().expect("not poisoned") = "new-secret";
    // The old one removed: refused within 5 s, then always.
    std::fs::write(&path, "new-secret\n").expect("write");
    assert!(
        answers_within(&url, "old-secret", StatusCode::UNAUTHORIZED).await,
        "the old secret refused within {FILE_CHANGE:?}"
    );
    for _ in 0..5 {
        assert_eq!(deliver(&url, "old-secret").await, StatusCode::UNAUTHORIZED);
    }

    // Broken, the file keeps the last good secret.
    std::fs::remove_file(&path).expect("remove");
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::write(&path, "").expect("write");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Said in health: degraded, still ready.
    assert_eq!(
        secrets_health(&server).await,
        (StatusCode::OK, "degraded".to_owned())
    );

    stop.store(true, Ordering::SeqCst);
    let mut failed = Vec::new();
    for task in tasks {
        failed.extend(task.await.expect("task"));
    }
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent > 50, "{sent} deliveries");
    assert_eq!(failed, [], "of {sent} deliveries");
    assert_eq!(deliver(&url, "new-secret").await, StatusCode::OK);
    assert_eq!(deliver(&url, "old-secret").await, StatusCode::UNAUTHORIZED);

    // Usable again: ok again in health.
    std::fs::write(&path, "new-secret\n").expect("write");
    let deadline = Instant::now() + FILE_CHANGE;
    while secrets_health(&server).await.1 != "ok" {
        assert!(Instant::now() < deadline, "health's secrets check ok again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/health` on the admin listener: its status and the `webhook secrets` check's status.
async fn secrets_health(server: &Server) -> (StatusCode, String) {
    let (status, _, report) =
        crate::common::call_json(http::Method::GET, &server.admin_url("/health")).await;
    let check = report["checks"]
        .as_array()
        .and_then(|checks| {
            checks
                .iter()
                .find(|check| check["name"] == "webhook secrets")
        })
        .unwrap_or_else(|| panic!("no secrets check in {report}"));
    (
        status,
        check["status"].as_str().expect("a status").to_owned(),
    )
}

#[test]
fn exits_at_once_with_a_secret_file_it_cannot_use() {
    let dir = TempDir::new("example-secrets-bad");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    for path in [dir.path().join("missing"), empty] {
        let output = Command::new(example::path("axum_server"))
            .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
            .env("AUTHGEAR_WEBHOOK_SECRET_FILE", &path)
            .env("ADDR", "127.0.0.1:0")
            .output()
            .expect("the example runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).expect("utf-8");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("AUTHGEAR_WEBHOOK_SECRET_FILE"), "{stderr}");
        assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
    }
}
