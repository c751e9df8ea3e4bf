//! The `authgear-webhook` binary, run for real: `sign` against Authgear's own vector and an
//! independent HMAC (python3's hmac, or openssl), `verify` both ways, `events`, `--help` on
//! every subcommand, and where the secret may come from; `inbox` on a SQLite file prepared
//! through the library (and in use by this process) and on a real redis-server. `send` is in
//! send.rs.

use std::{
    fs,
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use crate::common::{
    RedisServer, TempDir,
    example::{self, Output},
};
use authgear_webhook::{
    event::is_blocking_type,
    inbox::{EventKey, Failure, NewEvent, RedisStore, SqliteStore, Store, Stored},
};

/// Authgear's own test vector (pkg/lib/hook/signature_test.go): key `secret`, body `body`.
const VECTOR: &str = "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355";

/// How long one run of the binary may take.
const LIMIT: Duration = Duration::from_secs(20);

/// The binary with `args`, `AUTHGEAR_WEBHOOK_SECRET` set to `secret` (or unset).
fn cli(secret: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authgear-webhook"));
    command.args(args).env_remove("AUTHGEAR_WEBHOOK_SECRET");
    if let Some(secret) = secret {
        command.env("AUTHGEAR_WEBHOOK_SECRET", secret);
    }
    command
}

fn run(secret: Option<&str>, args: &[&str]) -> Output {
    example::run(&mut cli(secret, args), LIMIT)
}

/// Runs with `stdin` as standard input.
fn run_with_stdin(secret: Option<&str>, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = cli(secret, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("write stdin");
    // Bounded: the binary reads its input and exits; `wait_with_output` reads both pipes.
    let output = child.wait_with_output().expect("the binary ends");
    Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A file with `bytes` in a temp dir of its own, removed on drop.
struct TempFile {
    _dir: TempDir,
    path: String,
}

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let dir = TempDir::new("cli");
        let path = dir.path().join(name);
        fs::write(&path, bytes).expect("write a temp file");
        let path = path.to_str().expect("utf-8 path").to_owned();
        Self { _dir: dir, path }
    }

    fn path(&self) -> &str {
        &self.path
    }
}

/// Asserts that the binary exited with `code`, saying `reason` in one line on stderr.
fn assert_fails(output: &Output, code: i32, reason: &str) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(reason), "{reason:?} in {output:?}");
}

/// HMAC-SHA256 of `body` under `key` in lowercase hex, by python3's hmac (or openssl).
fn independent_hmac(key: &str, body: &TempFile) -> String {
    let script = "import hmac, hashlib, sys; \
        print(hmac.new(sys.argv[1].encode(), open(sys.argv[2], 'rb').read(), hashlib.sha256).hexdigest())";
    let python = Command::new("python3")
        .args(["-c", script, key, body.path()])
        .output();
    if let Some(output) = python.ok().filter(|output| output.status.success()) {
        return String::from_utf8(output.stdout)
            .expect("hex")
            .trim()
            .to_owned();
    }
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key, "-r", body.path()])
        .output()
        .expect("python3 or openssl, to compute an independent HMAC");
    assert!(output.status.success(), "openssl: {output:?}");
    let text = String::from_utf8(output.stdout).expect("hex");
    text.split_whitespace().next().expect("a digest").to_owned()
}

#[test]
fn sign_gives_authgears_vector_from_a_file_stdin_and_either_secret_source() {
    let body = TempFile::new("body", b"body");
    let secret = TempFile::new("secret", b"secret\n");
    for output in [
        run(Some("secret"), &["sign", body.path()]),
        run_with_stdin(Some("secret"), &["sign"], b"body"),
        run_with_stdin(Some("secret"), &["sign", "-"], b"body"),
        // The file wins over the environment; its one trailing newline is not in the key.
        run(
            Some("other"),
            &["--secret-file", secret.path(), "sign", body.path()],
        ),
        run(None, &["sign", "--secret-file", secret.path(), body.path()]),
    ] {
        assert!(output.status.success(), "{output:?}");
        assert_eq!(output.stdout, format!("{VECTOR}\n"));
        assert_eq!(output.stderr, "");
    }
}

#[test]
fn sign_agrees_with_an_independent_hmac() {
    let fixture = fs::read("../tests/fixtures/user.pre_create.json").expect("fixture");
    let secret = fs::read_to_string("../tests/fixtures/secret.txt").expect("secret");
    // Every byte value, Go's escapes, a newline at the end: the bytes, not text.
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.extend_from_slice(&fixture);
    bytes.push(b'\n');
    for (body, key) in [
        (fixture.clone(), secret.as_str()),
        (bytes, "k3y_with_Under"),
    ] {
        let file = TempFile::new("independent", &body);
        let output = run(Some(key), &["sign", file.path()]);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(output.stdout.trim_end(), independent_hmac(key, &file));
    }
    // And the signature recorded with the fixture.
    let recorded = fs::read_to_string("../tests/fixtures/user.pre_create.json.sig").expect("sig");
    let output = run(
        Some(&secret),
        &["sign", "../tests/fixtures/user.pre_create.json"],
    );
    assert_eq!(output.stdout.trim_end(), recorded.trim_end());
}

#[test]
fn verify_accepts_the_right_signature_and_refuses_others_saying_why() {
    let body = TempFile::new("verify", b"body");
    for signature in [VECTOR.to_owned(), VECTOR.to_uppercase()] {
        let output = run(
            Some("secret"),
            &["verify", "--signature", &signature, body.path()],
        );
        assert!(output.status.success(), "{output:?}");
        assert_eq!(output.stdout, "valid signature\n");
        let output = run_with_stdin(
            Some("secret"),
            &["verify", "--signature", &signature],
            b"body",
        );
        assert!(output.status.success(), "{output:?}");
    }
    let mut wrong = VECTOR.to_owned();
    wrong.replace_range(63.., "6");
    for (secret, signature, reason) in [
        ("secret", wrong.as_str(), "invalid signature"),
        ("another", VECTOR, "invalid signature"),
        ("secret", &VECTOR[..62], "malformed"),
        ("secret", &format!("sha256={VECTOR}"), "malformed"),
        ("secret", "", "missing"),
    ] {
        let output = run(
            Some(secret),
            &["verify", "--signature", signature, body.path()],
        );
        assert_fails(&output, 1, reason);
        assert_eq!(output.stdout, "");
    }
    // A changed body.
    let output = run_with_stdin(
        Some("secret"),
        &["verify", "--signature", VECTOR],
        b"body\n",
    );
    assert_fails(&output, 1, "invalid signature");
}

#[test]
fn events_lists_every_type_blocking_or_not_with_a_delivery() {
    let output = run(None, &["events"]);
    assert!(output.status.success(), "{output:?}");
    let mut blocking = 0;
    for line in output.stdout.lines() {
        let [event_type, kind, delivery] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("three columns: {line}");
        };
        assert_eq!(kind == "blocking", is_blocking_type(event_type), "{line}");
        assert!(kind == "blocking" || kind == "non-blocking", "{line}");
        blocking += usize::from(kind == "blocking");
        let event: serde_json::Value = serde_json::from_str(delivery).expect("JSON");
        assert_eq!(event["type"], event_type);
        let fixture = format!("fixtures/events/{event_type}.json");
        assert_eq!(delivery, fs::read_to_string(fixture).expect("fixture"));
    }
    assert_eq!(blocking, 9);
    // One delivery per `<type>.json` (the directory also holds its README, generator and
    // edge cases).
    let fixtures = fs::read_dir("fixtures/events")
        .expect("fixtures")
        .filter(|entry| {
            let path = entry.as_ref().expect("an entry").path();
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .count();
    assert_eq!(output.stdout.lines().count(), fixtures);

    let output = run(None, &["events", "oidc.jwt.pre_create"]);
    assert!(output.status.success(), "{output:?}");
    let fixture = fs::read_to_string("fixtures/events/oidc.jwt.pre_create.json");
    assert_eq!(output.stdout.trim_end(), fixture.expect("fixture"));
    assert_fails(
        &run(None, &["events", "user.nope"]),
        2,
        "unknown event type",
    );
}

#[test]
fn every_subcommand_has_help() {
    for subcommand in ["send", "sign", "verify", "events", "inbox", "catch-up"] {
        let output = run(None, &[subcommand, "--help"]);
        assert!(output.status.success(), "{output:?}");
        let usage = format!("Usage: authgear-webhook {subcommand}");
        assert!(output.stdout.contains(&usage), "{output:?}");
        let output = run(None, &["help", subcommand]);
        assert!(output.stdout.contains(&usage), "{output:?}");
    }
    for subcommand in ["counts", "dead", "redrive"] {
        let output = run(None, &["inbox", subcommand, "--help"]);
        assert!(output.status.success(), "{output:?}");
        let usage = format!("Usage: authgear-webhook inbox {subcommand}");
        assert!(output.stdout.contains(&usage), "{output:?}");
        assert!(output.stdout.contains("--redis"), "{output:?}");
    }
    let output = run(None, &["--help"]);
    for subcommand in [
        "send",
        "sign",
        "verify",
        "events",
        "inbox",
        "catch-up",
        "AUTHGEAR_WEBHOOK_SECRET",
    ] {
        assert!(output.stdout.contains(subcommand), "{output:?}");
    }
    let output = run(None, &["--version"]);
    assert_eq!(
        output.stdout,
        format!("authgear-webhook {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_input_gets_one_line_and_a_non_zero_exit() {
    let body = TempFile::new("bad", b"body");
    let empty = TempFile::new("empty-secret", b"\n");
    // Never a secret in an argument.
    let output = run(None, &["sign", "--secret", "secret", body.path()]);
    assert_fails(&output, 2, "--secret");
    for secret in [None, Some("")] {
        assert_fails(
            &run(secret, &["sign", body.path()]),
            2,
            "AUTHGEAR_WEBHOOK_SECRET",
        );
        let output = run(secret, &["verify", "--signature", VECTOR, body.path()]);
        assert_fails(&output, 2, "AUTHGEAR_WEBHOOK_SECRET");
    }
    let output = run(None, &["--secret-file", empty.path(), "sign", body.path()]);
    assert_fails(&output, 2, "is empty");
    let output = run(
        None,
        &["--secret-file", "missing-secret", "sign", body.path()],
    );
    assert_fails(&output, 2, "cannot read missing-secret");
    assert_fails(
        &run(Some("secret"), &["sign", "missing-body"]),
        2,
        "cannot read missing-body",
    );
    assert_fails(
        &run(Some("secret"), &["verify", body.path()]),
        2,
        "--signature",
    );
    assert_fails(&run(None, &["nope"]), 2, "usage");
    // Bare, it shows the help (on stderr, exit 2), as clap does.
    let output = run(None, &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        output.stderr.contains("Usage: authgear-webhook"),
        "{output:?}"
    );
}

#[test]
fn events_stops_quietly_when_the_reader_is_gone() {
    // Like `authgear-webhook events | head -0`: the pipe is closed before the first write
    // (the binary is still starting), which then fails with EPIPE.
    let mut child = cli(None, &["events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("the binary ends");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

/// The SQLite inbox file in `dir`.
fn inbox_file(dir: &TempDir) -> String {
    dir.path()
        .join("inbox.sqlite3")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

fn new_event(endpoint: &str, id: &str) -> NewEvent {
    NewEvent {
        key: EventKey::new(endpoint, id),
        event_type: "user.created".into(),
        body: format!(r#"{{"id":"{id}","type":"user.created"}}"#).into(),
        recovered: false,
    }
}

/// Stores `keys` and makes each a dead letter (one attempt, failed with `error`).
async fn dead_letters(store: &dyn Store, keys: &[(&str, &str)], error: &str) {
    for (endpoint, id) in keys {
        let stored = store.store(new_event(endpoint, id)).await.expect("store");
        assert_eq!(stored, Stored::Stored);
    }
    let claimed = store
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), keys.len());
    for claim in &claimed {
        let failed = store.fail(claim, Failure::Dead, error).await;
        assert!(failed.expect("fail"), "{claim:?}");
    }
}

/// The fields of each line of `stdout`.
fn rows(stdout: &str) -> Vec<Vec<&str>> {
    stdout
        .lines()
        .map(|line| line.split('\t').collect())
        .collect()
}

#[tokio::test]
async fn inbox_counts_lists_and_redrives_dead_letters_of_a_sqlite_file() {
    let dir = TempDir::new("cli-inbox-sqlite");
    let file = inbox_file(&dir);
    let store = SqliteStore::open(&file).expect("open");
    let dead = [("/", "a1"), ("/", "a2"), ("/", "a3"), ("/other", "a1")];
    dead_letters(&store, &dead, "db down\tagain").await;
    // One done, one in flight, one queued.
    store.store(new_event("/", "d1")).await.expect("store");
    let done = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(store.ack(&done[0]).await.expect("ack"));
    store.store(new_event("/", "f1")).await.expect("store");
    let in_flight = store
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(in_flight.len(), 1);
    store.store(new_event("/", "q1")).await.expect("store");
    // One process per file: the tool opens it once this one has let go.
    drop(store);

    let inbox = |args: &[&str]| {
        let mut all = vec!["inbox", "--file", &file];
        all.extend_from_slice(args);
        run(None, &all)
    };

    let output = inbox(&["counts"]);
    assert!(output.status.success(), "{output:?}");
    let counts = rows(&output.stdout);
    assert_eq!(counts.len(), 5, "{output:?}");
    assert_eq!(
        counts[..4],
        [
            ["queued", "1"],
            ["in_flight", "1"],
            ["dead", "4"],
            ["done", "1"]
        ]
    );
    assert_eq!(counts[4][0], "bytes");
    assert!(
        counts[4][1].parse::<u64>().expect("a number") > 0,
        "{output:?}"
    );
    let output = run(None, &["inbox", "counts", "--json", "--file", &file]);
    let json: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(json["dead"], 4, "{output:?}");
    assert_eq!(json["in_flight"], 1, "{output:?}");

    let output = inbox(&["dead"]);
    assert!(output.status.success(), "{output:?}");
    let year = &rfc3339_year();
    let listed = rows(&output.stdout);
    assert_eq!(listed.len(), 4, "{output:?}");
    for (row, (endpoint, id)) in listed.iter().zip(dead) {
        assert_eq!(row.len(), 6, "{row:?}");
        assert_eq!(row[..4], [endpoint, id, "user.created", "1"], "{row:?}");
        assert!(row[4].starts_with(year) && row[4].ends_with('Z'), "{row:?}");
        assert_eq!(row[5], "db down again", "{row:?}");
    }
    // Paged: after a key, at most --limit, and the next page named on stderr.
    let output = inbox(&["dead", "--limit", "2", "--after", "/", "a1"]);
    let page: Vec<_> = rows(&output.stdout).iter().map(|row| row[1]).collect();
    assert_eq!(page, ["a2", "a3"], "{output:?}");
    assert!(output.stderr.contains(r#"--after "/" "a3""#), "{output:?}");
    let output = inbox(&["dead", "--json", "--limit", "1"]);
    let json: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(json["last_error"], "db down\tagain", "{output:?}");
    assert_eq!(
        (&json["endpoint"], &json["id"]),
        (&"/".into(), &"a1".into())
    );

    // One by id; an id dead on two endpoints needs --endpoint; a key that is not dead fails.
    let output = inbox(&["redrive", "a2"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, "/\ta2\n");
    assert_fails(&inbox(&["redrive", "a1"]), 2, "--endpoint");
    let output = inbox(&["redrive", "--endpoint", "/other", "a1"]);
    assert_eq!(output.stdout, "/other\ta1\n", "{output:?}");
    assert_fails(&inbox(&["redrive", "a2"]), 1, "no dead letter with id a2");
    assert_fails(
        &inbox(&["redrive", "q1", "--endpoint", "/"]),
        1,
        "no dead letter",
    );
    let output = inbox(&["redrive", "--all"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, "/\ta1\n/\ta3\n");

    // The store as the tool left it: every dead letter queued again, attempts reset.
    let store = SqliteStore::open(&file).expect("reopen");
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (counts.queued, counts.in_flight, counts.dead, counts.done),
        (5, 1, 0, 1)
    );
    let mut claimed: Vec<_> = store
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim")
        .into_iter()
        .map(|claim| (claim.key.endpoint, claim.key.id, claim.attempt))
        .collect();
    claimed.sort();
    let expected = ["/ a1", "/ a2", "/ a3", "/ f1", "/ q1", "/other a1"];
    let got: Vec<_> = claimed
        .iter()
        .map(|(endpoint, id, _)| format!("{endpoint} {id}"))
        .collect();
    assert_eq!(got, expected);
    // Re-driven ones start again at attempt 1; f1's claim was handed over (attempt 2).
    for (_, id, attempt) in &claimed {
        assert_eq!(*attempt, if id == "f1" { 2 } else { 1 }, "{claimed:?}");
    }
}

/// The current year, as a dead letter's time starts.
fn rfc3339_year() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    // Good enough for the test: 365.2425 days a year from 1970.
    let year = 1970 + secs * 10_000 / (3_652_425 * 86_400);
    format!("{year}-")
}

#[tokio::test]
async fn inbox_file_in_use_is_one_clear_line_and_a_non_zero_exit() {
    let dir = TempDir::new("cli-inbox-in-use");
    let file = inbox_file(&dir);
    let store = SqliteStore::open(&file).expect("open");
    // Bounded by LIMIT: the tool gives up on the lock (after about 2 s), never hangs.
    let output = run(None, &["inbox", "--file", &file, "dead"]);
    assert_fails(
        &output,
        2,
        "inbox file is in use by another process: stop the server, ask it (--admin URL, its \
         admin service), or use the Redis inbox",
    );
    assert_eq!(output.stdout, "");
    // Still this process's, untouched.
    assert_eq!(store.counts().await.expect("counts"), Default::default());
    // A file that does not exist is not created.
    let missing = format!("{file}.missing");
    assert_fails(
        &run(None, &["inbox", "--file", &missing, "counts"]),
        2,
        "no inbox file here",
    );
    assert!(!std::path::Path::new(&missing).exists());
}

#[tokio::test]
async fn inbox_on_redis_from_the_flag_or_redis_url() {
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let url = server.url.clone();
    let store = redis_store(&url).await;
    dead_letters(&store, &[("/", "r1"), ("/", "r2")], "handler failed").await;

    // Beside a live store (Redis is shared): --redis, or REDIS_URL.
    let output = run(None, &["inbox", "--redis", &url, "counts"]);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.contains("dead\t2\n"), "{output:?}");
    let output = example::run(
        cli(None, &["inbox", "dead", "--json"]).env("REDIS_URL", &url),
        LIMIT,
    );
    let ids: Vec<serde_json::Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json")["id"].clone())
        .collect();
    assert_eq!(ids, ["r1", "r2"], "{output:?}");
    let output = run(None, &["inbox", "--redis", &url, "redrive", "--all"]);
    assert_eq!(output.stdout, "/\tr1\n/\tr2\n", "{output:?}");

    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.queued, counts.dead), (2, 0));
    drop(server);
}

/// A Redis inbox store on `url`, once `redis-server` answers (at most `LIMIT`).
pub(crate) async fn redis_store(url: &str) -> RedisStore {
    let store = RedisStore::builder()
        .timeout(Duration::from_secs(5))
        .open(url)
        .expect("url");
    let deadline = std::time::Instant::now() + LIMIT;
    while store.counts().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store
}
