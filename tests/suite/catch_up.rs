//! The catch-up against a stand-in for Authgear's Admin API (`tests/common/admin_api.rs`,
//! over HTTP): every logged event stored once, hundreds within one second included, whatever
//! order Authgear gives entries that share a second; an event that came both ways stored
//! once; the token Authgear expects, and a clear error for a wrong key or app ID; faults
//! retried with the checkpoint where the last full read left it; one pass at a time on a
//! shared store; recovered events handed to the handler, marked; a backfill over a range
//! given by hand, and its dry run.

#[path = "../common/admin_api.rs"]
pub(crate) mod stand_in;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use self::stand_in::{APP_ID, AdminApiStandIn, Fault, KEY_ID, event};
use crate::common::{TIMEOUT, TempDir, example::Server, fixture};
use authgear_webhook::{
    catch_up::{AdminApi, AdminApiKey, CatchUp, CatchUpErrorKind},
    inbox::{CancellationToken, Delivery, EventKey, Inbox, NewEvent, SqliteStore, Stored, Worker},
};
use bytes::Bytes;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn api(stand_in: &AdminApiStandIn) -> AdminApi {
    let key = AdminApiKey::from_pem(&fixture("admin-api/key.pem"), KEY_ID).expect("a key");
    AdminApi::new(&stand_in.url, APP_ID, key)
        .expect("an API")
        .timeout(Duration::from_secs(2))
}

fn sqlite_inbox(dir: &TempDir) -> Inbox {
    Inbox::new(SqliteStore::open(dir.path().join("inbox.sqlite3")).expect("open"))
}

/// The ids of the stored events, from a worker that hands them all over once.
async fn handed_over(inbox: &Inbox, expected: usize) -> Vec<Delivery> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(inbox.clone()).run(
        {
            let seen = seen.clone();
            move |delivery: Delivery| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("seen").push(delivery);
                    Ok::<_, std::io::Error>(())
                }
            }
        },
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while seen.lock().expect("seen").len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "handed over in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await.expect("worker");
    seen.lock().expect("seen").clone()
}

#[tokio::test]
async fn every_logged_event_is_stored_once_even_hundreds_within_one_second() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-ties");
    let inbox = sqlite_inbox(&dir);
    let second = now() - 120;
    let mut seq = 0;
    let mut logged = HashSet::new();
    let mut log = |event_type: &str, timestamp: i64| {
        seq += 1;
        let event = event(seq, event_type, timestamp);
        logged.insert(event["id"].as_str().expect("id").to_owned());
        stand_in.log(event);
    };
    // Spread over the last minutes, then 350 `user.created` and 150 `identity.email.added`
    // in one second, and 120 more in the next: pages split those seconds.
    for i in 0..30 {
        log("user.authenticated", second - 500 + i * 13);
    }
    for _ in 0..350 {
        log("user.created", second);
    }
    for _ in 0..150 {
        log("identity.email.added", second);
    }
    for _ in 0..120 {
        log("user.created", second + 1);
    }
    // A blocking-type entry and a type the endpoint does not take are never asked for.
    log("user.deleted", second + 2);

    let catch_up = CatchUp::new(&inbox, api(&stand_in), "/")
        .event_types(["user.created", "user.authenticated", "identity.email.added"])
        .first_start(UNIX_EPOCH + Duration::from_secs((second - 600) as u64));
    let pass = catch_up.pass().await.expect("a pass");
    assert!(!pass.skipped);
    assert_eq!(pass.recovered, 650, "{pass:?}");
    assert_eq!(pass.read, 650);
    assert_eq!(inbox.counts().await.expect("counts").queued, 650);

    // The next pass reads from the checkpoint again (the overlap): nothing new.
    let again = catch_up.pass().await.expect("a pass");
    assert_eq!(again.recovered, 0, "{again:?}");

    let delivered = handed_over(&inbox, 650).await;
    let ids: HashSet<String> = delivered.iter().map(|d| d.event.id.clone()).collect();
    assert_eq!(ids.len(), 650, "each once");
    assert!(ids.is_subset(&logged));
    assert!(delivered.iter().all(|delivery| delivery.recovered));
    assert!(delivered.iter().all(|delivery| delivery.endpoint == "/"));
    let created = delivered
        .iter()
        .filter(|d| d.event.event_type() == "user.created")
        .count();
    assert_eq!(created, 470);
}

/// `CatchUp::backfill` over a range a year back (beyond any retention), holding more entries
/// than one read takes at once: a dry run lists exactly what the inbox is missing and
/// stores nothing; a run stores those, once; neither reads nor moves the checkpoint.
#[tokio::test]
async fn a_backfill_reads_its_range_whole_and_a_dry_run_only_lists_it() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-backfill");
    let inbox = sqlite_inbox(&dir);
    let start = now() - 365 * 24 * 3600;
    // 5,100 entries (more than the 5,000 one read holds), two a second, over 45 minutes.
    let events: Vec<_> = (0..5_100)
        .map(|seq| event(seq, "user.created", start + seq as i64 / 2))
        .collect();
    for event in &events {
        stand_in.log(event.clone());
    }
    let id = |event: &serde_json::Value| event["id"].as_str().expect("id").to_owned();
    // The webhook brought the first hundred.
    for event in &events[..100] {
        let stored = inbox
            .store()
            .store(NewEvent {
                key: EventKey::new("/", id(event)),
                event_type: "user.created".to_owned(),
                body: Bytes::from(serde_json::to_vec(event).expect("json")),
                recovered: false,
            })
            .await
            .expect("store");
        assert_eq!(stored, Stored::Stored);
    }
    let at = |seconds: i64| UNIX_EPOCH + Duration::from_secs(seconds as u64);
    let (from, to) = (at(start), at(start + 3600));
    let catch_up = CatchUp::new(&inbox, api(&stand_in), "/");

    let dry = catch_up.backfill(from, to, true).await.expect("a dry run");
    assert_eq!((dry.read, dry.recovered), (5_100, 0));
    let missing: Vec<String> = dry.missing.iter().map(|event| event.id.clone()).collect();
    let expected: Vec<String> = events[100..].iter().map(id).collect();
    assert_eq!(missing, expected, "oldest first, each once");
    assert_eq!(inbox.counts().await.expect("counts").queued, 100);

    let run = catch_up.backfill(from, to, false).await.expect("a run");
    assert_eq!(
        (run.read, run.recovered, run.missing.len()),
        (5_100, 5_000, 0)
    );
    assert_eq!(inbox.counts().await.expect("counts").queued, 5_100);
    let again = catch_up.backfill(from, to, false).await.expect("a run");
    assert_eq!(again.recovered, 0);
    // Half the range: half the entries.
    let half = catch_up
        .backfill(from, at(start + 1_275), true)
        .await
        .expect("a dry run");
    assert_eq!((half.read, half.missing.len()), (2_550, 0));

    assert_eq!(
        inbox
            .store()
            .checkpoint("catch-up /")
            .await
            .expect("checkpoint"),
        None,
        "a backfill leaves the checkpoint alone"
    );
}

#[tokio::test]
async fn an_event_the_webhook_brought_is_not_stored_again() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-both-ways");
    let inbox = sqlite_inbox(&dir);
    let t = now() - 60;
    let (delivered, missed) = (event(1, "user.created", t), event(2, "user.created", t));
    stand_in.log(delivered.clone());
    stand_in.log(missed.clone());
    // The webhook brought the first one (the layer stores it under the request's path).
    let stored = inbox
        .store()
        .store(NewEvent {
            key: EventKey::new("/hooks/authgear", delivered["id"].as_str().expect("id")),
            event_type: "user.created".to_owned(),
            body: Bytes::from(serde_json::to_vec(&delivered).expect("json")),
            recovered: false,
        })
        .await
        .expect("store");
    assert_eq!(stored, Stored::Stored);

    let pass = CatchUp::new(&inbox, api(&stand_in), "/hooks/authgear")
        .pass()
        .await
        .expect("a pass");
    assert_eq!((pass.read, pass.recovered), (2, 1));
    let handed = handed_over(&inbox, 2).await;
    let recovered: Vec<_> = handed
        .iter()
        .map(|d| (d.event.id.clone(), d.recovered))
        .collect();
    assert!(recovered.contains(&(delivered["id"].as_str().expect("id").to_owned(), false)));
    assert!(recovered.contains(&(missed["id"].as_str().expect("id").to_owned(), true)));
}

#[tokio::test]
async fn the_token_is_the_one_authgear_expects_and_a_wrong_one_is_a_clear_error() {
    let stand_in = AdminApiStandIn::start().await;
    api(&stand_in)
        .check()
        .await
        .expect("the key, its ID and the app ID");
    // The same key as PKCS#8.
    let pkcs8 = AdminApiKey::from_pem(&fixture("admin-api/key-pkcs8.pem"), KEY_ID).expect("key");
    let pkcs8 = AdminApi::new(&stand_in.url, APP_ID, pkcs8).expect("api");
    pkcs8.check().await.expect("PKCS#8");
    assert_eq!(stand_in.refused(), 0);

    let other = AdminApiKey::from_pem(&fixture("admin-api/other-key.pem"), KEY_ID).expect("key");
    let right = || AdminApiKey::from_pem(&fixture("admin-api/key.pem"), KEY_ID).expect("key");
    let wrong_id = AdminApiKey::from_pem(&fixture("admin-api/key.pem"), "another-id").expect("key");
    for (api, what) in [
        (AdminApi::new(&stand_in.url, APP_ID, other), "another key"),
        (
            AdminApi::new(&stand_in.url, APP_ID, wrong_id),
            "another key ID",
        ),
        (
            AdminApi::new(&stand_in.url, "another-app", right()),
            "another app",
        ),
    ] {
        let error = api.expect("api").check().await.expect_err(what);
        assert_eq!(error.kind(), CatchUpErrorKind::Refused, "{what}");
        assert_eq!(
            error.to_string(),
            "the Admin API refused the token: check the key, its ID and the app ID"
        );
    }
    assert_eq!(stand_in.refused(), 3);

    // Settings that cannot work fail before any request.
    let config = |error: authgear_webhook::catch_up::CatchUpError| error.kind();
    assert_eq!(
        config(AdminApiKey::from_pem(b"-----BEGIN PUBLIC KEY-----", KEY_ID).expect_err("no key")),
        CatchUpErrorKind::Config
    );
    assert_eq!(
        config(AdminApi::new("not a url", APP_ID, right()).expect_err("no URL")),
        CatchUpErrorKind::Config
    );
    assert_eq!(
        config(AdminApi::new(&stand_in.url, "", right()).expect_err("no app")),
        CatchUpErrorKind::Config
    );
    // Nothing secret in what a log would print.
    let shown = format!("{:?}", api(&stand_in));
    assert!(
        !shown.contains("PRIVATE") && !shown.contains("MII"),
        "{shown}"
    );
}

#[tokio::test]
async fn faults_leave_the_checkpoint_where_everything_was_read() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-faults");
    let inbox = sqlite_inbox(&dir);
    let t = now() - 1200;
    for seq in 0..40 {
        stand_in.log(event(seq, "user.created", t + seq as i64 * 20));
    }
    let catch_up = CatchUp::new(&inbox, api(&stand_in), "/")
        .first_start(UNIX_EPOCH + Duration::from_secs((t - 10) as u64));
    let name = "catch-up /";
    for (fault, kind) in [
        (Fault::Unavailable, CatchUpErrorKind::Unavailable),
        (Fault::TooManyRequests, CatchUpErrorKind::Unavailable),
        (Fault::Failing, CatchUpErrorKind::Unavailable),
        (
            Fault::Slow(Duration::from_secs(3)),
            CatchUpErrorKind::Unavailable,
        ),
        (Fault::Malformed, CatchUpErrorKind::Invalid),
        (Fault::GraphQlErrors, CatchUpErrorKind::Invalid),
    ] {
        stand_in.set_fault(Some(fault));
        let error = catch_up.pass().await.expect_err("a fault");
        assert_eq!(error.kind(), kind, "{fault:?}");
        assert_eq!(
            inbox.store().checkpoint(name).await.expect("read"),
            None,
            "{fault:?}"
        );
        assert_eq!(inbox.counts().await.expect("counts").queued, 0);
    }
    stand_in.set_fault(None);
    let pass = catch_up.pass().await.expect("recovered");
    assert_eq!(pass.recovered, 40);
    let checkpoint = inbox
        .store()
        .checkpoint(name)
        .await
        .expect("read")
        .expect("set");
    // At most the overlap (5 minutes) before now, after the last event read.
    let checkpoint = checkpoint
        .duration_since(UNIX_EPOCH)
        .expect("after")
        .as_secs() as i64;
    assert!(
        checkpoint <= now() - 300 && checkpoint > t + 39 * 20 - 600,
        "{checkpoint}"
    );
}

#[tokio::test]
async fn one_pass_at_a_time_on_a_shared_store() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-lease");
    let inbox = sqlite_inbox(&dir);
    stand_in.log(event(1, "user.created", now() - 30));
    // Another instance holds the lease.
    let store = inbox.store();
    assert!(
        store
            .lease("catch-up /", "other", Duration::from_secs(60))
            .await
            .expect("lease")
    );
    let catch_up = CatchUp::new(&inbox, api(&stand_in), "/");
    let pass = catch_up.pass().await.expect("a pass");
    assert!(pass.skipped);
    assert_eq!(stand_in.requests(), 0, "nothing read");
    store
        .release_lease("catch-up /", "other")
        .await
        .expect("release");
    let pass = catch_up.pass().await.expect("a pass");
    assert_eq!((pass.skipped, pass.recovered), (false, 1));
}

#[tokio::test]
async fn run_recovers_what_the_webhook_missed_within_an_interval_and_survives_a_failing_api() {
    let stand_in = Arc::new(AdminApiStandIn::start().await);
    let dir = TempDir::new("catch-up-run");
    let inbox = sqlite_inbox(&dir);
    let shutdown = CancellationToken::new();
    stand_in.set_fault(Some(Fault::Unavailable));
    let running = tokio::spawn(
        CatchUp::new(&inbox, api(&stand_in), "/")
            .interval(Duration::from_secs(1))
            .run(shutdown.clone()),
    );
    // Logged while the Admin API fails: stored once it answers again.
    stand_in.log(event(7, "user.created", now() - 5));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(inbox.counts().await.expect("counts").queued, 0);
    stand_in.set_fault(None);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while inbox.counts().await.expect("counts").queued < 1 {
        assert!(tokio::time::Instant::now() < deadline, "recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A later event the webhook never brought: within an interval or two.
    stand_in.log(event(8, "user.created", now()));
    while inbox.counts().await.expect("counts").queued < 2 {
        assert!(tokio::time::Instant::now() < deadline, "recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.expect("stops");
}

/// `axum_server` with its inbox in `file` and the catch-up on `stand_in`, every second.
fn start_catching_up(file: &std::path::Path, stand_in: &AdminApiStandIn) -> Server {
    let key_file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admin-api/key.pem");
    let server = Server::start(
        "axum_server",
        &[
            ("AUTHGEAR_WEBHOOK_INBOX", file.to_str().expect("UTF-8")),
            ("AUTHGEAR_ADMIN_API_ENDPOINT", &stand_in.url),
            ("AUTHGEAR_APP_ID", APP_ID),
            (
                "AUTHGEAR_ADMIN_API_KEY_FILE",
                key_file.to_str().expect("UTF-8"),
            ),
            ("AUTHGEAR_ADMIN_API_KEY_ID", KEY_ID),
            ("AUTHGEAR_WEBHOOK_CATCHUP_INTERVAL", "1"),
        ],
    );
    assert!(
        server.startup.contains("catch-up: every 1 s,"),
        "{}",
        server.startup
    );
    server
}

/// Waits until every id of `expected` is in `handled` (the servers' `handled` lines so
/// far); then each id's count.
async fn wait_handled(
    servers: &[&Server],
    expected: &HashSet<String>,
) -> std::collections::HashMap<String, usize> {
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    loop {
        let mut counted = std::collections::HashMap::new();
        for server in servers {
            for id in server.handled_ids("user.created") {
                *counted.entry(id).or_insert(0) += 1;
            }
        }
        if expected.iter().all(|id| counted.contains_key(id)) {
            return counted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} handled",
            expected
                .iter()
                .filter(|id| counted.contains_key(*id))
                .count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Threads of its own for the stand-in: starting a server blocks the test's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_server_handles_the_events_sent_while_it_was_down_once() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-example");
    let file = dir.path().join("inbox.sqlite3");
    let mut first = start_catching_up(&file, &stand_in);

    // Delivered and logged: handled once.
    let both = event(1, "user.created", now());
    stand_in.log(both.clone());
    let body = serde_json::to_vec(&both).expect("json");
    let (status, _, _) = first
        .post(
            &body,
            Some(authgear_webhook::sign(crate::common::SECRET, &body)),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK);
    let both_id = both["id"].as_str().expect("id").to_owned();
    let mut counted = wait_handled(&[&first], &HashSet::from([both_id.clone()])).await;

    // Killed; meanwhile Authgear "sends" 150 events in one second and 20 more (logged only).
    first.kill9();
    let second_of_burst = now();
    let mut missed = HashSet::new();
    for seq in 100..250 {
        let logged = event(seq, "user.created", second_of_burst);
        missed.insert(logged["id"].as_str().expect("id").to_owned());
        stand_in.log(logged);
    }
    for seq in 300..320 {
        let logged = event(seq, "user.created", second_of_burst + 1);
        missed.insert(logged["id"].as_str().expect("id").to_owned());
        stand_in.log(logged);
    }
    let second = start_catching_up(&file, &stand_in);
    let handled = wait_handled(&[&second], &missed).await;
    for (id, n) in handled {
        *counted.entry(id).or_insert(0) += n;
    }
    let twice: Vec<_> = counted.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");

    // The Admin API failing: the webhook still answers 200 at once; the missed event is
    // handled once it answers again.
    stand_in.set_fault(Some(Fault::Unavailable));
    let late = event(400, "user.created", now());
    stand_in.log(late.clone());
    let delivered = event(401, "user.created", now());
    let body = serde_json::to_vec(&delivered).expect("json");
    let (status, _, _) = second
        .post(
            &body,
            Some(authgear_webhook::sign(crate::common::SECRET, &body)),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK);
    stand_in.set_fault(None);
    let ids = [&late, &delivered].map(|e| e["id"].as_str().expect("id").to_owned());
    wait_handled(&[&second], &HashSet::from(ids)).await;
    assert_eq!(stand_in.refused(), 0, "every token accepted");
}

#[tokio::test]
async fn a_pass_costs_one_request_per_page_of_its_window() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-cost");
    let inbox = sqlite_inbox(&dir);
    let start = now() - 280;
    for seq in 0..250 {
        stand_in.log(event(seq, "user.created", start + seq as i64));
    }
    let catch_up = CatchUp::new(&inbox, api(&stand_in), "/");
    assert_eq!(catch_up.pass().await.expect("a pass").recovered, 250);
    // Nothing new: the window's 250 entries again, in pages of 100.
    let before = stand_in.requests();
    let pass = catch_up.pass().await.expect("a pass");
    assert_eq!((pass.read, pass.recovered), (250, 0));
    assert_eq!(stand_in.requests() - before, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_cut_off_holds_the_others_up_for_its_lease_only() {
    let stand_in = AdminApiStandIn::start().await;
    let dir = TempDir::new("catch-up-cut-off");
    let inbox = sqlite_inbox(&dir);
    stand_in.log(event(1, "user.created", now() - 30));
    // An instance whose pass is cut off while the Admin API answers slowly (killed, or its
    // future dropped): its lease stays behind.
    stand_in.set_fault(Some(Fault::Slow(Duration::from_secs(3))));
    let cut_off = CatchUp::new(&inbox, api(&stand_in), "/").interval(Duration::from_secs(1));
    let pass = tokio::time::timeout(Duration::from_millis(500), cut_off.pass()).await;
    assert!(pass.is_err(), "cut off");
    stand_in.set_fault(None);
    // Another instance (or the same one restarted) recovers the event once that lease
    // expires: seconds, not minutes.
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(
        CatchUp::new(&inbox, api(&stand_in), "/")
            .interval(Duration::from_secs(1))
            .run(shutdown.clone()),
    );
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while inbox.counts().await.expect("counts").queued < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "recovered after the lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.expect("stops");
}
