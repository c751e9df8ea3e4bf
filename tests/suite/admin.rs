//! The admin service through the example `axum_server` as a real process, on its
//! `ADMIN_ADDR`: `/health` turns 503 when the inbox's store cannot write (Redis stopped,
//! paused or out of memory, Postgres stopped, a full disk under SQLite) and 200 again after;
//! the live inbox's JSON, paging, re-drive and bad requests; and, in process, a store that
//! hangs answers "not ready" within the timeout.

use std::time::{Duration, Instant};

use authgear_webhook::{
    StoreError,
    admin::{AdminService, Health, Status},
    inbox::{EventKey, Inbox},
    sign,
};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use tower::ServiceExt;

use crate::common::{
    RedisServer, SECRET, TIMEOUT, TempDir, call_json, example::Server, small_disk::SmallDisk,
};
#[cfg(feature = "metrics")]
use crate::stores::Faulty;
use crate::stores::{Graveyard, Hung};

async fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let (status, _, json) = call_json(Method::GET, &server.admin_url(path)).await;
    (status, json)
}

async fn post_admin(server: &Server, path: &str) -> (StatusCode, Value) {
    let (status, _, json) = call_json(Method::POST, &server.admin_url(path)).await;
    (status, json)
}

/// Polls `/health` until it answers `status`; the last report. Fails after `TIMEOUT`.
async fn health_becomes(server: &Server, status: StatusCode) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (now, report) = get(server, "/health").await;
        if now == status {
            return report;
        }
        assert!(Instant::now() < deadline, "health stays {now}: {report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The check `name` of a health report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// A `user.created` delivery with `id`, signed, to the webhook: its status.
async fn deliver(server: &Server, event_type: &str, id: &str) -> StatusCode {
    let fixture =
        std::fs::read(format!("tests/fixtures/events/{event_type}.json")).expect("fixture");
    let mut event: Value = serde_json::from_slice(&fixture).expect("json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    event["context"]["timestamp"] = now.into();
    event["id"] = id.into();
    let body = serde_json::to_vec(&event).expect("json");
    let (status, _, _) = server.post(&body, Some(sign(SECRET, &body))).await;
    status
}

/// Waits for the line `failed {event_type} {id} (attempt {attempt})`.
fn wait_failed(server: &Server, event_type: &str, id: &str, attempt: u32) {
    let expected = format!("failed {event_type} {id} (attempt {attempt})");
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if server.next_line() == expected {
            return;
        }
    }
    panic!("no line {expected:?}");
}

#[tokio::test]
async fn health_is_503_while_redis_is_stopped_paused_or_out_of_memory_and_200_after() {
    let Some(mut redis) = RedisServer::builder().durable().start().await else {
        return;
    };
    let server = Server::start(
        "axum_server",
        &[
            ("REDIS_URL", &redis.url),
            ("AUTHGEAR_WEBHOOK_INBOX", ""),
            ("ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    assert!(
        server.startup.contains("admin: http://"),
        "{}",
        server.startup
    );
    let report = health_becomes(&server, StatusCode::OK).await;
    assert_eq!(report["ready"], true);
    assert_eq!(check(&report, "inbox store")["status"], "ok");
    assert_eq!(check(&report, "inbox worker")["status"], "ok");

    redis.kill();
    let report = health_becomes(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(report["ready"], false);
    let store = check(&report, "inbox store");
    assert_eq!(store["status"], "unready");
    let reason = store["reason"].as_str().expect("a reason");
    assert!(
        !reason.contains("redis://") && !reason.contains("127.0.0.1"),
        "{reason}"
    );
    assert_eq!(check(&report, "inbox worker")["status"], "ok");
    // Deliveries meanwhile: 503, as the report says.
    assert_eq!(
        deliver(&server, "user.created", "redis-down").await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    redis.restart().await;
    health_becomes(&server, StatusCode::OK).await;

    // A Redis that takes connections but holds every write: the report still comes, unready
    // (the store's own timeout or the check's), instead of hanging the load balancer.
    redis.cli(&["CLIENT", "PAUSE", "4000", "WRITE"]);
    let (status, report) = get(&server, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert!(
        check(&report, "inbox store")["reason"].is_string(),
        "{report}"
    );
    health_becomes(&server, StatusCode::OK).await;

    // Redis over its maxmemory (noeviction): every delivery is refused, and the report says
    // so; ready again once Redis has room.
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "1"]), "OK");
    assert_eq!(
        deliver(&server, "user.created", "redis-oom").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let report = health_becomes(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        check(&report, "inbox store")["reason"],
        "Redis is out of memory",
        "{report}"
    );
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    health_becomes(&server, StatusCode::OK).await;
}

#[tokio::test]
async fn health_is_503_while_postgres_is_stopped_and_200_after() {
    let Some(mut postgres) = crate::common::PostgresServer::start().await else {
        return;
    };
    let server = Server::start(
        "axum_server",
        &[
            ("DATABASE_URL", postgres.url.as_str()),
            ("AUTHGEAR_WEBHOOK_INBOX", ""),
            ("ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    let report = health_becomes(&server, StatusCode::OK).await;
    assert_eq!(check(&report, "inbox store")["status"], "ok", "{report}");

    postgres.stop();
    let report = health_becomes(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    let store = check(&report, "inbox store");
    assert_eq!(store["status"], "unready", "{report}");
    let reason = store["reason"].as_str().expect("a reason");
    assert!(!reason.contains("postgres://"), "{reason}");
    assert!(!reason.contains(&postgres.port().to_string()), "{reason}");
    assert_eq!(
        deliver(&server, "user.created", "pg-stopped").await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    postgres.start_again();
    health_becomes(&server, StatusCode::OK).await;
    assert_eq!(
        deliver(&server, "user.created", "pg-again").await,
        StatusCode::OK
    );
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(error) = file.write_all(&block).and_then(|()| file.sync_all()) {
            assert_eq!(error.kind(), std::io::ErrorKind::StorageFull, "{error}");
            break;
        }
    }
    // The last bytes, smaller than a block.
    while file
        .write_all(&[0; 512])
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

#[tokio::test]
async fn health_is_503_while_the_sqlite_disk_is_full_and_200_after() {
    let Some(disk) = SmallDisk::mount("admin-full", "2m") else {
        return;
    };
    let file = disk.path().join("inbox.sqlite3");
    let server = Server::start(
        "axum_server",
        &[
            ("AUTHGEAR_WEBHOOK_INBOX", file.to_str().expect("utf-8")),
            ("ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    health_becomes(&server, StatusCode::OK).await;

    let filler = disk.path().join("filler");
    fill(&filler);
    let report = health_becomes(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    let store = check(&report, "inbox store");
    assert_eq!(store["status"], "unready", "{report}");
    assert_eq!(store["reason"], "inbox store is full", "{report}");
    assert_eq!(
        deliver(&server, "user.created", "disk-full").await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    std::fs::remove_file(&filler).expect("room again");
    health_becomes(&server, StatusCode::OK).await;
    assert_eq!(
        deliver(&server, "user.created", "disk-free").await,
        StatusCode::OK
    );
    drop(server);
}

#[tokio::test]
async fn live_inbox_counts_pages_and_redrives_dead_letters_of_a_running_server() {
    let dir = TempDir::new("admin-live");
    let file = dir.path().join("inbox.sqlite3");
    let server = Server::start(
        "axum_server",
        &[
            ("AUTHGEAR_WEBHOOK_INBOX", file.to_str().expect("utf-8")),
            ("ADMIN_ADDR", "127.0.0.1:0"),
            ("FAIL_EVENT_TYPES", "user.created, user.deleted"),
            ("AUTHGEAR_WEBHOOK_MAX_ATTEMPTS", "1"),
        ],
    );
    // The webhook's listener serves no admin route.
    let (status, _, _) = call_json(Method::GET, &format!("{}health", server.url())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(server.next_line().starts_with("401 refused"));

    for id in ["dead-1", "dead-2"] {
        assert_eq!(deliver(&server, "user.created", id).await, StatusCode::OK);
        assert_eq!(server.next_line(), format!("200 user.created {id}"));
        wait_failed(&server, "user.created", id, 1);
    }
    let deadline = Instant::now() + TIMEOUT;
    let counts = loop {
        let (status, counts) = get(&server, "/inbox/counts").await;
        assert_eq!(status, StatusCode::OK);
        if counts["dead"] == 2 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(counts["dead"], 2, "{counts}");
    assert_eq!(counts["queued"], 0, "{counts}");
    assert_eq!(counts["in_flight"], 0, "{counts}");
    assert!(
        counts["done"].is_u64() && counts["bytes"].as_u64() > Some(0),
        "{counts}"
    );

    // Paged, one at a time: the cursor leads on, the last page says there is none after.
    let (status, first) = get(&server, "/inbox/dead?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    let dead = &first["dead"][0];
    assert_eq!(dead["endpoint"], "/");
    assert_eq!(dead["id"], "dead-1");
    assert_eq!(dead["type"], "user.created");
    assert_eq!(dead["attempts"], 1);
    assert_eq!(dead["last_error"], "FAIL_EVENT_TYPES has user.created");
    let died_at = dead["died_at"].as_str().expect("a time");
    assert!(died_at.len() == 24 && died_at.ends_with('Z'), "{died_at}");
    let next = first["next"].as_str().expect("a cursor");
    let (_, second) = get(&server, &format!("/inbox/dead?limit=1&after={next}")).await;
    assert_eq!(second["dead"][0]["id"], "dead-2");
    let next = second["next"].as_str().expect("a full page has a cursor");
    let (_, third) = get(&server, &format!("/inbox/dead?limit=1&after={next}")).await;
    assert_eq!(third["dead"], Value::Array(Vec::new()));
    assert_eq!(third["next"], Value::Null);
    let (_, all) = get(&server, "/inbox/dead").await;
    assert_eq!(all["dead"].as_array().map(Vec::len), Some(2));
    assert_eq!(all["next"], Value::Null);

    // Bad requests.
    for (method, path, expected) in [
        (Method::GET, "/nope", StatusCode::NOT_FOUND),
        (Method::GET, "/inbox/counts/", StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/inbox/dead/nope/redrive",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/inbox/dead/dead-1/redrive?endpoint=/other",
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/inbox/dead?limit=0", StatusCode::BAD_REQUEST),
        (
            Method::GET,
            "/inbox/dead?limit=many",
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "/inbox/dead?after=zz", StatusCode::BAD_REQUEST),
        (Method::GET, "/inbox/dead?page=2", StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/inbox/counts",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            "/inbox/dead",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/inbox/dead/dead-1/redrive",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let (status, allow, body) = call_json(method.clone(), &server.admin_url(path)).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        if expected == StatusCode::METHOD_NOT_ALLOWED {
            assert!(allow.is_some(), "{method} {path}: Allow");
        }
    }

    // One re-driven: handed to the handler again (which fails it again: dead once more).
    let (status, redriven) = post_admin(&server, "/inbox/dead/dead-1/redrive").await;
    assert_eq!(status, StatusCode::OK, "{redriven}");
    assert_eq!(redriven["redriven"][0]["id"], "dead-1");
    assert_eq!(redriven["redriven"][0]["endpoint"], "/");
    wait_failed(&server, "user.created", "dead-1", 1);
    // All, one of them per request: `next` until none is left.
    let deadline = Instant::now() + TIMEOUT;
    while get(&server, "/inbox/counts").await.1["dead"] != 2 {
        assert!(Instant::now() < deadline, "dead-1 dead again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, first) = post_admin(&server, "/inbox/dead/redrive?limit=1").await;
    assert_eq!(
        first["redriven"],
        serde_json::json!([{"endpoint": "/", "id": "dead-1"}])
    );
    let next = first["next"].as_str().expect("a cursor");
    // dead-2 only: dead-1, if the handler has failed it once more meanwhile, is before it.
    let (_, rest) = post_admin(
        &server,
        &format!("/inbox/dead/redrive?endpoint=%2F&after={next}"),
    )
    .await;
    assert_eq!(
        rest["redriven"],
        serde_json::json!([{"endpoint": "/", "id": "dead-2"}]),
        "{rest}"
    );
    assert_eq!(rest["next"], Value::Null, "{rest}");
}

#[tokio::test]
async fn a_hung_store_is_not_ready_within_the_timeout_and_checks_run_side_by_side() {
    let inbox = Inbox::new(Hung);
    let health = Health::new()
        .timeout(Duration::from_millis(300))
        .store(&inbox)
        .check_async("slow", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, StoreError>(())
        })
        .check_degraded("secrets", || {
            Err("file unreadable: the last good secrets are kept")
        })
        .check("panics", || -> Result<(), String> {
            panic!("a bug in a check")
        });
    let report = tokio::time::timeout(TIMEOUT, health.report())
        .await
        .expect("bounded by the timeout");
    assert!(!report.ready());
    let statuses: Vec<_> = report
        .checks()
        .iter()
        .map(|check| (check.name(), check.status(), check.reason()))
        .collect();
    assert_eq!(
        statuses,
        [
            (
                "inbox store",
                Status::Unready,
                Some("no answer within 300 ms")
            ),
            ("slow", Status::Unready, Some("no answer within 300 ms")),
            (
                "secrets",
                Status::Degraded,
                Some("file unreadable: the last good secrets are kept")
            ),
            ("panics", Status::Unready, Some("check panicked")),
        ]
    );
}

/// `method` `path` through `admin` in process: the status and the JSON.
async fn ask(admin: &AdminService, method: Method, path: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = tokio::time::timeout(TIMEOUT, admin.clone().oneshot(request))
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within {TIMEOUT:?}"))
        .expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).expect("json"))
}

#[tokio::test]
async fn a_hung_store_makes_every_inbox_route_503_within_the_timeout() {
    let admin = AdminService::new(Inbox::new(Hung)).timeout(Duration::from_millis(300));
    for (method, path) in [
        (Method::GET, "/inbox/counts"),
        (Method::GET, "/inbox/dead"),
        (Method::POST, "/inbox/dead/redrive"),
        (Method::POST, "/inbox/dead/0001/redrive"),
        (Method::POST, "/inbox/dead/0001/redrive?endpoint=%2F"),
    ] {
        let (status, body) = ask(&admin, method.clone(), path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
        assert_eq!(
            body,
            serde_json::json!({"error": "inbox store did not answer in time"}),
            "{method} {path}"
        );
    }
}

/// `n` dead letters on endpoint `/`, ids `0000`, `0001`, ...
fn ids(n: usize) -> impl Iterator<Item = (String, String)> {
    (0..n).map(|i| ("/".to_owned(), format!("{i:04}")))
}

#[tokio::test]
async fn pages_are_full_though_the_store_answers_one_at_a_time() {
    let admin = AdminService::new(Inbox::from_arc(Graveyard::new(ids(5), 1, false)));
    let mut listed = Vec::new();
    let mut path = "/inbox/dead?limit=2".to_owned();
    loop {
        let (status, page) = ask(&admin, Method::GET, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let dead = page["dead"].as_array().expect("dead letters");
        listed.extend(dead.iter().map(|dead| dead["id"].clone()));
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(dead.len(), 2, "a page with a next is full: {page}");
                path = format!("/inbox/dead?limit=2&after={next}");
            }
            None => {
                assert!(dead.len() < 2, "the last page: {page}");
                break;
            }
        }
    }
    assert_eq!(listed, ["0000", "0001", "0002", "0003", "0004"]);
}

/// Re-drives every dead letter through `admin`, `limit` looked at per request (`query`
/// added), following `next`: the keys re-driven, in order. Fails after 20 requests.
async fn redrive_through(admin: &AdminService, query: &str) -> Vec<(String, String)> {
    let (mut redriven, mut after) = (Vec::new(), None::<String>);
    for _ in 0..20 {
        let path = match &after {
            Some(after) => format!("/inbox/dead/redrive?{query}&after={after}"),
            None => format!("/inbox/dead/redrive?{query}"),
        };
        let (status, answer) = ask(admin, Method::POST, &path).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        redriven.extend(
            answer["redriven"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|key| {
                    let text = |name: &str| key[name].as_str().expect("text").to_owned();
                    (text("endpoint"), text("id"))
                }),
        );
        match answer["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return redriven,
        }
    }
    panic!(
        "still re-driving after 20 requests: {} so far",
        redriven.len()
    );
}

#[tokio::test]
async fn redriving_all_goes_through_once_while_the_handler_kills_them_again() {
    // More than a request looks at (1000), each dead again as soon as it is re-driven.
    let all: Vec<_> = ids(2500).collect();
    let graveyard = Graveyard::new(all.clone(), 700, true);
    let admin = AdminService::new(Inbox::from_arc(graveyard.clone()));
    assert_eq!(redrive_through(&admin, "").await, all);
    let keys = |pairs: &[(String, String)]| -> Vec<EventKey> {
        pairs
            .iter()
            .map(|(endpoint, id)| EventKey::new(endpoint.as_str(), id.as_str()))
            .collect()
    };
    assert_eq!(graveyard.redriven(), keys(&all));

    // Of one endpoint, a few at a time.
    let mixed: Vec<_> = ["/a", "/b"]
        .into_iter()
        .flat_map(|endpoint| (0..5).map(move |i| (endpoint.to_owned(), format!("{i}"))))
        .collect();
    let graveyard = Graveyard::new(mixed.clone(), 1000, true);
    let admin = AdminService::new(Inbox::from_arc(graveyard.clone()));
    let of_b: Vec<_> = mixed.iter().filter(|(e, _)| e == "/b").cloned().collect();
    assert_eq!(redrive_through(&admin, "endpoint=%2Fb&limit=2").await, of_b);
    assert_eq!(graveyard.redriven(), keys(&of_b));

    // `Inbox::redrive_all` is the same walk.
    let graveyard = Graveyard::new(all.clone(), 700, true);
    let inbox = Inbox::from_arc(graveyard.clone());
    let requeued = tokio::time::timeout(TIMEOUT, inbox.redrive_all())
        .await
        .expect("ends")
        .expect("redriven");
    assert_eq!(requeued, 2500);
    assert_eq!(graveyard.redriven(), keys(&all));
}

/// The worker's gauges read the inbox's counts: a store that never gives them must not
/// hold up the worker's end at shutdown.
#[cfg(feature = "metrics")]
#[tokio::test]
async fn a_worker_whose_store_never_gives_its_counts_still_stops_at_shutdown() {
    use authgear_webhook::inbox::{CancellationToken, Delivery, SqliteStore, Worker};
    let dir = TempDir::new("admin-counts-hang");
    let store = SqliteStore::open(dir.path().join("inbox.sqlite3")).expect("open");
    let shutdown = CancellationToken::new();
    let store = Faulty {
        counts_hang: true,
        ..Faulty::new(store)
    };
    let worker = tokio::spawn(Worker::new(Inbox::new(store)).run(
        |_: Delivery| async { Ok::<_, std::convert::Infallible>(()) },
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    tokio::time::timeout(TIMEOUT, worker)
        .await
        .expect("the worker stops")
        .expect("no panic");
}

/// The Prometheus text of `/metrics`: each sample's `name{labels}` and value.
async fn scrape(server: &Server) -> std::collections::HashMap<String, f64> {
    let url = server.admin_url("/metrics");
    let request = Request::get(url)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = tokio::time::timeout(TIMEOUT, crate::common::client(false).request(request))
        .await
        .expect("answered in time")
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = std::str::from_utf8(&text).expect("utf-8");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (sample, value) = line.rsplit_once(' ').expect("a sample");
            (sample.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Scrapes until every `(sample, value)` of `expected` is there; the last scrape. Fails
/// after `TIMEOUT`, showing what differs.
async fn metrics_become(
    server: &Server,
    expected: &[(&str, f64)],
) -> std::collections::HashMap<String, f64> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let samples = scrape(server).await;
        let differ: Vec<_> = expected
            .iter()
            .filter(|(sample, value)| samples.get(*sample) != Some(value))
            .map(|(sample, value)| format!("{sample}: {:?}, not {value}", samples.get(*sample)))
            .collect();
        if differ.is_empty() {
            return samples;
        }
        assert!(Instant::now() < deadline, "{differ:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_scraped_from_the_running_example_match_what_was_sent() {
    let dir = TempDir::new("admin-metrics");
    let file = dir.path().join("inbox.sqlite3");
    let inbox = file.to_str().expect("utf-8");
    let mut server = Server::start(
        "axum_server",
        &[
            ("AUTHGEAR_WEBHOOK_INBOX", inbox),
            ("ADMIN_ADDR", "127.0.0.1:0"),
            ("FAIL_EVENT_TYPES", "user.disabled"),
            ("AUTHGEAR_WEBHOOK_MAX_ATTEMPTS", "2"),
        ],
    );
    // Valid: two handled, one failing until it is a dead letter (after its retry).
    for id in ["metrics-1", "metrics-2"] {
        assert_eq!(deliver(&server, "user.created", id).await, StatusCode::OK);
    }
    assert_eq!(
        deliver(&server, "user.disabled", "metrics-dead").await,
        StatusCode::OK
    );
    // Repeated: the same body again gets the first answer, the handler does not run.
    let fixture = std::fs::read("tests/fixtures/events/user.created.json").expect("fixture");
    let mut event: Value = serde_json::from_slice(&fixture).expect("json");
    event["context"]["timestamp"] = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .into();
    event["id"] = "metrics-repeated".into();
    let body = serde_json::to_vec(&event).expect("json");
    for _ in 0..2 {
        let (status, _, _) = server.post(&body, Some(sign(SECRET, &body))).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Forged, unsigned, oversized.
    let (status, _, _) = server
        .post(&body, Some(sign("not-the-secret", &body)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = server.post(&body, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Oversized: 2 MiB declared, refused on the head (a client still writing the body may
    // see the connection closed under it, so none is sent).
    let mut raw = crate::common::wire::Raw::connect(
        server
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("an address"),
    )
    .await;
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{}: {}\r\n\r\n",
        2 * 1024 * 1024,
        authgear_webhook::SIGNATURE_HEADER,
        sign(SECRET, b"")
    );
    raw.send(head.as_bytes()).await.expect("sent");
    let refused = raw.response().await.expect("an answer");
    assert_eq!(refused.status, 413);
    wait_failed(&server, "user.disabled", "metrics-dead", 2);

    let refused = "authgear_webhook_deliveries_refused_total";
    let samples = metrics_become(
        &server,
        &[
            (&format!(r#"{refused}{{reason="invalid_signature"}}"#), 1.0),
            (&format!(r#"{refused}{{reason="missing_signature"}}"#), 1.0),
            (&format!(r#"{refused}{{reason="body_too_large"}}"#), 1.0),
            // metrics-1, metrics-2, metrics-dead, metrics-repeated twice.
            ("authgear_webhook_deliveries_verified_total", 5.0),
            ("authgear_webhook_deliveries_accepted_total", 5.0),
            ("authgear_webhook_replay_repeated_total", 1.0),
            (
                r#"authgear_webhook_inbox_deliveries_total{outcome="stored"}"#,
                4.0,
            ),
            ("authgear_webhook_inbox_store_seconds_count", 4.0),
            (
                r#"authgear_webhook_worker_handled_total{event_type="user.created"}"#,
                3.0,
            ),
            (
                r#"authgear_webhook_worker_handler_seconds_count{event_type="user.created"}"#,
                3.0,
            ),
            (
                r#"authgear_webhook_worker_retried_total{event_type="user.disabled"}"#,
                1.0,
            ),
            (
                r#"authgear_webhook_worker_dead_lettered_total{event_type="user.disabled"}"#,
                1.0,
            ),
            ("authgear_webhook_inbox_queued", 0.0),
            ("authgear_webhook_inbox_dead", 1.0),
            ("authgear_webhook_worker_in_flight", 0.0),
        ],
    )
    .await;
    // Nothing else was refused, nor handled.
    let others: Vec<_> = samples
        .iter()
        .filter(|(sample, value)| {
            (sample.starts_with(refused)
                && !sample.contains("_signature")
                && !sample.contains("too_large"))
                || (sample.starts_with("authgear_webhook_worker_handled_total")
                    && !sample.contains("user.created")
                    && **value != 0.0)
        })
        .collect();
    assert!(others.is_empty(), "{others:?}");
    assert_eq!(server.terminate().code(), Some(0));

    // The same file without the failing handler: the dead letter re-driven and handled,
    // and every gauge back to 0.
    let server = Server::start(
        "axum_server",
        &[
            ("AUTHGEAR_WEBHOOK_INBOX", inbox),
            ("ADMIN_ADDR", "127.0.0.1:0"),
        ],
    );
    metrics_become(&server, &[("authgear_webhook_inbox_dead", 1.0)]).await;
    let (status, _) = post_admin(&server, "/inbox/dead/metrics-dead/redrive").await;
    assert_eq!(status, StatusCode::OK);
    metrics_become(
        &server,
        &[
            ("authgear_webhook_inbox_redriven_total", 1.0),
            (
                r#"authgear_webhook_worker_handled_total{event_type="user.disabled"}"#,
                1.0,
            ),
            ("authgear_webhook_inbox_queued", 0.0),
            ("authgear_webhook_inbox_dead", 0.0),
            ("authgear_webhook_worker_in_flight", 0.0),
        ],
    )
    .await;
    assert_eq!(server.handled_ids("user.disabled"), ["metrics-dead"]);
}
