//! `authgear-webhook inbox --admin URL`: the inbox of a running `axum_server` (SQLite, whose
//! file the server holds) through its admin service: counts, dead letters listed as the
//! file itself lists them once the server is stopped, and a dead letter re-driven into a
//! server whose handler then succeeds; `redrive --all` through an admin service whose dead
//! letters die again at once goes through them once and ends.

use std::time::{Duration, Instant};

use authgear_webhook::{admin::AdminService, inbox::Inbox};

#[path = "../../../tests/common/stores.rs"]
mod stores;

use self::stores::Graveyard;
use crate::common::{
    SECRET, TIMEOUT, TempDir,
    example::{self, Output, Server},
};

/// How long one run of the binary may take.
const LIMIT: Duration = Duration::from_secs(40);

fn run(args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_authgear-webhook"));
    command
        .args(args)
        .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
        .env_remove("REDIS_URL");
    example::run(&mut command, LIMIT)
}

fn assert_fails(output: &Output, code: i32, reason: &str) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(reason), "{reason:?} in {output:?}");
}

/// `inbox --admin URL args...` against `server`, which must succeed: its stdout.
fn inbox(server: &Server, args: &[&str]) -> Output {
    let url = server.admin_url("");
    let mut all = vec!["inbox", "--admin", &url];
    all.extend_from_slice(args);
    run(&all)
}

/// `axum_server` on `file`, with an admin listener and `env`.
fn start(file: &str, env: &[(&str, &str)]) -> Server {
    let mut all = vec![
        ("AUTHGEAR_WEBHOOK_INBOX", file),
        ("ADMIN_ADDR", "127.0.0.1:0"),
    ];
    all.extend_from_slice(env);
    let server = Server::start("axum_server", &all);
    assert!(server.admin.is_some(), "{}", server.startup);
    server
}

/// Polls `inbox counts` until `name` is `value`.
fn counts_become(server: &Server, name: &str, value: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let output = inbox(server, &["counts"]);
        assert!(output.status.success(), "{output:?}");
        if output
            .stdout
            .lines()
            .any(|line| line == format!("{name}\t{value}"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never {value}: {output:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn inbox_admin_lists_and_redrives_dead_letters_of_a_running_sqlite_server() {
    let dir = TempDir::new("cli-inbox-admin");
    let file = dir.path().join("inbox.sqlite3");
    let file = file.to_str().expect("utf-8");
    let mut failing = start(
        file,
        &[
            ("FAIL_EVENT_TYPES", "user.created"),
            ("AUTHGEAR_WEBHOOK_MAX_ATTEMPTS", "1"),
        ],
    );
    for id in ["cli-1", "cli-2"] {
        let sent = run(&["send", &failing.url(), "user.created", "--id", id]);
        assert!(sent.status.success(), "{sent:?}");
        assert_eq!(failing.next_line(), format!("200 user.created {id}"));
        assert_eq!(
            failing.next_line(),
            format!("failed user.created {id} (attempt 1)")
        );
    }
    counts_become(&failing, "dead", "2");

    let listed = inbox(&failing, &["dead"]);
    assert!(listed.status.success(), "{listed:?}");
    let rows: Vec<Vec<&str>> = listed
        .stdout
        .lines()
        .map(|line| line.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{listed:?}");
    for (row, id) in rows.iter().zip(["cli-1", "cli-2"]) {
        assert_eq!(row[..4], ["/", id, "user.created", "1"], "{row:?}");
        assert_eq!(row[5], "FAIL_EVENT_TYPES has user.created", "{row:?}");
    }
    let json = inbox(&failing, &["dead", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().expect("a line")).expect("json");
    assert_eq!(first["id"], "cli-1");
    assert_eq!(first["attempts"], 1);
    // Paged as with a store: the next page named on stderr, and --after.
    let page = inbox(&failing, &["dead", "--limit", "1"]);
    assert_eq!(page.stdout.lines().count(), 1, "{page:?}");
    assert!(page.stderr.contains(r#"--after "/" "cli-1""#), "{page:?}");
    let page = inbox(&failing, &["dead", "--after", "/", "cli-1"]);
    assert!(page.stdout.starts_with("/\tcli-2\t"), "{page:?}");
    assert_eq!(page.stdout.lines().count(), 1, "{page:?}");
    // Unknown ones, as with a store.
    assert_fails(
        &inbox(&failing, &["redrive", "nope"]),
        1,
        "no dead letter with id nope",
    );
    assert_fails(
        &inbox(&failing, &["redrive", "--endpoint", "/other", "cli-1"]),
        1,
        "no dead letter cli-1 on endpoint /other",
    );
    assert_fails(
        &inbox(&failing, &["dead", "--limit", "5000"]),
        2,
        "limit: a number from 1 to 1000",
    );

    // The file lists the same once the server has let go of it.
    assert!(failing.terminate().success());
    let from_file = run(&["inbox", "--file", file, "dead"]);
    assert!(from_file.status.success(), "{from_file:?}");
    assert_eq!(from_file.stdout, listed.stdout);

    // A server whose handler succeeds: what is re-driven through it is handled.
    let server = start(file, &[]);
    let redriven = inbox(&server, &["redrive", "cli-1"]);
    assert!(redriven.status.success(), "{redriven:?}");
    assert_eq!(redriven.stdout, "/\tcli-1\n");
    let all = inbox(&server, &["redrive", "--all", "--json"]);
    assert!(all.status.success(), "{all:?}");
    assert_eq!(all.stdout, "{\"endpoint\":\"/\",\"id\":\"cli-2\"}\n");
    let deadline = Instant::now() + TIMEOUT;
    while server.handled_ids("user.created").len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", server.handled());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.handled_ids("user.created"), ["cli-1", "cli-2"]);
    counts_become(&server, "done", "2");
    counts_become(&server, "dead", "0");
}

#[test]
fn inbox_admin_that_does_not_answer_is_one_clear_line() {
    assert_fails(
        &run(&["inbox", "--admin", "ftp://127.0.0.1:1", "counts"]),
        2,
        "not an http:// or https:// URL",
    );
    // A free port: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    assert_fails(
        &run(&["inbox", "--admin", &url, "counts"]),
        2,
        "--admin: no answer from",
    );
    // A user or password in the URL: refused, and not repeated.
    for with_password in [
        format!("http://admin:hunter2-secret@127.0.0.1:{port}"),
        format!("http://hunter2-secret@127.0.0.1:{port}/admin"),
        "hunter2-secret:x@127.0.0.1".to_owned(),
    ] {
        let output = run(&["inbox", "--admin", &with_password, "counts"]);
        assert_fails(&output, 2, "--admin: the URL has a user or password");
        assert!(
            !output.stderr.contains("hunter2") && !output.stdout.contains("hunter2"),
            "{output:?}"
        );
    }
    let output = run(&["inbox", "--admin", &url, "--file", "x", "counts"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_admin_redrive_all_goes_through_once_while_they_die_again() {
    // More than one request looks at (1000).
    let ids: Vec<String> = (0..2500).map(|i| format!("{i:04}")).collect();
    let store = Graveyard::new(
        ids.iter().map(|id| ("/".to_owned(), id.clone())),
        usize::MAX,
        true,
    );
    let admin = AdminService::new(Inbox::from_arc(store.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback_service(admin)).await
    });

    let output =
        tokio::task::spawn_blocking(move || run(&["inbox", "--admin", &url, "redrive", "--all"]))
            .await
            .expect("ran");
    server.abort();
    assert!(output.status.success(), "{output:?}");
    let printed: Vec<String> = output
        .stdout
        .lines()
        .map(|line| line.strip_prefix("/\t").expect("endpoint /").to_owned())
        .collect();
    assert_eq!(printed, ids);
    let redriven: Vec<String> = store.redriven().into_iter().map(|key| key.id).collect();
    assert_eq!(redriven, ids);
}
