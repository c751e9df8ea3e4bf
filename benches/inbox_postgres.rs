//! The inbox on Postgres under load: how many deliveries per second are acknowledged
//! (committed with `synchronous_commit = on`, then answered 200), the latency the inbox
//! adds, and how fast a worker with a no-op handler empties the queue.
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench inbox_postgres
//! INBOX_BENCH_SECONDS=10 INBOX_BENCH_SENDERS=32 cargo bench -p authgear-webhook-benches --bench inbox_postgres
//! # Postgres's files on tmpfs (an fsync costs nothing): the store's own ceiling.
//! INBOX_BENCH_DIR=/dev/shm cargo bench -p authgear-webhook-benches --bench inbox_postgres
//! # The pool without its check of each connection before handing it out (sqlx's
//! # `test_before_acquire`, on by default: one more round trip per store call).
//! INBOX_BENCH_PING=0 cargo bench -p authgear-webhook-benches --bench inbox_postgres
//! # The draining worker's concurrency (default 64); Postgres's time per statement
//! # (pg_stat_statements) in the load and in the drain.
//! INBOX_BENCH_CONCURRENCY=32 INBOX_BENCH_STATEMENTS=1 cargo bench -p authgear-webhook-benches --bench inbox_postgres
//! ```
//!
//! Postgres commits concurrent transactions with one WAL flush when they arrive together
//! (a backend's flush covers every commit record written before it), so the rate is
//! bounded by about senders / (fsync time + the delivery's round trips). The bench first
//! measures the disk: 8 KiB writes each followed by `fdatasync` (Postgres's
//! `wal_sync_method` on Linux) in the data directory's file system for one second, as
//! `pg_test_fsync` does.
//!
//! One command: it starts its own Postgres (Debian's `postgresql` package, the newest
//! `/usr/lib/postgresql/<version>/bin` or the directory in `PG_BIN`; `initdb` in a temp
//! dir, a free loopback port, the server's default settings: `fsync` and
//! `synchronous_commit` on, `max_connections` 100; as the `postgres` user when run as
//! root), an axum server on 127.0.0.1 behind `VerifySignatureLayer` with the inbox layer
//! on a `PostgresStore` (a pool of up to 64 connections: one per sender, the worker's
//! claims and acks, and room to spare), and `INBOX_BENCH_SENDERS` (32) concurrent
//! HTTP/1.1 senders of signed 1 KiB non-blocking events, each with a new id, for
//! `INBOX_BENCH_SECONDS` (5), with how many acknowledgements shared a WAL sync
//! (`pg_stat_wal`) and the CPU that Postgres (all its processes) and this process used
//! meanwhile. Then the same server without the inbox (the 200 comes from
//! a handler that does nothing) for the ratio. Then a `Worker` (concurrency 64, no-op
//! handler) drains what was stored, with the CPU that Postgres and this process used
//! meanwhile. Then, with that worker running, the senders again: how many events it is
//! behind when they stop, and how soon it catches up. Everything but Postgres runs in this
//! process on a two-thread runtime, senders included: the figures are for the whole loop
//! on this machine.

use std::{
    env,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use authgear_webhook::{
    SIGNATURE_HEADER, VerifySignatureLayer,
    inbox::{CancellationToken, Counts, Delivery, Inbox, PostgresStore},
    sign,
    sqlx::{PgPool, postgres::PgPoolOptions},
};
use axum::{Router, routing::post};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

const SECRET: &str = "bench-webhook-secret";

/// The store's pool: a connection per sender (each holds one while its delivery commits),
/// the worker's claim, ack and heartbeat calls, `counts`, and room to spare.
const POOL: u32 = 64;

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: nothing then.
    if !env::args().any(|arg| arg == "--bench") {
        return;
    }
    let seconds: u64 = setting("INBOX_BENCH_SECONDS", 5);
    let senders: usize = setting("INBOX_BENCH_SENDERS", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(Duration::from_secs(seconds), senders));
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A Postgres cluster of the bench's own with the server's default settings, stopped (and
/// its files removed) on drop.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    url: String,
}

impl Postgres {
    fn start() -> Self {
        let bin = find_bin().expect("Postgres's programs (apt-get install postgresql)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let base = env::var_os("INBOX_BENCH_DIR").map_or_else(env::temp_dir, Into::into);
        let dir = base.join(format!("authgear-inbox-pg-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        if as_root() {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(chown.success(), "the postgres user owns the temp dir");
        }
        let postgres = Self {
            bin,
            dir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        // `--no-sync`: initdb does not sync the files it makes; the server syncs its own
        // writes from then on (`fsync` stays on).
        let data = postgres.data();
        let initdb = postgres.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(initdb.status.success(), "initdb: {}", text(&initdb));
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections=100",
            path_str(&postgres.dir)
        );
        if statements() {
            options.push_str(" -c shared_preload_libraries=pg_stat_statements");
        }
        let log = postgres.dir.join("postgres.log");
        let started = postgres.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(started.status.success(), "pg_ctl start: {}", text(&started));
        postgres
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of the server's programs (as the `postgres` user when this runs as root).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run a Postgres program")
    }

    /// Seconds of CPU the server has used so far (user + system): the postmaster with its
    /// children that have exited, and each of its running children (the backends, the WAL
    /// writer, the checkpointer, ...).
    fn cpu(&self) -> f64 {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|file| file.lines().next()?.trim().parse::<u32>().ok());
        let Some(pid) = pid else { return 0.0 };
        let mut seconds = stat(&format!("/proc/{pid}/stat"))
            .map_or(0.0, |fields| ticks(&fields, &[11, 12, 13, 14]));
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let path = entry.path().join("stat");
            if let Some(fields) = stat(&path.to_string_lossy())
                && fields.get(1).and_then(|ppid| ppid.parse().ok()) == Some(pid)
            {
                seconds += ticks(&fields, &[11, 12]);
            }
        }
        seconds
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether to print Postgres's time per statement (`INBOX_BENCH_STATEMENTS`).
fn statements() -> bool {
    env::var_os("INBOX_BENCH_STATEMENTS").is_some()
}

/// Forgets the statements' times so far (with `INBOX_BENCH_STATEMENTS`).
async fn reset_statements(pool: &PgPool) {
    if statements() {
        authgear_webhook::sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(pool)
            .await
            .expect("pg_stat_statements_reset");
    }
}

/// The statements that took Postgres the most time since the last reset (with
/// `INBOX_BENCH_STATEMENTS`): calls, rows, total and mean execution time (planning and
/// the commit's WAL flush not included).
async fn print_statements(pool: &PgPool) {
    if !statements() {
        return;
    }
    let rows: Vec<(i64, i64, f64, f64, String)> = authgear_webhook::sqlx::query_as(
        "SELECT calls, rows, total_exec_time, mean_exec_time,
                left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 6",
    )
    .fetch_all(pool)
    .await
    .expect("pg_stat_statements");
    for (calls, rows, total, mean, query) in rows {
        println!(
            "            {calls:>7} calls {rows:>7} rows {total:>8.0} ms ({mean:.3} ms each): {query}"
        );
    }
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/<version>/bin` with `initdb` in it.
fn find_bin() -> Option<PathBuf> {
    if let Some(bin) = env::var_os("PG_BIN") {
        return Some(PathBuf::from(bin)).filter(|bin| bin.join("initdb").is_file());
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|id| String::from_utf8_lossy(&id.stdout).trim() == "0")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The fields of a `/proc/<pid>/stat` after the command name (state, ppid, ...).
fn stat(path: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The sum of the clock ticks in `fields` at `at` (utime, stime: 11, 12; with the
/// children's: 13, 14), in seconds.
fn ticks(fields: &[String], at: &[usize]) -> f64 {
    at.iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum::<f64>()
        / 100.0
}

/// Seconds of CPU this process has used so far (user + system).
fn own_cpu() -> f64 {
    stat("/proc/self/stat").map_or(0.0, |fields| ticks(&fields, &[11, 12]))
}

/// The disk under `dir`: 8 KiB written at the same place and `fdatasync`ed, as many times
/// as one second allows; syncs per second.
fn fsync_rate(dir: &Path) -> f64 {
    let path = dir.join("fsync-test");
    let mut file = std::fs::File::create(&path).expect("a file in the temp dir");
    let block = [b'x'; 8192];
    let started = Instant::now();
    let mut syncs = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        file.write_all(&block).expect("write");
        file.sync_data().expect("fdatasync");
        std::io::Seek::rewind(&mut file).expect("seek");
        syncs += 1;
    }
    let _ = std::fs::remove_file(&path);
    f64::from(syncs) / started.elapsed().as_secs_f64()
}

/// A 1 KiB non-blocking event with `id`.
fn event(run: &str, id: u64) -> Bytes {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut body =
        format!(r#"{{"id":"{run}-{id:012}","seq":{id},"type":"bench.event","payload":{{"pad":""#)
            .into_bytes();
    let tail = format!(r#""}},"context":{{"timestamp":{now}}}}}"#);
    body.resize(1024 - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    Bytes::from(body)
}

/// What one load run measured.
struct Load {
    acknowledged: u64,
    other: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn report(&mut self, name: &str) -> f64 {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            self.latencies
                .get(
                    ((self.latencies.len() as f64 * q) as usize)
                        .min(self.latencies.len().max(1) - 1),
                )
                .copied()
                .unwrap_or_default()
        };
        let rate = self.acknowledged as f64 / self.elapsed.as_secs_f64();
        println!(
            "{name:>10}: {rate:>8.0} events/s acknowledged ({} in {:.1} s, {} not 200), p50 {:.2} ms, p99 {:.2} ms",
            self.acknowledged,
            self.elapsed.as_secs_f64(),
            self.other,
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
        );
        rate
    }
}

/// `senders` concurrent senders of new events to `url` for `duration`.
async fn load(url: &str, run: &'static str, duration: Duration, senders: usize) -> Load {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let next = Arc::new(AtomicU64::new(0));
    let (acknowledged, other) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        let (acknowledged, other, latencies) =
            (acknowledged.clone(), other.clone(), latencies.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            while Instant::now() < end {
                let body = event(run, next.fetch_add(1, Ordering::Relaxed));
                let request = Request::post(&url)
                    .header(SIGNATURE_HEADER, sign(SECRET, &body))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body))
                    .expect("request");
                let sent = Instant::now();
                let status = client.request(request).await.map(|r| r.status());
                mine.push(sent.elapsed());
                match status {
                    Ok(StatusCode::OK) => acknowledged.fetch_add(1, Ordering::Relaxed),
                    _ => other.fetch_add(1, Ordering::Relaxed),
                };
            }
            latencies.lock().expect("not poisoned").extend(mine);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    Load {
        acknowledged: acknowledged.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/")
}

/// How many times Postgres has synced its WAL so far (`pg_stat_wal`, Postgres 14 and
/// later; 0 where there is none).
async fn wal_syncs(pool: &PgPool) -> i64 {
    authgear_webhook::sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

async fn run(duration: Duration, senders: usize) {
    let postgres = Postgres::start();
    let syncs = fsync_rate(&postgres.dir);
    let pool = PgPoolOptions::new()
        .max_connections(POOL)
        .test_before_acquire(setting("INBOX_BENCH_PING", 1) != 0)
        .connect(&postgres.url)
        .await
        .expect("connect to Postgres");
    if statements() {
        authgear_webhook::sqlx::query("CREATE EXTENSION pg_stat_statements")
            .execute(&pool)
            .await
            .expect("CREATE EXTENSION pg_stat_statements");
    }
    let store = PostgresStore::open(pool.clone())
        .await
        .expect("open the store");
    let inbox = Inbox::new(store);
    // The inbox inside the verifying layer, as in examples/axum_server.rs.
    let with_inbox = serve(
        Router::new().route("/", post(|| async { "" })).layer(
            tower::ServiceBuilder::new()
                .layer(VerifySignatureLayer::new(SECRET))
                .layer(inbox.layer()),
        ),
    )
    .await;
    let without = serve(
        Router::new()
            .route("/", post(|| async { "" }))
            .layer(VerifySignatureLayer::new(SECRET)),
    )
    .await;
    println!(
        "{senders} senders, 1 KiB events, {duration:?} per run, Postgres (fsync, synchronous_commit on) in {}, pool {POOL}{}",
        postgres.dir.display(),
        if setting("INBOX_BENCH_PING", 1) != 0 {
            ""
        } else {
            " without test_before_acquire"
        },
    );
    println!("      disk: {syncs:>8.0} fdatasyncs/s of 8 KiB in one file");
    // Warm-up: connections, the statements prepared.
    load(&with_inbox, "warm", Duration::from_millis(500), senders).await;
    reset_statements(&pool).await;
    let (postgres_cpu, own, syncs) = (postgres.cpu(), own_cpu(), wal_syncs(&pool).await);
    let mut inbox_load = load(&with_inbox, "inbox", duration, senders).await;
    let stored = inbox_load.report("inbox");
    let seconds = inbox_load.elapsed.as_secs_f64();
    println!(
        "            {:.1} events per WAL sync; CPU: Postgres {:.0}%, this process {:.0}% (of one core)",
        inbox_load.acknowledged as f64 / (wal_syncs(&pool).await - syncs).max(1) as f64,
        (postgres.cpu() - postgres_cpu) / seconds * 100.0,
        (own_cpu() - own) / seconds * 100.0,
    );
    print_statements(&pool).await;
    let plain = load(&without, "plain", duration, senders)
        .await
        .report("no inbox");
    println!(
        "     ratio: {:.2} of the server without the inbox",
        stored / plain
    );

    let queued = inbox.counts().await.expect("counts").queued;
    let concurrency = setting("INBOX_BENCH_CONCURRENCY", 64);
    println!("    worker: concurrency {concurrency}, no-op handler");
    let shutdown = CancellationToken::new();
    reset_statements(&pool).await;
    let (postgres_cpu, worker_cpu) = (postgres.cpu(), own_cpu());
    // Handled events counted here, so that the drain is watched without asking Postgres:
    // `counts` scans the whole table (milliseconds at these sizes), and polling it would
    // take Postgres time from the worker. It is asked only once every event was handled,
    // for the last acks.
    let handled = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let worker = tokio::spawn({
        let handled = handled.clone();
        authgear_webhook::inbox::Worker::new(inbox.clone())
            .concurrency(concurrency)
            .poll(Duration::from_millis(10))
            .run(
                move |_: Delivery| {
                    handled.fetch_add(1, Ordering::Relaxed);
                    async { Ok::<_, std::convert::Infallible>(()) }
                },
                shutdown.clone(),
            )
    });
    let (mut seen, mut moved) = (0, Instant::now());
    while seen < queued {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = handled.load(Ordering::Relaxed);
        if now > seen {
            (seen, moved) = (now, Instant::now());
        }
        assert!(
            moved.elapsed() < Duration::from_secs(30),
            "the worker handled nothing for 30 s ({seen} of {queued})"
        );
    }
    loop {
        let counts = inbox.counts().await.expect("counts");
        if counts.queued + counts.in_flight == 0 {
            let elapsed = started.elapsed();
            println!(
                "    worker: {:>8.0} events/s handled ({queued} in {:.1} s, {} dead); CPU: Postgres {:.0}%, this process {:.0}% (of one core)",
                queued as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64(),
                counts.dead,
                (postgres.cpu() - postgres_cpu) / elapsed.as_secs_f64() * 100.0,
                (own_cpu() - worker_cpu) / elapsed.as_secs_f64() * 100.0,
            );
            print_statements(&pool).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Steady load: the same senders while the worker runs. Does the queue grow?
    load(&with_inbox, "steady", duration, senders)
        .await
        .report("+ worker");
    let ended = Instant::now();
    let behind = |counts: Counts| counts.queued + counts.in_flight;
    let at_end = behind(inbox.counts().await.expect("counts"));
    while behind(inbox.counts().await.expect("counts")) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "    worker: {at_end} events behind when the load ended, drained {:.2} s later",
        ended.elapsed().as_secs_f64()
    );
    shutdown.cancel();
    let _ = worker.await;
}
