//! The catch-up over a long outage's worth of audit log that the inbox already holds: how
//! long one pass takes, how many Admin API requests it makes, and where the time goes.
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench catch_up
//! CATCH_UP_EVENTS=20000 CATCH_UP_PER_SECOND=50 cargo bench -p authgear-webhook-benches --bench catch_up
//! ```
//!
//! One process: an Admin API stand-in on 127.0.0.1 (axum; Authgear's paging: `created_at`
//! order only, entries sharing a second shuffled for each request, offset cursors, pages of
//! 100, `totalCount`; no token check) logging `CATCH_UP_EVENTS` (100,000) `user.created`
//! events, `CATCH_UP_PER_SECOND` (20) per second, each the 1.4 KiB example delivery with its
//! own id; a SQLite inbox (in `CATCH_UP_DIR`, default the temp dir) that already holds every
//! one of them (stored first, 64 at a time); then one `CatchUp::pass` from before the first
//! event, timed. Everything runs on a two-thread runtime: the stand-in's JSON, the client's
//! parsing and the store share the two cores.

use std::{
    env,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use authgear_webhook::{
    catch_up::{AdminApi, AdminApiKey, CatchUp},
    inbox::{EventKey, Inbox, NewEvent, SqliteStore, StoreError, Stored},
};
use axum::{Json, Router, extract::State, routing::post};
use bytes::Bytes;
use serde_json::{Value, json};

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: nothing then.
    if !env::args().any(|arg| arg == "--bench") {
        return;
    }
    let events: usize = setting("CATCH_UP_EVENTS", 100_000);
    let per_second: usize = setting("CATCH_UP_PER_SECOND", 20).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(events, per_second));
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The log: (second, event), oldest first; the requests served.
struct Log {
    entries: Vec<(i64, Value)>,
    requests: AtomicUsize,
}

async fn run(events: usize, per_second: usize) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    // Ending ten minutes ago, so the whole outage is behind the overlap.
    let seconds = events.div_ceil(per_second) as i64;
    let first = now - 600 - seconds;
    let template: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("events/user.created.json")).expect("the fixture"),
    )
    .expect("json");
    let entries: Vec<(i64, Value)> = (0..events)
        .map(|n| {
            let second = first + (n / per_second) as i64;
            let mut event = template.clone();
            event["id"] = json!(format!("{:016x}", 0x1000_0000 + n));
            event["context"]["timestamp"] = json!(second);
            (second, event)
        })
        .collect();

    let dir = env::var_os("CATCH_UP_DIR")
        .map_or_else(env::temp_dir, std::path::PathBuf::from)
        .join(format!("catch-up-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3")).expect("open"));

    // The inbox already holds every event (the webhook brought them all).
    let started = Instant::now();
    let store = inbox.store().clone();
    let mut stores: tokio::task::JoinSet<Result<Stored, StoreError>> = tokio::task::JoinSet::new();
    for (_, event) in &entries {
        if stores.len() >= 64 {
            stores
                .join_next()
                .await
                .expect("a store")
                .expect("ran")
                .expect("stored");
        }
        let store = store.clone();
        let new = NewEvent {
            key: EventKey::new("/", event["id"].as_str().expect("id")),
            event_type: "user.created".to_owned(),
            body: Bytes::from(serde_json::to_vec(event).expect("json")),
            recovered: false,
        };
        stores.spawn(async move { store.store(new).await });
    }
    while let Some(stored) = stores.join_next().await {
        stored.expect("ran").expect("stored");
    }
    println!(
        "inbox filled with {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let log = Arc::new(Log {
        entries,
        requests: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/_api/admin/graphql", post(audit_logs))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let key = AdminApiKey::from_pem(
        &std::fs::read(fixtures().join("admin-api/key.pem")).expect("the test key"),
        "bench",
    )
    .expect("a key");
    let api =
        AdminApi::new(&format!("http://{addr}/_api/admin/graphql"), "bench", key).expect("an API");
    let catch_up = CatchUp::new(&inbox, api, "/")
        .first_start(UNIX_EPOCH + Duration::from_secs((first - 1) as u64));
    let started = Instant::now();
    let pass = catch_up.pass().await.expect("a pass");
    let elapsed = started.elapsed();
    let requests = log.requests.load(Ordering::SeqCst);
    println!(
        "catch-up pass over {events} held events ({per_second}/s, {seconds} s of log): {:.1} s, \
         {requests} Admin API requests ({:.2} per page of 100), read {}, stored {}",
        elapsed.as_secs_f64(),
        requests as f64 / events.div_ceil(100) as f64,
        pass.read,
        pass.recovered,
    );
    assert_eq!(pass.read, events as u64, "every entry read");
    assert_eq!(pass.recovered, 0, "the inbox held them all");
    let _ = std::fs::remove_dir_all(&dir);
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Authgear's `auditLogs`, as `tests/common/admin_api.rs` serves it (ties shuffled per
/// request, the activity-type filter), without the token check.
async fn audit_logs(State(log): State<Arc<Log>>, Json(request): Json<Value>) -> Json<Value> {
    log.requests.fetch_add(1, Ordering::SeqCst);
    let variables = &request["variables"];
    let second = |name: &str| variables[name].as_str().map_or(0, seconds);
    let (from, to) = (second("rangeFrom"), second("rangeTo"));
    let first = variables["first"]
        .as_u64()
        .map_or(100, |first| first.min(100)) as usize;
    let offset = variables["after"]
        .as_str()
        .and_then(|cursor| cursor.strip_prefix("offset:"))
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(0, |n| n + 1);
    // The entries are in time order: the window is a slice.
    let start = log.entries.partition_point(|(s, _)| *s < from);
    let end = log.entries.partition_point(|(s, _)| *s < to);
    // Every entry is a `user.created`: none for the other types.
    let created = variables["activityTypes"]
        .as_array()
        .is_none_or(|types| types.iter().any(|t| t == "USER_CREATED"));
    let end = if created { end } else { start };
    let mut rows: Vec<&(i64, Value)> = log.entries[start..end].iter().collect();
    fastrand::shuffle(&mut rows);
    rows.sort_by_key(|(s, _)| *s);
    let total = rows.len();
    let page: Vec<&&(i64, Value)> = rows.iter().skip(offset).take(first).collect();
    let edges: Vec<Value> = page
        .iter()
        .map(|(_, event)| json!({"node": {"activityType": "USER_CREATED", "data": event}}))
        .collect();
    // A readable cursor: the client only hands it back.
    let end_cursor = match page.len() {
        0 => String::new(),
        n => format!("offset:{}", offset + n - 1),
    };
    Json(json!({
        "data": {"auditLogs": {
            "totalCount": total,
            "pageInfo": {"hasNextPage": page.len() == first, "endCursor": end_cursor},
            "edges": edges,
        }}
    }))
}

/// `2025-01-02T03:04:05Z` to seconds since the epoch.
fn seconds(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> i64 { text[range].parse().expect("a number") };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + hour * 3600 + minute * 60 + second
}
