//! A real Authgear webhook receiver: `POST /` behind the verifying layer, on the crate's
//! typed events.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --all-features --example axum_server
//! AUTHGEAR_WEBHOOK_SECRET_FILE=/run/secrets/authgear-webhook cargo run --all-features --example axum_server
//! ```
//!
//! The secret comes from `AUTHGEAR_WEBHOOK_SECRET`, or from the file named by
//! `AUTHGEAR_WEBHOOK_SECRET_FILE` (which wins when both are set): one secret per line, the
//! first the current one, every one accepted. The file is re-read when it changes, and a new
//! content is in use within about 2 s without a restart: to rotate, list the new secret
//! first and the old one after it, change the secret in Authgear's portal, then remove the
//! old line. A file that becomes empty, unreadable or not text keeps the last good secrets
//! (one line on stderr says so, and another when it is usable again; `/health` on
//! `ADMIN_ADDR` reports it as `degraded`, still 200); a file that cannot be used at start
//! stops the server with one line naming it.
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`). Blocking events are allowed
//! (`{"is_allowed":true}`), except:
//!
//! - `user.pre_create` is denied when the email's domain is in `BLOCKED_DOMAINS`
//!   (comma-separated, e.g. `BLOCKED_DOMAINS=spam.example,mailinator.com`; default none);
//! - `oidc.jwt.pre_create` adds a claim to the access token
//!   (`"https://authgear-webhook.example/plan": "free"`).
//!
//! Other events get 200. A verified body that is not an Authgear event gets 400, anything
//! not signed with the secret 401. One line per request on stdout, and one more,
//! `handled {type} {id}`, each time the handler runs for an event.
//!
//! What Authgear does with the answer: it waits 5 s for a blocking event (10 s for all the
//! hooks of one event; both configurable per project), and any non-2xx status, timeout or
//! answer outside the event's schema fails the end user's sign-up, login or token. So a 400,
//! 401, 413 or 503 from this server on a blocking event is a failure the user sees.
//! Non-blocking events are sent once (60 s, no retry) and redirects are never followed. A
//! delivery whose payload does not fit the typed model (`Payload::OffModel`) is still
//! handled and allowed.
//!
//! Replay protection is on: a delivery older than 5 minutes gets 401; a delivery already
//! received (Authgear sends one twice to a URL configured twice) gets the first answer again
//! without running the handler. Deliveries are remembered in memory, or, for several
//! instances behind a load balancer, in the Postgres database at `DATABASE_URL` or else in
//! the Redis at `REDIS_URL`.
//! `AUTHGEAR_WEBHOOK_REPLAY=off` turns it off, e.g. to replay a captured delivery while
//! debugging.
//!
//! Non-blocking events go through the durable inbox: each
//! is stored and synced, answered 200 (the line `200 {type} {id}`), then handed to a worker that
//! prints `handled {type} {id}` (retrying with backoff if it fails). The inbox is the SQLite file
//! named by `AUTHGEAR_WEBHOOK_INBOX` (default `authgear-webhook-inbox.sqlite3` in the current
//! directory; one process per file: a second instance in the same directory keeps its own,
//! `authgear-webhook-inbox-ADDR.sqlite3`); `AUTHGEAR_WEBHOOK_INBOX=off` handles them inline as
//! before. With `REDIS_URL` set, the inbox is in that Redis (Streams, one consumer group): any
//! number of instances share one queue, and each event is handled by one of them; run Redis with
//! `appendonly yes` and `appendfsync always` for "200 = not lost". An instance that dies leaves its
//! claimed events to the others after `AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS` (default 30000) without a
//! heartbeat.
//!
//! With `DATABASE_URL` set (`postgres://user:password@host/database`; it takes precedence
//! over `REDIS_URL` and the SQLite file), the inbox and replay protection are in that Postgres
//! database, on one pool of 40 connections (two instances fit Postgres's default 100), shared
//! by any number of instances like Redis, and the worker's effect commits with the event's
//! acknowledgement:
//! the handler inserts `(event_id, event_type, handled_at)` into the table
//! `authgear_webhook_example_handled` (created at start if missing) in the transaction that marks
//! the event handled, then prints `handled {type} {id}`. Each acknowledged event's row is there
//! exactly once, even across a crash; the line comes after the insert and before the commit, so
//! an attempt whose commit fails prints it once more when retried. Errors never print the URL.
//!
//! With `AUTHGEAR_ADMIN_API_ENDPOINT` (the project's full GraphQL URL, e.g.
//! `https://myapp.authgear.cloud/_api/admin/graphql`), `AUTHGEAR_APP_ID`,
//! `AUTHGEAR_ADMIN_API_KEY_FILE` (the Admin API key's PEM, from the portal) and
//! `AUTHGEAR_ADMIN_API_KEY_ID` set, it catches up from Authgear's audit log into its inbox
//! (`authgear_webhook::catch_up`): at start and then every
//! `AUTHGEAR_WEBHOOK_CATCHUP_INTERVAL` seconds (default 300), each non-blocking event the
//! webhook never brought (the server was down, restarting, or refused it) is stored and
//! handled like a delivered one, with the same `handled {type} {id}` line, once. A wrong key,
//! key ID or app ID stops it at start with one line; an Admin API that cannot be reached is
//! retried. The startup line says `catch-up: every N s` (or `off`).
//!
//! With `ADMIN_ADDR` (e.g. `127.0.0.1:9998`; unset or `off`: no admin listener, so several
//! instances on one machine need no setting), a second listener on that address serves
//! `GET /metrics` (Prometheus's text format: every metric of `authgear_webhook::metrics`,
//! through `metrics-exporter-prometheus`) and `authgear_webhook::admin::AdminService`:
//! `GET /health` (200 when ready, 503 with the reasons: the inbox's store cannot take a
//! write, the worker or the catch-up is not running; a catch-up whose last pass failed is
//! `degraded`, still 200), `GET /inbox/counts`, `GET /inbox/dead` (JSON, paged: `?after=`
//! the `next` of the previous page, `&limit=`), `POST /inbox/dead/{event id}/redrive` and
//! `POST /inbox/dead/redrive` (all). With the inbox off, `/metrics` and `/health` (always
//! ready). The
//! startup line says `admin: http://ADDR,` (the address bound, so `127.0.0.1:0` works)
//! or `admin: off,`. It has no authentication: keep it on loopback or a private network,
//! never where the webhook is public. `authgear-webhook inbox --admin http://ADDR ...`
//! (the command-line tool) reads and re-drives the inbox of a running server through it.
//!
//! `AUTHGEAR_WEBHOOK_LOG=info` (or `error`, `warn`, `debug`, `trace`) writes the crate's log
//! on stderr, each line with the spans it is in: `authgear_webhook.delivery{id=..
//! event_type=..}` while a delivery is answered, `authgear_webhook.handle{id=..
//! event_type=.. attempt=..}` while the worker's handler runs it, so an event is followed
//! from its 200 to its handler by its id (`info`: each event handled, and the dead letters,
//! retries and refusals; `debug`: each delivery stored too). Unset: no log, stdout keeps
//! its one line per request.
//!
//! To watch retries and dead letters: `FAIL_EVENT_TYPES` (comma-separated, e.g.
//! `FAIL_EVENT_TYPES=user.created`) makes the worker's handler fail every event of those
//! types (the line `failed {type} {id} (attempt N)`), and `AUTHGEAR_WEBHOOK_MAX_ATTEMPTS`
//! sets the attempts before a dead letter (default 30, over about 4 days). Retries follow
//! the inbox's default schedule, 2 s after the first failure and doubling: with
//! `AUTHGEAR_WEBHOOK_MAX_ATTEMPTS=1` an event is dead at its first failure, with 3 about
//! 6 s later.
//!
//! Served as a public endpoint should be: the layer's body deadline (10 s) and body budget
//! (32 MiB for all bodies in flight) at their defaults, a 5 s timeout around the handler,
//! a 5 s HTTP/1 header-read timeout (from the connection's start: a connection that sends
//! nothing is closed too), an 8 KiB HTTP/1 read buffer and at most `MAX_CONNECTIONS`
//! connections at once: a connection beyond them is answered 503 with `Retry-After: 1` as
//! soon as it is accepted, and closed, rather than left waiting in the listen queue, where a
//! flood would keep every later connection, Authgear's among them, waiting seconds behind
//! it. A flood of slow bodies then holds at most 32 MiB + 1 024 × (8 KiB + ~16 KiB) = 56 MiB
//! of live heap (see SECURITY.md). SIGTERM or Ctrl-C stops the server gracefully: the
//! listener closes, requests and events in flight finish.

use std::{
    env,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use authgear_webhook::{
    Rejection, Secret, Secrets, VerifySignatureLayer,
    admin::{AdminService, Health},
    catch_up::{AdminApi, AdminApiKey, CatchUp, CatchUpErrorKind},
    event::{Answer, Event, EventRejection, Payload},
    inbox::{
        AckTransaction, Backoff, CancellationToken, Delivery, Inbox, PostgresStore, Receipt,
        SqliteStore, Store, StoreError, Worker,
    },
    replay::{RedisStore, Repeated, ReplayProtection},
    sqlx::{self, PgPool, postgres::PgPoolOptions},
};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    middleware::map_response,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::Semaphore,
};
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

/// How long the handler may take: Authgear waits 5 s for a blocking hook's answer.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; one more is answered `BUSY` and closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// The listen queue: connections accepted by the kernel, waiting for the accept loop (Linux
/// caps it at `net.core.somaxconn`, 4 096 by default).
const LISTEN_BACKLOG: u32 = 4096;
/// The answer to a connection beyond `MAX_CONNECTIONS`, written before its request is read:
/// the 503 the body budget gives when it is full, as HTTP/1.1 (Authgear's requests are).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    content-type: text/plain; charset=utf-8\r\ncontent-length: 20\r\nretry-after: 1\r\n\
    connection: close\r\n\r\ntoo many connections";
/// The most hyper reads ahead per HTTP/1 connection: its least (its default, about 400 KiB,
/// would be what each connection can cost besides the body budget). Authgear's request
/// heads are under 1 KiB, its bodies a few KiB.
const READ_BUFFER: usize = 8 * 1024;

/// The claim added to every access token.
const CLAIM: (&str, &str) = ("https://authgear-webhook.example/plan", "free");

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = install_log() {
        eprintln!("{error}");
        return ExitCode::FAILURE;
    }
    let secrets = match secrets() {
        Ok(secrets) => secrets,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9999".to_owned());

    let verify = VerifySignatureLayer::with_secrets(secrets.clone());
    if secrets.file().is_some() {
        tokio::spawn(report_secrets_file(secrets.clone()));
    }
    // One pool for replay protection and the inbox; none without `DATABASE_URL`.
    let database = match env::var("DATABASE_URL").ok().map(|url| postgres_pool(&url)) {
        None => None,
        Some(Ok(pool)) => Some(pool),
        Some(Err(error)) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let (replay, replay_name) = match open_replay(database.as_ref()).await {
        Ok(replay) => replay,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };

    // The metrics' exporter, before anything is counted: Prometheus's text on the admin
    // listener's `/metrics`.
    let prometheus = match admin_enabled().then(install_prometheus).transpose() {
        Ok(prometheus) => prometheus,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };

    let blocked: Arc<[String]> = env::var("BLOCKED_DOMAINS")
        .unwrap_or_default()
        .split(',')
        .map(|domain| domain.trim().to_ascii_lowercase())
        .filter(|domain| !domain.is_empty())
        .collect();

    let listener = match listen(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| addr.clone(), |local| local.to_string());
    let inbox = match open_inbox(&local, database).await {
        Ok(inbox) => inbox,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };

    let app = Router::new()
        .route(
            "/",
            post(receive).layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                HANDLER_TIMEOUT,
            )),
        )
        .with_state(blocked);
    // A request takes the layers in this order: verify the signature, refuse replays, store
    // non-blocking events in the inbox, then the handler. axum runs the layer added last
    // first, so they are added from the handler outwards.
    let postgres = inbox.as_ref().and_then(|(_, name)| name.postgres.clone());
    let inbox = inbox.map(|(inbox, name)| (inbox, name.name));
    let app = match &inbox {
        Some((inbox, _)) => app.layer(inbox.layer()),
        None => app,
    };
    let app = match &replay {
        Some(protection) => app.layer(protection.layer()),
        None => app,
    };
    let app = app.layer(verify);
    let app = app.layer(map_response(log_rejection));
    let catch_up = match open_catch_up(inbox.as_ref().map(|(inbox, _)| inbox)).await {
        Ok(catch_up) => catch_up,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let mut health = Health::new().secrets(&secrets);
    if let Some((inbox, _)) = &inbox {
        health = health.inbox(inbox);
    }
    let catch_up_name = match catch_up {
        Some((catch_up, interval)) => {
            health = health.catch_up(&catch_up);
            tokio::spawn(catch_up.run(shutdown.clone()));
            format!("every {interval} s")
        }
        None => "off".to_owned(),
    };
    let worker = match inbox.as_ref().map(|(inbox, _)| worker(inbox.clone())) {
        None => None,
        Some(Err(error)) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
        Some(Ok(worker)) => {
            let failing = failing_types();
            Some(match &postgres {
                Some(store) => tokio::spawn(worker.run(
                    store.transactional(move |tx, delivery| {
                        handle_in(tx, delivery, failing.clone())
                    }),
                    shutdown.clone(),
                )),
                None => tokio::spawn(worker.run(
                    move |delivery| handle(delivery, failing.clone()),
                    shutdown.clone(),
                )),
            })
        }
    };
    let admin = match listen_admin().await {
        Ok(admin) => admin,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let admin_name = match admin {
        Some((listener, local)) => {
            let inbox = inbox.as_ref().map(|(inbox, _)| inbox.clone());
            let router = admin_router(inbox, health, prometheus);
            tokio::spawn(serve(listener, router));
            format!("http://{local}")
        }
        None => "off".to_owned(),
    };
    let inbox = inbox.map_or_else(|| "off".to_owned(), |(_, name)| name);

    println!(
        "listening on http://{local} (replay protection: {replay_name}, \
         catch-up: {catch_up_name}, admin: {admin_name}, inbox: {inbox})"
    );
    serve(listener, app).await;
    // The listener is closed: stop claiming, let the handlers in flight finish.
    shutdown.cancel();
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    ExitCode::SUCCESS
}

/// The crate's log on stderr at the level `AUTHGEAR_WEBHOOK_LOG` names (`error` to
/// `trace`; unset, empty or `off`: none), each line with the spans it is in: the delivery's
/// `authgear_webhook.delivery{id=.. event_type=..}`, the handler run's
/// `authgear_webhook.handle{..}`. An exporter for OpenTelemetry would go here.
fn install_log() -> Result<(), String> {
    let level = match env::var("AUTHGEAR_WEBHOOK_LOG") {
        Ok(level) if !level.is_empty() && level != "off" => level,
        _ => return Ok(()),
    };
    let level: tracing_subscriber::filter::LevelFilter = level
        .parse()
        .map_err(|_| "AUTHGEAR_WEBHOOK_LOG: one of error, warn, info, debug, trace or off")?;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|error| format!("cannot install the log: {error}"))
}

/// Whether `ADMIN_ADDR` asks for an admin listener: set, and neither empty nor `off`.
fn admin_enabled() -> bool {
    env::var("ADMIN_ADDR").is_ok_and(|addr| !addr.is_empty() && addr != "off")
}

/// Installs Prometheus's recorder (the crate only emits through the `metrics` facade; the
/// application picks the exporter) and keeps its histograms trimmed.
fn install_prometheus() -> Result<PrometheusHandle, String> {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))?;
    authgear_webhook::metrics::describe();
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(prometheus)
}

/// The admin listener on `ADMIN_ADDR` and the address it is bound to; `None` when it is
/// unset, empty or `off`.
async fn listen_admin() -> Result<Option<(TcpListener, String)>, String> {
    if !admin_enabled() {
        return Ok(None);
    }
    let addr = env::var("ADMIN_ADDR").unwrap_or_default();
    let listener = listen(&addr)
        .await
        .map_err(|error| format!("ADMIN_ADDR: cannot listen on {addr}: {error}"))?;
    let local = listener
        .local_addr()
        .map_or(addr, |local| local.to_string());
    Ok(Some((listener, local)))
}

/// What the admin listener serves: `GET /metrics` (Prometheus's text), and the admin
/// service (health and the live inbox) as the fallback. Without an inbox, only `/health`
/// beside `/metrics`.
fn admin_router(
    inbox: Option<Inbox>,
    health: Health,
    prometheus: Option<PrometheusHandle>,
) -> Router {
    let mut router = Router::new();
    if let Some(prometheus) = prometheus {
        router = router.route(
            "/metrics",
            get(move || {
                let text = prometheus.render();
                async move {
                    let content_type = "text/plain; version=0.0.4; charset=utf-8";
                    ([(axum::http::header::CONTENT_TYPE, content_type)], text)
                }
            }),
        );
    }
    let admin = match inbox {
        Some(inbox) => AdminService::new(inbox).health(health),
        None => AdminService::health_only(health),
    };
    router.fallback_service(admin)
}

/// The webhook's secrets: those listed in the file at `AUTHGEAR_WEBHOOK_SECRET_FILE`, re-read
/// when it changes, or else the one in `AUTHGEAR_WEBHOOK_SECRET`.
fn secrets() -> Result<Secrets, String> {
    match env::var_os("AUTHGEAR_WEBHOOK_SECRET_FILE").filter(|path| !path.is_empty()) {
        Some(path) => Secrets::from_file(path)
            .map_err(|error| format!("AUTHGEAR_WEBHOOK_SECRET_FILE: {error}")),
        None => Secret::from_env("AUTHGEAR_WEBHOOK_SECRET")
            .map(Secrets::new)
            .map_err(|error| {
                format!(
                    "{error}: set it to your Authgear project's webhook signing secret \
                     (or AUTHGEAR_WEBHOOK_SECRET_FILE to a file of secrets)"
                )
            }),
    }
}

/// Says on stderr when the secrets file stops being usable (the last good secrets stay in
/// use) and when it is usable again.
async fn report_secrets_file(secrets: Secrets) {
    let mut reported = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let problem = secrets.problem().map(|problem| problem.to_string());
        if problem != reported {
            match &problem {
                Some(problem) => eprintln!("{problem}: the last good secrets are kept"),
                None => eprintln!("secrets file usable again"),
            }
            reported = problem;
        }
    }
}

/// The settings of the catch-up from Authgear's audit log, all four or none.
const CATCH_UP: [&str; 4] = [
    "AUTHGEAR_ADMIN_API_ENDPOINT",
    "AUTHGEAR_APP_ID",
    "AUTHGEAR_ADMIN_API_KEY_FILE",
    "AUTHGEAR_ADMIN_API_KEY_ID",
];

/// The catch-up into `inbox` and its interval in seconds, when `CATCH_UP` are set; `None`
/// when none is. A wrong key, key ID or app ID is an error here; an Admin API that cannot be
/// reached now is retried by the catch-up.
async fn open_catch_up(inbox: Option<&Inbox>) -> Result<Option<(CatchUp, u64)>, String> {
    let values: Vec<Option<String>> = CATCH_UP
        .iter()
        .map(|name| env::var(name).ok().filter(|value| !value.is_empty()))
        .collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let all = || format!("catch-up: set all of {}", CATCH_UP.join(", "));
    let [Some(endpoint), Some(app_id), Some(key_file), Some(key_id)] =
        <[Option<String>; 4]>::try_from(values).map_err(|_| all())?
    else {
        return Err(all());
    };
    let inbox = inbox.ok_or("catch-up: it needs the inbox (AUTHGEAR_WEBHOOK_INBOX is off)")?;
    let interval = match env::var("AUTHGEAR_WEBHOOK_CATCHUP_INTERVAL") {
        Ok(seconds) => seconds
            .parse::<u64>()
            .ok()
            .filter(|seconds| *seconds > 0)
            .ok_or("AUTHGEAR_WEBHOOK_CATCHUP_INTERVAL: a number of seconds")?,
        Err(_) => 300,
    };
    let key = AdminApiKey::from_pem_file(&key_file, key_id)
        .map_err(|error| format!("AUTHGEAR_ADMIN_API_KEY_FILE: {error}"))?;
    let api = AdminApi::new(&endpoint, app_id, key)
        .map_err(|error| format!("AUTHGEAR_ADMIN_API_ENDPOINT: {error}"))?
        .timeout(Duration::from_secs(10));
    match api.check().await {
        Ok(()) => {}
        Err(error)
            if matches!(
                error.kind(),
                CatchUpErrorKind::Refused | CatchUpErrorKind::Config
            ) =>
        {
            return Err(format!("catch-up: {error}"));
        }
        Err(error) => eprintln!("catch-up: {error}; retried"),
    }
    // The endpoint the layer stores deliveries under: the request path, "/".
    let catch_up = CatchUp::new(inbox, api, "/").interval(Duration::from_secs(interval));
    Ok(Some((catch_up, interval)))
}

/// Listens on `addr` with a listen queue of `LISTEN_BACKLOG` (tokio's `bind` takes 1 024):
/// under a flood of connections, the connects beyond the queue would be dropped and retried
/// by their clients a second or more later, Authgear's among them.
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on HTTP/1.1 and HTTP/2 with the timeouts and limits of the module docs, until
/// SIGTERM or Ctrl-C; then stops accepting and lets the requests in flight finish (at most
/// `HANDLER_TIMEOUT` more). `axum::serve` sets no header-read timeout nor connection limit:
/// hyper-util does it here. The loop never waits for a slot: a connection beyond
/// `MAX_CONNECTIONS` is answered `BUSY` at once, so that the listen queue never holds a
/// flood that later connections would wait behind.
async fn serve(listener: TcpListener, app: Router) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let terminated = terminated();
    tokio::pin!(terminated);
    loop {
        let stream = tokio::select! {
            () = &mut terminated => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: wait rather than spin.
                Err(error) => {
                    eprintln!("accept: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            busy(stream);
            continue;
        };
        // Set when the connection's first request reaches the app. Until then no timeout of
        // hyper's runs (hyper-util reads the first bytes, to tell HTTP/1 from HTTP/2, without
        // one): a client that sent nothing would hold its slot for ever.
        let started = Arc::new(AtomicBool::new(false));
        let service = TowerToHyperService::new(app.clone().map_request({
            let started = started.clone();
            move |request| {
                started.store(true, Ordering::Relaxed);
                request
            }
        }));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(READ_BUFFER);
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            tokio::pin!(connection);
            // A client that breaks off is no server error: nothing to print. One that has not
            // sent a whole request head by `HEADER_READ_TIMEOUT` is closed.
            let first = tokio::time::timeout(HEADER_READ_TIMEOUT, connection.as_mut()).await;
            if first.is_err() && started.load(Ordering::Relaxed) {
                let _ = connection.await;
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(HANDLER_TIMEOUT, graceful.shutdown()).await;
}

/// Answers `BUSY` on a connection beyond `MAX_CONNECTIONS` and closes it, without reading
/// its request and without a task: one write the socket's empty send buffer takes whole (a
/// client whose request is still arriving then sees the answer, then a reset).
fn busy(stream: tokio::net::TcpStream) {
    use std::io::Write;
    if let Ok(mut stream) = stream.into_std() {
        let _ = stream.write(BUSY);
    }
}

/// Which inbox [`open_inbox`] opened.
struct Opened {
    /// How the startup line names it.
    name: String,
    /// The store, when the inbox is in Postgres: its worker runs `handle_in` in the
    /// transaction that acknowledges each event.
    postgres: Option<PostgresStore>,
}

impl Opened {
    fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            postgres: None,
        }
    }
}

/// The example's own table, written by `handle_in`; no unique constraint, so that a
/// second row for an event would show.
const CREATE_HANDLED: &str = "CREATE TABLE IF NOT EXISTS authgear_webhook_example_handled (\
    event_id text not null, event_type text not null, handled_at timestamptz not null)";

/// The pool on the Postgres database at `url` (`DATABASE_URL`), connected lazily. Errors
/// name what failed, never the URL (it holds a password).
fn postgres_pool(url: &str) -> Result<PgPool, String> {
    // The worker's 16 handlers at once, each holding a connection until it commits, plus
    // their heartbeats, and the deliveries arriving meanwhile (two short statements each
    // for replay protection, one for the inbox). Two instances stay within Postgres's
    // default 100 connections.
    PgPoolOptions::new()
        .max_connections(40)
        .connect_lazy(url)
        .map_err(|error| format!("DATABASE_URL: not a Postgres URL ({error})"))
}

/// Replay protection, and how the startup line names it: off (`AUTHGEAR_WEBHOOK_REPLAY=off`),
/// in the Postgres `database`, in the Redis at `REDIS_URL`, or in memory.
async fn open_replay(
    database: Option<&PgPool>,
) -> Result<(Option<ReplayProtection>, &'static str), String> {
    if env::var("AUTHGEAR_WEBHOOK_REPLAY").as_deref() == Ok("off") {
        return Ok((None, "off"));
    }
    if let Some(pool) = database {
        let store = authgear_webhook::replay::PostgresStore::open(pool.clone())
            .await
            .map_err(|error| format!("DATABASE_URL: {error}"))?;
        return Ok((Some(ReplayProtection::new(store)), "postgres"));
    }
    if let Ok(url) = env::var("REDIS_URL") {
        let store =
            RedisStore::open(url.as_str()).map_err(|error| format!("REDIS_URL: {error}"))?;
        return Ok((Some(ReplayProtection::new(store)), "redis"));
    }
    Ok((Some(ReplayProtection::in_memory()), "memory"))
}

/// The inbox in the Postgres database of `pool`, and `CREATE_HANDLED` run there.
async fn open_postgres(pool: PgPool) -> Result<(Inbox, Opened), String> {
    let store = PostgresStore::open(pool.clone())
        .await
        .map_err(|error| format!("DATABASE_URL: {error}"))?;
    sqlx::query(CREATE_HANDLED)
        .execute(&pool)
        .await
        .map_err(|error| format!("DATABASE_URL: cannot create the example's table: {error}"))?;
    let opened = Opened {
        name: "postgres".to_owned(),
        postgres: Some(store.clone()),
    };
    Ok((Inbox::new(store), opened))
}

/// The inbox in the Postgres `database` (`DATABASE_URL`), or named by `REDIS_URL` or
/// `AUTHGEAR_WEBHOOK_INBOX`, in this order,
/// and how the startup line names it; `None` when non-blocking events are handled inline.
///
/// The default file takes one process at a time: a second instance started in the same
/// directory without `AUTHGEAR_WEBHOOK_INBOX` finds it in use and keeps its own file, named
/// after its address, instead (a restarted instance gets the default file back: a process
/// that dies releases it).
async fn open_inbox(
    local: &str,
    database: Option<PgPool>,
) -> Result<Option<(Inbox, Opened)>, String> {
    let setting = env::var("AUTHGEAR_WEBHOOK_INBOX").ok();
    if setting.as_deref() == Some("off") {
        return Ok(None);
    }
    if let Some(pool) = database {
        return open_postgres(pool).await.map(Some);
    }
    if let Ok(url) = env::var("REDIS_URL") {
        // Several instances share one queue; each process is one consumer of the group.
        let store = authgear_webhook::inbox::RedisStore::open(url.as_str())
            .map_err(|error| format!("REDIS_URL: {error}"))?;
        return Ok(Some((Inbox::new(store), Opened::named("redis"))));
    }
    open_sqlite(setting, local)
        .map(|(inbox, name)| Some((inbox, Opened::named(name))))
        .map_err(|error| format!("AUTHGEAR_WEBHOOK_INBOX: {error}"))
}

/// The SQLite inbox: the file `setting` names, or the default file.
fn open_sqlite(setting: Option<String>, local: &str) -> Result<(Inbox, String), StoreError> {
    let (path, store) = match setting {
        Some(path) => {
            let store = SqliteStore::open(&path)?;
            (path, store)
        }
        None => {
            let path = "authgear-webhook-inbox.sqlite3".to_owned();
            match SqliteStore::open(&path) {
                Ok(store) => (path, store),
                Err(error) => {
                    let own = format!("authgear-webhook-inbox-{}.sqlite3", local.replace(':', "-"));
                    eprintln!("{path}: {error}; this instance uses {own}");
                    let store = SqliteStore::open(&own)?;
                    (own, store)
                }
            }
        }
    };
    let store: Arc<dyn Store> = Arc::new(store);
    Ok((Inbox::from_arc(store), format!("sqlite {path}")))
}

/// The inbox's worker; `AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS` sets how long a claim holds
/// without a heartbeat (the default is 30 s), `AUTHGEAR_WEBHOOK_MAX_ATTEMPTS` the attempts
/// before a dead letter (the default schedule's 30).
fn worker(inbox: Inbox) -> Result<Worker, String> {
    let mut worker = Worker::new(inbox);
    if let Ok(Ok(ms)) = env::var("AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS").map(|ms| ms.parse::<u64>()) {
        worker = worker.claim_for(Duration::from_millis(ms));
    }
    if let Ok(attempts) = env::var("AUTHGEAR_WEBHOOK_MAX_ATTEMPTS") {
        let attempts = attempts
            .parse::<u32>()
            .ok()
            .filter(|attempts| *attempts > 0)
            .ok_or("AUTHGEAR_WEBHOOK_MAX_ATTEMPTS: a number of attempts, at least 1")?;
        worker = worker.backoff(Backoff::default().attempts(attempts));
    }
    Ok(worker)
}

/// The event types the worker's handler fails (`FAIL_EVENT_TYPES`, comma-separated).
fn failing_types() -> Arc<[String]> {
    env::var("FAIL_EVENT_TYPES")
        .unwrap_or_default()
        .split(',')
        .map(|event_type| event_type.trim().to_owned())
        .filter(|event_type| !event_type.is_empty())
        .collect()
}

/// Fails `delivery` if its type is one of `failing`, with its line.
fn fail_if(delivery: &Delivery, failing: &[String]) -> Result<(), String> {
    let event = &delivery.event;
    if !failing.iter().any(|failing| failing == event.event_type()) {
        return Ok(());
    }
    println!(
        "failed {} {} (attempt {})",
        event.event_type(),
        event.id,
        delivery.attempt
    );
    Err(format!("FAIL_EVENT_TYPES has {}", event.event_type()))
}

/// The worker's handler: one line per event.
async fn handle(delivery: Delivery, failing: Arc<[String]>) -> Result<(), String> {
    fail_if(&delivery, &failing)?;
    let event = delivery.event;
    println!("handled {} {}", event.event_type(), event.id);
    Ok(())
}

/// The worker's handler on Postgres: the event's row inserted in the transaction that
/// acknowledges it, then its line.
async fn handle_in(
    mut tx: AckTransaction,
    delivery: Delivery,
    failing: Arc<[String]>,
) -> Result<AckTransaction, String> {
    fail_if(&delivery, &failing)?;
    let event = delivery.event;
    sqlx::query(
        "INSERT INTO authgear_webhook_example_handled (event_id, event_type, handled_at) \
         VALUES ($1, $2, now())",
    )
    .bind(&event.id)
    .bind(event.event_type())
    .execute(&mut *tx)
    .await
    .map_err(|error| error.to_string())?;
    println!("handled {} {}", event.event_type(), event.id);
    Ok(tx)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Only verified deliveries get here.
async fn receive(
    State(blocked): State<Arc<[String]>>,
    event: Result<Event, EventRejection>,
) -> Response {
    let event = match event {
        Ok(event) => event,
        Err(rejection) => {
            println!("{} {rejection}", rejection.status().as_u16());
            return rejection.into_response();
        }
    };
    println!("handled {} {}", event.event_type(), event.id);
    if !event.is_blocking() {
        println!("200 {} {}", event.event_type(), event.id);
        return StatusCode::OK.into_response();
    }
    let answer = answer(&event, &blocked);
    let denied = if answer.is_allowed() { "" } else { " (denied)" };
    println!("200 {} {}{denied}", event.event_type(), event.id);
    answer.into_response()
}

/// The answer to a blocking event.
fn answer(event: &Event, blocked: &[String]) -> Answer {
    match &event.payload {
        Payload::UserPreCreate(payload) => {
            let domain = payload
                .user
                .email()
                .and_then(|email| email.rsplit_once('@'))
                .map(|(_, domain)| domain.to_ascii_lowercase());
            if domain.is_some_and(|domain| blocked.contains(&domain)) {
                Answer::deny()
                    .title("Sign-up refused")
                    .reason("This email domain is not accepted.")
                    .into()
            } else {
                Answer::allow()
            }
        }
        // Only fails if the token already has this claim with another value: then leave it.
        Payload::OidcJwtPreCreate(payload) => payload
            .allow()
            .add_claim(CLAIM.0, CLAIM.1)
            .map_or_else(|_| Answer::allow(), Answer::from),
        _ => Answer::allow(),
    }
}

/// Prints why the layer refused a request (it puts the reason in the response extensions),
/// that it answered a repeated delivery with the first answer, or which event the inbox
/// stored.
async fn log_rejection(response: Response) -> Response {
    let status = response.status().as_u16();
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        println!("{status} refused: {rejection}");
    } else if response.extensions().get::<Repeated>().is_some() {
        println!("{status} repeated: the first answer");
    } else if let Some(receipt) = response.extensions().get::<Receipt>() {
        let duplicate = if receipt.duplicate {
            " (duplicate)"
        } else {
            ""
        };
        println!(
            "{status} {} {}{duplicate}",
            receipt.event_type, receipt.key.id
        );
    }
    response
}
