//! A real Authgear webhook receiver: `POST /` behind the verifying layer, on the crate's
//! typed events.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --example axum_server
//! ```
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
//! not signed with the secret 401. One line per request on stdout.
//!
//! Replay protection is on: a delivery older than 5 minutes, or one already received, gets
//! 401. Ids are remembered in memory, or in Redis when `REDIS_URL` is set (for several
//! instances behind a load balancer). `AUTHGEAR_WEBHOOK_REPLAY=off` turns it off, e.g. to
//! replay a captured delivery while debugging.
//!
//! Non-blocking events go through the durable inbox (feature `inbox`): each is stored and
//! synced, answered 200 (the line `200 {type} {id}`), then handed to a worker that prints
//! `handled {type} {id}` (retrying with backoff if it fails). The inbox is the SQLite file
//! named by `AUTHGEAR_WEBHOOK_INBOX` (default `authgear-webhook-inbox.sqlite3` in the
//! current directory; one process per file); `AUTHGEAR_WEBHOOK_INBOX=off` handles them
//! inline as before. With `REDIS_URL` set, the inbox is in that Redis (Streams, one
//! consumer group): any number of instances share one queue, and each event is handled by
//! one of them; run Redis with `appendonly yes` and `appendfsync always` for "200 = not
//! lost". An instance that dies leaves its claimed events to the others after
//! `AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS` (default 30000) without a heartbeat. SIGTERM or Ctrl-C
//! stops the server gracefully: the listener closes, events in flight finish.

use std::{env, process::ExitCode};

use std::sync::Arc;

use tower::Layer;

use authgear_webhook::inbox::{
    CancellationToken, Delivery, Inbox, Receipt, SqliteStore, Store, StoreError, Worker,
};
use std::time::Duration;

use authgear_webhook::{
    Rejection, Secret, VerifySignatureLayer,
    event::{Answer, Event, EventRejection, Payload},
    replay::{RedisStore, ReplayProtection},
};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    middleware::map_response,
    response::{IntoResponse, Response},
    routing::post,
};

/// The claim added to every access token.
const CLAIM: (&str, &str) = ("https://authgear-webhook.example/plan", "free");

#[tokio::main]
async fn main() -> ExitCode {
    let secret = match Secret::from_env("AUTHGEAR_WEBHOOK_SECRET") {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("{error}: set it to your Authgear project's webhook signing secret");
            return ExitCode::FAILURE;
        }
    };
    let addr = env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9999".to_owned());

    let mut verify = VerifySignatureLayer::new(secret);
    let replay = match (
        env::var("AUTHGEAR_WEBHOOK_REPLAY").as_deref(),
        env::var("REDIS_URL"),
    ) {
        (Ok("off"), _) => "off",
        (_, Ok(url)) => match RedisStore::open(url.as_str()) {
            Ok(store) => {
                verify = verify.replay_protection(ReplayProtection::new(store));
                "redis"
            }
            Err(error) => {
                eprintln!("REDIS_URL: {error}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            verify = verify.replay_protection(ReplayProtection::in_memory());
            "memory"
        }
    };

    let blocked: Arc<[String]> = env::var("BLOCKED_DOMAINS")
        .unwrap_or_default()
        .split(',')
        .map(|domain| domain.trim().to_ascii_lowercase())
        .filter(|domain| !domain.is_empty())
        .collect();

    let router = Router::new().route("/", post(receive)).with_state(blocked);
    let (app, inbox) = match open_inbox() {
        // The inbox sits inside the verifying layer: it stores verified deliveries only.
        Ok(Some((inbox, name))) => (
            Router::new().fallback_service(verify.layer(inbox.layer().layer(router))),
            Some((inbox, name)),
        ),
        Ok(None) => (router.layer(verify), None),
        Err(error) => {
            eprintln!("AUTHGEAR_WEBHOOK_INBOX: {error}");
            return ExitCode::FAILURE;
        }
    };
    let app = app.layer(map_response(log_rejection));
    let shutdown = CancellationToken::new();
    let worker = inbox
        .as_ref()
        .map(|(inbox, _)| tokio::spawn(worker(inbox.clone()).run(handle, shutdown.clone())));
    let inbox = inbox.map_or_else(|| "off".to_owned(), |(_, name)| name);

    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| addr.clone(), |local| local.to_string());
    println!("listening on http://{local} (replay protection: {replay}, inbox: {inbox})");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(terminated())
        .await;
    // The listener is closed: stop claiming, let the handlers in flight finish.
    shutdown.cancel();
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    if let Err(error) = served {
        eprintln!("server error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The inbox named by `AUTHGEAR_WEBHOOK_INBOX`, and how the startup line names it; `None`
/// when non-blocking events are handled inline.
fn open_inbox() -> Result<Option<(Inbox, String)>, StoreError> {
    let setting = env::var("AUTHGEAR_WEBHOOK_INBOX").ok();
    if setting.as_deref() == Some("off") {
        return Ok(None);
    }
    if let Ok(url) = env::var("REDIS_URL") {
        // Several instances share one queue; each process is one consumer of the group.
        let store = authgear_webhook::inbox::RedisStore::open(url.as_str())?;
        return Ok(Some((Inbox::new(store), "redis".to_owned())));
    }
    let path = setting.unwrap_or_else(|| "authgear-webhook-inbox.sqlite3".to_owned());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    Ok(Some((Inbox::from_arc(store), format!("sqlite {path}"))))
}

/// The inbox's worker; `AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS` sets how long a claim holds
/// without a heartbeat (the default is 30 s).
fn worker(inbox: Inbox) -> Worker {
    let worker = Worker::new(inbox);
    match env::var("AUTHGEAR_WEBHOOK_INBOX_CLAIM_MS").map(|ms| ms.parse::<u64>()) {
        Ok(Ok(ms)) => worker.claim_for(Duration::from_millis(ms)),
        _ => worker,
    }
}

/// The worker's handler: one line per event.
async fn handle(delivery: Delivery) -> Result<(), std::convert::Infallible> {
    let event = delivery.event;
    println!("handled {} {}", event.event_type(), event.id);
    Ok(())
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
/// or which event the inbox stored.
async fn log_rejection(response: Response) -> Response {
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        println!("{} refused: {rejection}", response.status().as_u16());
    }
    if let Some(receipt) = response.extensions().get::<Receipt>() {
        let duplicate = if receipt.duplicate {
            " (duplicate)"
        } else {
            ""
        };
        println!(
            "{} {} {}{duplicate}",
            response.status().as_u16(),
            receipt.event_type,
            receipt.key.id
        );
    }
    response
}
