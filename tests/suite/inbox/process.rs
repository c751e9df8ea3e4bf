//! The example server as real processes: `axum_server` with its SQLite inbox killed with
//! SIGKILL right after acknowledging (everything handled after a restart) and stopped with
//! SIGTERM; two of them sharing one Redis handle each event exactly once, one killed mid-run
//! leaves its events to the other, and Redis down is 503 and its restart loses nothing
//! acknowledged; on Postgres, killed right after acknowledging, each event's row is written
//! exactly once after a restart, and Postgres stopped is 503 and its restart loses nothing
//! acknowledged.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use super::{durable_redis, event, eventually, inbox_file, post, store};
use crate::common::{PostgresServer, SECRET, TIMEOUT, TempDir, example::Server};
use authgear_webhook::inbox::Store;
use bytes::Bytes;
use http::StatusCode;

/// `axum_server` on a free port with its inbox in `file`.
fn start_on_sqlite(file: &std::path::Path) -> Server {
    let file = file.to_str().expect("a UTF-8 path");
    let server = Server::start("axum_server", &[("AUTHGEAR_WEBHOOK_INBOX", file)]);
    assert!(
        server.startup.ends_with(&format!("inbox: sqlite {file})")),
        "{}",
        server.startup
    );
    server
}

#[tokio::test]
async fn example_killed_after_acknowledging_handles_everything_after_restart() {
    let dir = TempDir::new("kill");
    let mut first = start_on_sqlite(&inbox_file(&dir));
    const N: usize = 64;
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..N {
        let url = first.url();
        sends.spawn(async move {
            let id = format!("kill-{n:03}");
            let (status, _) = post(&url, &event("user.created", &id), SECRET).await;
            (id, status)
        });
    }
    let mut acknowledged = HashSet::new();
    while let Some(sent) = sends.join_next().await {
        let (id, status) = sent.expect("sent");
        assert_eq!(status, StatusCode::OK, "{id}");
        acknowledged.insert(id);
    }
    // SIGKILL right after the last 200: no chance to finish anything.
    first.kill9();
    let before = first.lines_left();
    for id in &acknowledged {
        assert!(
            before.contains(&format!("200 user.created {id}")),
            "{id} acknowledged line"
        );
    }
    let handled_before = first.handled_ids("user.created");
    eprintln!("handled before the kill: {} of {N}", handled_before.len());

    let second = start_on_sqlite(&inbox_file(&dir));
    eventually("every acknowledged id handled after the restart", || {
        let handled: HashSet<String> = handled_before
            .iter()
            .cloned()
            .chain(second.handled_ids("user.created"))
            .collect();
        let all = acknowledged.is_subset(&handled);
        async move { all }
    })
    .await;
}

#[tokio::test]
async fn example_stops_gracefully_on_sigterm() {
    let dir = TempDir::new("sigterm");
    let mut server = start_on_sqlite(&inbox_file(&dir));
    let (status, _) = post(&server.url(), &event("user.created", "term"), SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.next_line(), "200 user.created term");
    eventually("the event handled", || {
        let handled = server.handled_ids("user.created");
        async move { handled == ["term"] }
    })
    .await;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// Posts a `user.created` delivery with `id` to `url`; the status, or `None` if the
/// connection failed (the server was killed).
async fn try_post(url: &str, id: &str) -> Option<http::StatusCode> {
    use authgear_webhook::{SIGNATURE_HEADER, sign};
    let body = event("user.created", id);
    let request = http::Request::post(url)
        .header(SIGNATURE_HEADER, sign(SECRET, &body))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .expect("request");
    let response = tokio::time::timeout(TIMEOUT, crate::common::client(false).request(request))
        .await
        .expect("in time");
    response.ok().map(|response| response.status())
}

/// `axum_server` on a free port with its inbox in the Redis at `redis_url`.
fn start_on_redis(redis_url: &str, claim_ms: u64) -> Server {
    let claim_ms = claim_ms.to_string();
    let server = Server::start(
        "axum_server",
        &[
            ("REDIS_URL", redis_url),
            ("AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS", &claim_ms),
            ("AUTHGEAR_WEBHOOK_INBOX", ""),
            // Repeated deliveries reach the inbox (which stores them once) instead of
            // being refused by replay protection first.
            ("AUTHGEAR_WEBHOOK_REPLAY", "off"),
        ],
    );
    assert!(
        server.startup.ends_with("inbox: redis)"),
        "{}",
        server.startup
    );
    server
}

/// How many times each id was handled by `servers`, on top of `before`.
fn count_handled(servers: &[&Server], before: &HashMap<String, usize>) -> HashMap<String, usize> {
    let mut counted = before.clone();
    for server in servers {
        for id in server.handled_ids("user.created") {
            *counted.entry(id).or_default() += 1;
        }
    }
    counted
}

/// Waits until every id of `expected` is handled by `servers` (or was in `before`); fails
/// the test after `TIMEOUT`. Returns how many times each id was handled.
async fn wait_handled(
    servers: &[&Server],
    before: &HashMap<String, usize>,
    expected: &HashSet<String>,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let counted = count_handled(servers, before);
        let mut missing: Vec<&String> = expected
            .iter()
            .filter(|id| !counted.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return counted;
        }
        missing.sort();
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events never handled, {:?}...",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `ids` concurrently, each to `urls[n % urls.len()]`; the ids answered 200.
async fn send_all(urls: &[String], ids: &[String]) -> HashSet<String> {
    let mut sends = tokio::task::JoinSet::new();
    for (n, id) in ids.iter().enumerate() {
        let (url, id) = (urls[n % urls.len()].clone(), id.clone());
        sends.spawn(async move { (try_post(&url, &id).await, id) });
    }
    let mut acknowledged = HashSet::new();
    while let Some(sent) = sends.join_next().await {
        if let (Some(http::StatusCode::OK), id) = sent.expect("sent") {
            acknowledged.insert(id);
        }
    }
    acknowledged
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|n| format!("{prefix}-{n:04}")).collect()
}

#[tokio::test]
async fn two_example_servers_on_one_redis_handle_each_event_exactly_once() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let (a, b) = (
        start_on_redis(&redis.url, 30_000),
        start_on_redis(&redis.url, 30_000),
    );
    let urls = [a.url(), b.url()];
    let sent = ids("share", 200);
    let acknowledged = send_all(&urls, &sent).await;
    assert_eq!(
        acknowledged.len(),
        sent.len(),
        "every delivery answered 200"
    );
    // The same deliveries again, each to the other server: 200, stored once, not handled
    // again.
    let again = send_all(&[b.url(), a.url()], &sent[..50]).await;
    assert_eq!(again.len(), 50);

    wait_handled(&[&a, &b], &HashMap::new(), &acknowledged).await;
    // Nothing queued or in flight any more: no handling can follow.
    let store = store(&redis);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let counts = store.counts().await.expect("counts");
        if (counts.queued, counts.in_flight) == (0, 0) {
            assert_eq!(counts.done, sent.len() as u64);
            break;
        }
        assert!(Instant::now() < deadline, "{counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut a, mut b) = (a, b);
    a.kill9();
    b.kill9();
    let handled = count_handled(&[&a, &b], &HashMap::new());
    assert_eq!(handled.len(), sent.len());
    let twice: Vec<_> = handled.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
}

#[tokio::test]
async fn an_example_server_killed_mid_run_leaves_its_events_to_the_other() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    // Claims of 500 ms: the dead server's events are taken over half a second after its
    // last heartbeat (the default is 30 s).
    let (mut a, b) = (
        start_on_redis(&redis.url, 500),
        start_on_redis(&redis.url, 500),
    );
    let urls = [a.url(), b.url()];
    let sent = ids("kill", 400);
    let sending = tokio::spawn({
        let sent = sent.clone();
        async move { send_all(&urls, &sent).await }
    });
    // SIGKILL `a` in the middle of the run, once it has handled some events.
    let deadline = Instant::now() + TIMEOUT;
    while a.handled_ids("user.created").len() < 50 {
        assert!(Instant::now() < deadline, "a handles events");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.kill9();
    let handled = count_handled(&[&a], &HashMap::new());
    // What `a` held when it died (its consumer's pending entries).
    let pending = redis.cli(&["XPENDING", "{authgear-webhook:inbox}:v2:stream", "workers"]);
    eprintln!("pending right after the kill: {pending}");
    let acknowledged = sending.await.expect("sent");
    eprintln!("{} of {} acknowledged", acknowledged.len(), sent.len());
    assert!(acknowledged.len() > sent.len() / 2);
    let handled = wait_handled(&[&b], &handled, &acknowledged).await;
    assert!(acknowledged.iter().all(|id| handled.contains_key(id)));
}

#[tokio::test]
async fn redis_down_is_503_and_a_restart_loses_nothing_acknowledged() {
    let Some(mut redis) = durable_redis().await else {
        return;
    };
    // Short claims: a claim Redis wrote to its AOF but was killed before answering is
    // handed over when it expires, which must be within the `TIMEOUT` below.
    let server = start_on_redis(&redis.url, 3_000);
    let urls = [server.url()];
    let first = ids("before", 150);
    let mut acknowledged = send_all(&urls, &first).await;
    assert_eq!(acknowledged.len(), first.len());
    // SIGKILL Redis while the worker is still handling them, restart it on the same AOF.
    redis.kill();
    for id in ids("down", 5) {
        assert_eq!(
            try_post(&server.url(), &id).await,
            Some(http::StatusCode::SERVICE_UNAVAILABLE),
            "Redis down: 503, never 200"
        );
    }
    redis.restart().await;
    // The server recovers: new deliveries are stored again.
    let after = ids("after", 50);
    let deadline = Instant::now() + TIMEOUT;
    for id in &after {
        while try_post(&server.url(), id).await != Some(http::StatusCode::OK) {
            assert!(Instant::now() < deadline, "recovers");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acknowledged.insert(id.clone());
    }
    wait_handled(&[&server], &HashMap::new(), &acknowledged).await;
}

/// `axum_server` on a free port with its inbox in the Postgres at `url`; claims of 1 s, so
/// that the events a killed server held are handed over within the tests' `TIMEOUT`.
fn start_on_postgres(url: &str) -> Server {
    let server = Server::start(
        "axum_server",
        &[
            ("DATABASE_URL", url),
            ("AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS", "1000"),
            ("AUTHGEAR_WEBHOOK_INBOX", ""),
        ],
    );
    assert!(
        server.startup.ends_with("inbox: postgres)"),
        "{}",
        server.startup
    );
    server
}

/// Waits until every id of `expected` has its row in the example's table (fails the test
/// after `TIMEOUT`); then the number of rows of each id in it.
async fn wait_rows(
    postgres: &PostgresServer,
    expected: &HashSet<String>,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut rows: HashMap<String, usize> = HashMap::new();
        let listed = postgres.psql(
            "SELECT event_id FROM authgear_webhook_example_handled \
             WHERE event_type = 'user.created'",
        );
        for id in listed.lines() {
            *rows.entry(id.to_owned()).or_default() += 1;
        }
        let missing = expected.iter().filter(|id| !rows.contains_key(*id)).count();
        if missing == 0 {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged events have no row"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every id of `rows` acknowledged, and written once.
fn assert_once(rows: &HashMap<String, usize>, acknowledged: &HashSet<String>) {
    let twice: Vec<_> = rows.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    let ids: HashSet<String> = rows.keys().cloned().collect();
    assert_eq!(&ids, acknowledged, "rows only for acknowledged events");
}

#[tokio::test]
async fn example_on_postgres_killed_after_acknowledging_writes_each_event_once_after_restart() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let mut first = start_on_postgres(&postgres.url);
    let sent = ids("pg-kill", 64);
    let acknowledged = send_all(&[first.url()], &sent).await;
    assert_eq!(
        acknowledged.len(),
        sent.len(),
        "every delivery answered 200"
    );
    // SIGKILL right after the last 200: handlers in flight never commit.
    first.kill9();
    let before = count_handled(&[&first], &HashMap::new());
    eprintln!(
        "handled before the kill: {} of {}",
        before.len(),
        sent.len()
    );

    let second = start_on_postgres(&postgres.url);
    let handled = wait_handled(&[&second], &before, &acknowledged).await;
    let rows = wait_rows(&postgres, &acknowledged).await;
    assert_once(&rows, &acknowledged);
    // Every id printed as handled, by either process, has its row.
    assert!(handled.keys().all(|id| rows.contains_key(id)));
}

#[tokio::test]
async fn example_on_postgres_stopped_is_503_and_a_restart_loses_nothing_acknowledged() {
    let Some(mut postgres) = PostgresServer::start().await else {
        return;
    };
    let server = start_on_postgres(&postgres.url);
    let urls = [server.url()];
    let first = ids("pg-before", 100);
    let mut acknowledged = send_all(&urls, &first).await;
    assert_eq!(acknowledged.len(), first.len());
    // Stopped while the worker is still handling them.
    postgres.stop();
    for id in ids("pg-down", 5) {
        assert_eq!(
            try_post(&server.url(), &id).await,
            Some(http::StatusCode::SERVICE_UNAVAILABLE),
            "Postgres down: 503, never 200"
        );
    }
    postgres.start_again();
    // The server recovers: new deliveries are stored again.
    let deadline = Instant::now() + TIMEOUT;
    for id in ids("pg-after", 20) {
        while try_post(&server.url(), &id).await != Some(http::StatusCode::OK) {
            assert!(Instant::now() < deadline, "recovers");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acknowledged.insert(id);
    }
    wait_handled(&[&server], &HashMap::new(), &acknowledged).await;
    let rows = wait_rows(&postgres, &acknowledged).await;
    assert_once(&rows, &acknowledged);
}

#[tokio::test]
async fn two_example_servers_on_one_postgres_share_the_events_and_survive_a_kill() {
    let Some(postgres) = PostgresServer::start().await else {
        return;
    };
    let (mut a, b) = (
        start_on_postgres(&postgres.url),
        start_on_postgres(&postgres.url),
    );
    let urls = [a.url(), b.url()];
    // Both take deliveries, both handle events; each event's row is written once.
    let shared = ids("pg-share", 100);
    let acknowledged = send_all(&urls, &shared).await;
    assert_eq!(
        acknowledged.len(),
        shared.len(),
        "every delivery answered 200"
    );
    let handled = wait_handled(&[&a, &b], &HashMap::new(), &acknowledged).await;
    assert!(handled.values().all(|n| *n == 1), "handled once each");
    for server in [&a, &b] {
        assert!(
            !server.handled_ids("user.created").is_empty(),
            "both handle"
        );
    }
    assert_once(&wait_rows(&postgres, &acknowledged).await, &acknowledged);

    // SIGKILL `a` in the middle of a run: `b` takes over what `a` held.
    let before = a.handled_ids("user.created").len();
    let sent = ids("pg-kill-mid", 200);
    let sending = tokio::spawn({
        let sent = sent.clone();
        async move { send_all(&urls, &sent).await }
    });
    let deadline = Instant::now() + TIMEOUT;
    while a.handled_ids("user.created").len() < before + 30 {
        assert!(Instant::now() < deadline, "a handles events");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.kill9();
    let mut killed = sending.await.expect("sent");
    eprintln!("{} of {} acknowledged", killed.len(), sent.len());
    assert!(killed.len() > sent.len() / 2);
    killed.extend(acknowledged);
    let rows = wait_rows(&postgres, &killed).await;
    // Every acknowledged event has its row once. A delivery whose 200 the kill cut off may
    // have been stored and handled too, once; nothing else is written.
    let twice: Vec<_> = rows.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    let all: HashSet<&String> = shared.iter().chain(&sent).collect();
    assert!(rows.keys().all(|id| all.contains(id)));
}
