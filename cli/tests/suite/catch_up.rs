//! `authgear-webhook catch-up`, run for real against the library's stand-in for Authgear's
//! Admin API (`tests/common/admin_api.rs`, served on this test's runtime) and a SQLite inbox
//! prepared through the library: a dry run lists exactly the events the inbox is missing and
//! stores nothing; a run stores them, once; a refused key is one line and a non-zero exit;
//! more than a page of entries within one second is read whole; a Redis inbox by its URL.

#[allow(dead_code)]
#[path = "../../../tests/common/admin_api.rs"]
mod stand_in;

use std::{path::PathBuf, process::Command, time::Duration};

use self::stand_in::{APP_ID, AdminApiStandIn, KEY_ID, event};
use crate::common::{
    RedisServer, TempDir,
    example::{self, Output},
    fixture,
};
use authgear_webhook::inbox::{Counts, EventKey, NewEvent, SqliteStore, Store, Stored};

/// How long one run of the binary may take.
const LIMIT: Duration = Duration::from_secs(30);

/// A second well in the past, where the tests log their events.
const BASE: i64 = 1_780_000_000;

/// `--from` and `--to` around every event of the tests.
const FROM: &str = "2026-05-28T20:00:00Z";
const TO: &str = "2026-05-28T22:00:00Z";

/// The Admin API key fixture `name` (`tests/fixtures/admin-api/`).
fn key_file(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tests/fixtures/admin-api",
        name,
    ]
    .iter()
    .collect();
    path.to_str().expect("utf-8 path").to_owned()
}

/// Runs `authgear-webhook catch-up` with `args` and the Admin API settings of `stand_in`
/// (the key `key`) from the environment, off this runtime's threads: the stand-in answers
/// on them while the binary runs.
async fn catch_up(stand_in: &AdminApiStandIn, key: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authgear-webhook"));
    command
        .arg("catch-up")
        .args(args)
        .env_remove("REDIS_URL")
        .env("AUTHGEAR_ADMIN_API_ENDPOINT", &stand_in.url)
        .env("AUTHGEAR_APP_ID", APP_ID)
        .env("AUTHGEAR_ADMIN_API_KEY_FILE", key_file(key))
        .env("AUTHGEAR_ADMIN_API_KEY_ID", KEY_ID);
    tokio::task::spawn_blocking(move || example::run(&mut command, LIMIT))
        .await
        .expect("the runner")
}

/// The SQLite inbox file in `dir`.
fn inbox_file(dir: &TempDir) -> String {
    dir.path()
        .join("inbox.sqlite3")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// The store on `file`, once the previous process or handle has let it go.
async fn open(file: &str) -> SqliteStore {
    for _ in 0..100 {
        if let Ok(store) = SqliteStore::open(file) {
            return store;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{file} stays in use");
}

/// The counts of the inbox `file`, the file let go again after.
async fn counts(file: &str) -> Counts {
    open(file).await.counts().await.expect("counts")
}

/// The inbox `file` holding `ids` on `endpoint`, as webhook deliveries.
async fn delivered(file: &str, endpoint: &str, ids: &[String]) {
    let store = open(file).await;
    for id in ids {
        let stored = store
            .store(NewEvent {
                key: EventKey::new(endpoint, id.as_str()),
                event_type: "user.created".into(),
                body: format!(r#"{{"id":"{id}","type":"user.created"}}"#).into(),
                recovered: false,
            })
            .await
            .expect("store");
        assert_eq!(stored, Stored::Stored);
    }
}

fn assert_ok(output: &Output) {
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stderr, "", "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_what_the_inbox_is_missing_and_a_run_stores_it_once() {
    let stand_in = AdminApiStandIn::start().await;
    let types = ["user.created", "user.authenticated"];
    // Eight events over a minute; two share a second.
    let events: Vec<_> = (1..=8u64)
        .map(|seq| {
            let second = BASE + 7 * i64::try_from(seq).expect("small") - 7 * i64::from(seq == 5);
            event(seq, types[seq as usize % 2], second)
        })
        .collect();
    for event in &events {
        stand_in.log(event.clone());
    }
    let id = |event: &serde_json::Value| event["id"].as_str().expect("an id").to_owned();
    let dir = TempDir::new("cli-catch-up");
    let file = inbox_file(&dir);
    // 1 to 3 came by webhook; 4 came to another endpoint only.
    let came: Vec<String> = events[..3].iter().map(id).collect();
    delivered(&file, "/", &came).await;
    delivered(&file, "/other", &[id(&events[3])]).await;
    let before = counts(&file).await;
    assert_eq!(before.queued, 4);

    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &file, "--from", FROM, "--dry-run"],
    )
    .await;
    assert_ok(&output);
    let mut missing: Vec<&serde_json::Value> = events[3..].iter().collect();
    missing.sort_by_key(|event| (event["context"]["timestamp"].as_i64(), id(event)));
    let expected: String = missing
        .iter()
        .map(|event| {
            let second = event["context"]["timestamp"].as_i64().expect("a time");
            let at = std::time::UNIX_EPOCH + Duration::from_secs(second as u64);
            format!(
                "missing {} {} {}\n",
                event["type"].as_str().expect("a type"),
                id(event),
                rfc3339(at)
            )
        })
        .collect();
    assert_eq!(
        output.stdout,
        format!("{expected}read 8, missing 5 (dry run: nothing stored)\n")
    );
    assert_eq!(counts(&file).await, before, "a dry run stores nothing");

    // One type only.
    let output = catch_up(
        &stand_in,
        "key.pem",
        &[
            "--inbox",
            &file,
            "--from",
            FROM,
            "--to",
            TO,
            "--types",
            "user.created",
            "--dry-run",
        ],
    )
    .await;
    assert_ok(&output);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{output:?}");
    assert!(
        lines[..3]
            .iter()
            .all(|line| line.starts_with("missing user.created ")),
        "{output:?}"
    );
    assert_eq!(lines[3], "read 4, missing 3 (dry run: nothing stored)");

    // Stored, then found stored.
    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &file, "--from", FROM, "--to", TO],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        "read 8, stored 5 (the others were in the inbox)\n"
    );
    let after = counts(&file).await;
    assert_eq!(after.queued, before.queued + 5);
    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &file, "--from", FROM, "--to", TO],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        "read 8, stored 0 (the others were in the inbox)\n"
    );
    assert_eq!(counts(&file).await, after);
    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &file, "--from", FROM, "--dry-run"],
    )
    .await;
    assert_eq!(
        output.stdout,
        "read 8, missing 0 (dry run: nothing stored)\n"
    );

    // Under the key a delivery would have had, marked recovered.
    let store = open(&file).await;
    let claimed = store
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim");
    let mut recovered: Vec<(String, String)> = claimed
        .iter()
        .filter(|claim| claim.recovered)
        .map(|claim| (claim.key.endpoint.clone(), claim.key.id.clone()))
        .collect();
    recovered.sort();
    let mut expected: Vec<(String, String)> = events[3..]
        .iter()
        .map(|event| ("/".to_owned(), id(event)))
        .collect();
    expected.sort();
    assert_eq!(recovered, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_one_line_and_a_non_zero_exit() {
    let stand_in = AdminApiStandIn::start().await;
    stand_in.log(event(1, "user.created", BASE));
    let dir = TempDir::new("cli-catch-up-refused");
    let file = inbox_file(&dir);
    delivered(&file, "/", &[]).await;

    let output = catch_up(
        &stand_in,
        "other-key.pem",
        &["--inbox", &file, "--from", FROM],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(output.stdout, "", "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "{output:?}");
    assert!(
        output.stderr.contains("the Admin API refused the token"),
        "{output:?}"
    );
    assert!(stand_in.refused() >= 1);
    // Never the key: no line of the PEM file in what it prints.
    let pem = String::from_utf8(fixture("admin-api/other-key.pem")).expect("pem");
    for line in pem.lines().filter(|line| line.len() > 8) {
        assert!(!output.stderr.contains(line), "{output:?}");
    }
    assert_eq!(counts(&file).await, Counts::default(), "nothing stored");

    // The flags win over the environment: the right key by flag.
    let right = key_file("key.pem");
    let output = catch_up(
        &stand_in,
        "other-key.pem",
        &["--inbox", &file, "--from", FROM, "--key-file", &right],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        "read 1, stored 1 (the others were in the inbox)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_page_within_one_second_is_read_whole() {
    let stand_in = AdminApiStandIn::start().await;
    for seq in 0..250 {
        stand_in.log(event(seq, "user.authenticated", BASE + 100));
    }
    let dir = TempDir::new("cli-catch-up-second");
    let file = inbox_file(&dir);
    delivered(&file, "/", &[]).await;

    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &file, "--from", FROM, "--to", TO, "--dry-run"],
    )
    .await;
    assert_ok(&output);
    let missing: std::collections::HashSet<&str> = output
        .stdout
        .lines()
        .filter(|line| line.starts_with("missing "))
        .collect();
    assert_eq!(missing.len(), 250, "each once: {output:?}");
    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &file, "--from", FROM, "--to", TO],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        "read 250, stored 250 (the others were in the inbox)\n"
    );
    assert_eq!(counts(&file).await.queued, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_inbox_by_its_url() {
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let url = server.url.clone();
    let store = crate::cli::redis_store(&url).await;
    let stand_in = AdminApiStandIn::start().await;
    for seq in 1..=3 {
        stand_in.log(event(
            seq,
            "user.created",
            BASE + i64::try_from(seq).expect("small"),
        ));
    }
    let came = event(1, "user.created", BASE);
    let stored = store
        .store(NewEvent {
            key: EventKey::new("/", came["id"].as_str().expect("an id")),
            event_type: "user.created".into(),
            body: "{}".into(),
            recovered: false,
        })
        .await
        .expect("store");
    assert_eq!(stored, Stored::Stored);

    // Beside a live store (Redis is shared).
    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &url, "--from", FROM, "--to", TO, "--dry-run"],
    )
    .await;
    assert_ok(&output);
    assert_eq!(output.stdout.lines().count(), 3, "{output:?}");
    let output = catch_up(
        &stand_in,
        "key.pem",
        &["--inbox", &url, "--from", FROM, "--to", TO],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        "read 3, stored 2 (the others were in the inbox)\n"
    );
    assert_eq!(store.counts().await.expect("counts").queued, 3);
    drop(server);
}

/// `time` in UTC as the tool prints it (RFC 3339 with milliseconds).
fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let output = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S.000Z"])
        .output()
        .expect("date");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}
