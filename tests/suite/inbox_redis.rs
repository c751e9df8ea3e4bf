//! The inbox's Redis store on real `redis-server` processes (AOF on, `appendfsync always`,
//! in a temp dir): the store contract, two instances sharing one queue, a dead instance's
//! claims taken over, faults (down, read-only, cannot persist, full) and a Redis restart;
//! then the example server, two processes on one Redis, one of them killed.
#![cfg(all(feature = "inbox", feature = "redis"))]

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use crate::common::{RedisServer, SECRET, TIMEOUT, example::Server};
use crate::inbox::{store_contract, worker_batch_contract};
use authgear_webhook::inbox::{
    EventKey, Failure, NewEvent, RedisStore, Store, StoreErrorKind, Stored,
};
use bytes::Bytes;

/// A `redis-server` with the durable settings the store's docs ask for (`appendonly yes`,
/// `appendfsync always`), its files in a temp dir; killed on drop.
async fn durable_redis() -> Option<RedisServer> {
    RedisServer::builder().durable().start().await
}

/// A store on `redis` with the default settings but a 5 s timeout: the machine running the
/// tests may be busy (a refused connection still fails at once).
fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .timeout(Duration::from_secs(5))
        .open(redis.url.as_str())
        .expect("url")
}

fn new_event(id: &str) -> NewEvent {
    new_event_on("/", id)
}

fn new_event_on(endpoint: &str, id: &str) -> NewEvent {
    NewEvent {
        key: EventKey::new(endpoint, id),
        event_type: "user.created".into(),
        body: Bytes::from(format!(
            r#"{{"id":"{id}","seq":1,"type":"user.created","payload":{{}},"context":{{"timestamp":0}}}}"#
        )),
    }
}

/// Runs `call` until it returns `Ok`; fails the test after `TIMEOUT`.
async fn until_ok<T, E: std::fmt::Debug, Fut>(what: &str, mut call: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) => {
                assert!(Instant::now() < deadline, "{what}: {error:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The store contract: the one `crate::inbox::store_contract` the SQLite store runs.

#[tokio::test]
async fn redis_store_keeps_the_contract() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    store_contract(Arc::new(store(&redis))).await;
}

#[tokio::test]
async fn redis_worker_claims_and_acks_in_batches() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    worker_batch_contract(Arc::new(store(&redis))).await;
}

#[tokio::test]
async fn dead_letters_are_listed_in_key_order_page_by_page() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    // Endpoint first, then id, as bytes: "/a" < "/a/b" < "/b".
    let keys = [("/b", "1"), ("/a/b", "0"), ("/a", "2"), ("/a", "10")];
    for (endpoint, id) in keys {
        store
            .store(new_event_on(endpoint, id))
            .await
            .expect("store");
    }
    for claim in store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim")
    {
        assert!(store.fail(&claim, Failure::Dead, "x").await.expect("dead"));
    }
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.dead(after, 3).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        listed.extend(page.into_iter().map(|dead| dead.key));
    }
    let expected: Vec<EventKey> = [("/a", "10"), ("/a", "2"), ("/a/b", "0"), ("/b", "1")]
        .iter()
        .map(|(endpoint, id)| EventKey::new(*endpoint, *id))
        .collect();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn two_instances_share_one_queue_and_take_over_a_dead_one_s_claims() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    // Consumers idle for 100 ms with nothing pending are leftovers (default 10 minutes).
    let open = || {
        RedisStore::builder()
            .idle_consumers(Duration::from_millis(100))
            .timeout(Duration::from_secs(5))
            .open(redis.url.as_str())
            .expect("url")
    };
    let (a, b) = (open(), open());
    assert_ne!(a.consumer(), b.consumer());
    const N: usize = 200;
    for n in 0..N {
        let store = if n % 2 == 0 { &a } else { &b };
        let stored = store
            .store(new_event(&format!("e{n}")))
            .await
            .expect("store");
        assert_eq!(stored, Stored::Stored);
    }
    // Both claim at the same time, in small batches: every event goes to exactly one.
    let long = Duration::from_secs(60);
    let drain = |store: RedisStore| async move {
        let mut ids = Vec::new();
        loop {
            let batch = store.claim(7, long).await.expect("claim");
            if batch.is_empty() {
                return ids;
            }
            for claim in batch {
                assert_eq!(claim.attempt, 1);
                assert!(store.ack(&claim).await.expect("ack"));
                ids.push(claim.key.id);
            }
        }
    };
    let (from_a, from_b) = tokio::join!(drain(a.clone()), drain(b.clone()));
    let all: HashSet<&String> = from_a.iter().chain(&from_b).collect();
    assert_eq!(from_a.len() + from_b.len(), N, "each claimed once");
    assert_eq!(all.len(), N);
    eprintln!("a took {}, b took {}", from_a.len(), from_b.len());

    // A live instance keeps its claim by extending it: nobody else gets it.
    a.store(new_event("slow")).await.expect("store");
    let short = Duration::from_millis(300);
    let slow = a.claim(1, short).await.expect("claim").pop().expect("slow");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a.extend(&slow, short).await.expect("extend"));
        assert!(b.claim(10, long).await.expect("claim").is_empty());
    }
    assert!(a.ack(&slow).await.expect("ack"));

    // An instance that dies holding claims: the other takes them over once they expire,
    // as the next attempt, with the exact bytes.
    let dying = open();
    for n in 0..3 {
        dying
            .store(new_event(&format!("orphan{n}")))
            .await
            .expect("store");
    }
    let orphans = dying.claim(10, short).await.expect("claim");
    assert_eq!(orphans.len(), 3);
    let dying_name = dying.consumer().to_owned();
    drop(dying);
    assert!(
        b.claim(10, long).await.expect("claim").is_empty(),
        "not yet"
    );
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    let taken = b.claim(10, long).await.expect("claim");
    let mut ids: Vec<&str> = taken.iter().map(|c| c.key.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["orphan0", "orphan1", "orphan2"]);
    assert!(taken.iter().all(|c| c.attempt == 2));
    assert_eq!(taken[0].body, new_event(&taken[0].key.id).body);
    for claim in &taken {
        assert!(b.ack(claim).await.expect("ack"));
    }
    // The dead instance's consumer, with nothing pending any more, is removed.
    let cleaner = open();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(cleaner.claim(1, long).await.expect("claim").is_empty());
    let consumers = redis.cli(&[
        "XINFO",
        "CONSUMERS",
        "{authgear-webhook:inbox}:v2:stream",
        "workers",
    ]);
    let groups = redis.cli(&["XINFO", "GROUPS", "{authgear-webhook:inbox}:v2:stream"]);
    assert!(groups.contains("workers"), "the queue's key: {groups}");
    assert!(!consumers.contains(&dying_name), "{consumers}");
    let counts = b.counts().await.expect("counts");
    assert_eq!(
        (counts.queued, counts.in_flight, counts.done),
        (0, 0, N as u64 + 4)
    );
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_when_redis_is_killed_and_restarted() {
    let Some(mut redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    const N: usize = 300;
    // Concurrent stores; SIGKILL Redis right after the last one is acknowledged.
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..N {
        let store = store.clone();
        sends.spawn(async move { store.store(new_event(&format!("r{n}"))).await });
    }
    let mut acknowledged = 0;
    while let Some(sent) = sends.join_next().await {
        assert_eq!(sent.expect("ran").expect("stored"), Stored::Stored);
        acknowledged += 1;
    }
    let claimed = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 10);
    redis.kill();
    let down = store.counts().await;
    assert_eq!(
        down.expect_err("Redis is down").kind(),
        StoreErrorKind::Unavailable
    );
    redis.restart().await;

    // The same handle works again once the connection is remade.
    let counts = until_ok("counts after restart", || store.counts()).await;
    assert_eq!(
        (counts.queued, counts.in_flight),
        (acknowledged as u64 - 10, 10)
    );
    // Every acknowledged event is still there, once; the claims too (not handed out again).
    let mut seen = HashSet::new();
    loop {
        let batch = store
            .claim(100, Duration::from_secs(60))
            .await
            .expect("claim");
        if batch.is_empty() {
            break;
        }
        for claim in batch {
            assert_eq!(claim.attempt, 1);
            assert!(seen.insert(claim.key.id));
        }
    }
    assert_eq!(seen.len(), N - 10);
    for claim in &claimed {
        assert!(!seen.contains(&claim.key.id));
        assert!(store.ack(claim).await.expect("ack"), "{}", claim.key.id);
    }
    assert_eq!(
        store.store(new_event("r0")).await.expect("store"),
        Stored::Duplicate
    );
}

#[tokio::test]
async fn events_left_in_the_0_1_0_layout_stop_claims_until_they_are_drained() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    let older = |name: &str| format!("{{authgear-webhook:inbox}}:{name}");
    let long = Duration::from_secs(60);
    assert_eq!(
        store.store(new_event("new")).await.expect("store"),
        Stored::Stored
    );
    // What 0.1.0 may have left: a queued event, a retry, a dead letter.
    for (command, name) in [("XADD", "stream"), ("ZADD", "retry"), ("ZADD", "dead")] {
        let key = older(name);
        let args = match command {
            "XADD" => vec![command, &key, "*", "k", "old"],
            _ => vec![command, &key, "0", "old"],
        };
        redis.cli(&args);
        let error = store.claim(10, long).await.expect_err("older events");
        assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{name}");
        assert!(error.to_string().contains("0.1.0"), "{error}");
        redis.cli(&["DEL", &key]);
    }
    // Drained: claims go on, and this layout never wrote 0.1.0's keys.
    let claimed = store.claim(10, long).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    for name in ["stream", "retry", "dead"] {
        assert_eq!(redis.cli(&["EXISTS", &older(name)]), "0", "{name}");
    }
}

#[tokio::test]
async fn faults_are_store_errors_and_the_store_recovers() {
    let Some(mut redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    assert_eq!(
        store.store(new_event("before")).await.expect("store"),
        Stored::Stored
    );

    // Down: an error, quickly (bounded by the one-second timeouts), then back.
    redis.kill();
    let started = Instant::now();
    let error = store.store(new_event("down")).await.expect_err("down");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert!(started.elapsed() < TIMEOUT, "bounded");
    redis.restart().await;
    let stored = until_ok("store after restart", || store.store(new_event("down"))).await;
    assert_eq!(stored, Stored::Stored);

    // Read-only (a replica): -READONLY.
    assert_eq!(redis.cli(&["REPLICAOF", "127.0.0.1", "1"]), "OK");
    let error = store
        .store(new_event("readonly"))
        .await
        .expect_err("read-only");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert_eq!(error.to_string(), "Redis is read-only");
    // Reading still works.
    assert_eq!(store.counts().await.expect("counts").queued, 2);
    assert_eq!(redis.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
    let stored = until_ok("store as primary", || store.store(new_event("readonly"))).await;
    assert_eq!(stored, Stored::Stored);

    // Cannot persist (-MISCONF): a snapshot fails (its directory is gone) and Redis refuses
    // writes, as it does when the disk is full.
    let gone = redis.dir().join("gone");
    std::fs::create_dir_all(&gone).expect("dir");
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "dir", gone.to_str().expect("utf-8")]),
        "OK"
    );
    std::fs::remove_dir_all(&gone).expect("removed");
    assert_eq!(redis.cli(&["CONFIG", "SET", "save", "3600 1"]), "OK");
    redis.cli(&["BGSAVE"]);
    let deadline = Instant::now() + TIMEOUT;
    while !redis
        .cli(&["INFO", "persistence"])
        .contains("rdb_last_bgsave_status:err")
    {
        assert!(Instant::now() < deadline, "the snapshot fails");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = store
        .store(new_event("misconf"))
        .await
        .expect_err("misconf");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert_eq!(error.to_string(), "Redis cannot persist writes");
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "dir", redis.dir().to_str().expect("utf-8")]),
        "OK"
    );
    redis.cli(&["BGSAVE"]);
    let stored = until_ok("store after a good snapshot", || {
        store.store(new_event("misconf"))
    })
    .await;
    assert_eq!(stored, Stored::Stored);

    // Full: over the store's bound (and Redis's maxmemory: -OOM).
    let small = RedisStore::builder()
        .prefix("small")
        .max_size(2_000)
        .timeout(Duration::from_secs(5))
        .open(redis.url.as_str())
        .expect("url");
    let mut stored = 0;
    let error = loop {
        match small.store(new_event(&format!("f{stored}"))).await {
            Ok(_) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 100, "never full");
    };
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert!(stored > 0);
    // Handling and pruning make room again.
    let claims = small
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim");
    for claim in &claims {
        assert!(small.ack(claim).await.expect("ack"));
    }
    let later = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(small.prune(later, 100).await.expect("prune"), stored as u64);
    assert_eq!(
        small.store(new_event("room")).await.expect("store"),
        Stored::Stored
    );
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "1"]), "OK");
    let error = store.store(new_event("oom")).await.expect_err("oom");
    assert_eq!(error.kind(), StoreErrorKind::Full);
    // Acks still work when Redis is out of memory.
    let claim = store
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim")
        .pop()
        .expect("one");
    assert!(store.ack(&claim).await.expect("ack"));
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
}

// ---------------------------------------------------------------------------------------
// The example server as real processes sharing one Redis.

/// A realistic `user.created` delivery with `id`, stamped now.
fn delivery(id: &str) -> Vec<u8> {
    let fixture = std::fs::read("tests/fixtures/events/user.created.json").expect("fixture");
    let mut event: serde_json::Value = serde_json::from_slice(&fixture).expect("json");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    event["context"]["timestamp"] = now.into();
    event["id"] = id.into();
    serde_json::to_vec(&event).expect("json")
}

/// Posts `id`'s delivery to `url`; the status, or `None` if the connection failed (the
/// server was killed).
async fn post(url: &str, id: &str) -> Option<http::StatusCode> {
    use authgear_webhook::{SIGNATURE_HEADER, sign};
    let body = delivery(id);
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
fn start_example(redis_url: &str, claim_ms: u64) -> Server {
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
        sends.spawn(async move { (post(&url, &id).await, id) });
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
        start_example(&redis.url, 30_000),
        start_example(&redis.url, 30_000),
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
        start_example(&redis.url, 500),
        start_example(&redis.url, 500),
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
    let pending = redis.cli(&["XPENDING", "{authgear-webhook:inbox}:stream", "workers"]);
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
    let server = start_example(&redis.url, 3_000);
    let urls = [server.url()];
    let first = ids("before", 150);
    let mut acknowledged = send_all(&urls, &first).await;
    assert_eq!(acknowledged.len(), first.len());
    // SIGKILL Redis while the worker is still handling them, restart it on the same AOF.
    redis.kill();
    for id in ids("down", 5) {
        assert_eq!(
            post(&server.url(), &id).await,
            Some(http::StatusCode::SERVICE_UNAVAILABLE),
            "Redis down: 503, never 200"
        );
    }
    redis.restart().await;
    // The server recovers: new deliveries are stored again.
    let after = ids("after", 50);
    let deadline = Instant::now() + TIMEOUT;
    for id in &after {
        while post(&server.url(), id).await != Some(http::StatusCode::OK) {
            assert!(Instant::now() < deadline, "recovers");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acknowledged.insert(id.clone());
    }
    wait_handled(&[&server], &HashMap::new(), &acknowledged).await;
}

#[tokio::test]
async fn a_token_that_is_not_this_store_s_is_refused_not_an_error() {
    let Some(redis) = durable_redis().await else {
        return;
    };
    let store = store(&redis);
    for id in ["good", "bad"] {
        store.store(new_event(id)).await.expect("store");
    }
    let long = Duration::from_secs(60);
    let mut claims = store.claim(10, long).await.expect("claim");
    claims.sort_by(|a, b| b.key.id.cmp(&a.key.id));
    assert_eq!(claims[1].key.id, "bad");
    // Tokens that look like this store's ("<entry>:<deliveries>") but name no stream
    // entry: each call answers `false` as for any claim it does not hold, and the other
    // acks of the batch are not lost with it.
    for token in ["x:1", "1-x:1", ":1", "1-2-3:1"] {
        let mut bad = claims[1].clone();
        bad.token = token.into();
        assert!(!store.extend(&bad, long).await.expect("extend"), "{token}");
        assert!(
            !store.fail(&bad, Failure::Dead, "x").await.expect("fail"),
            "{token}"
        );
        assert!(!store.release(&bad).await.expect("release"), "{token}");
        assert!(!store.ack(&bad).await.expect("ack"), "{token}");
    }
    let mut bad = claims[1].clone();
    bad.token = "x:1".into();
    assert_eq!(
        store
            .ack_many(&[bad, claims[0].clone()])
            .await
            .expect("ack many"),
        [false, true]
    );
    assert!(store.ack(&claims[1]).await.expect("ack"));
}
