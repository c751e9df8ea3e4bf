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
//! without running the handler. Deliveries are remembered in memory, or in Redis when
//! `REDIS_URL` is set (for several instances behind a load balancer).
//! `AUTHGEAR_WEBHOOK_REPLAY=off` turns it off, e.g. to replay a captured delivery while
//! debugging.
//!
//! Served as a public endpoint should be: the layer's body deadline (10 s) and body budget
//! (32 MiB for all bodies in flight) at their defaults, a 5 s timeout around the handler,
//! a 5 s HTTP/1 header-read timeout, an 8 KiB HTTP/1 read buffer and at most
//! `MAX_CONNECTIONS` connections at once (the rest wait in the listen queue). A flood of
//! slow bodies then holds at most 32 MiB + 1 024 × (8 KiB + ~16 KiB) = 56 MiB of live heap
//! (see SECURITY.md).

use std::{env, process::ExitCode};

use std::{sync::Arc, time::Duration};

use authgear_webhook::{
    Rejection, Secret, VerifySignatureLayer,
    event::{Answer, Event, EventRejection, Payload},
    replay::{RedisStore, Repeated, ReplayProtection},
};
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    middleware::map_response,
    response::{IntoResponse, Response},
    routing::post,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower_http::timeout::TimeoutLayer;

/// How long the handler may take: Authgear waits 5 s for a blocking hook's answer.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the listen queue until one closes.
const MAX_CONNECTIONS: usize = 1024;
/// The most hyper reads ahead per HTTP/1 connection: its least (its default, about 400 KiB,
/// would be what each connection can cost besides the body budget). Authgear's request
/// heads are under 1 KiB, its bodies a few KiB.
const READ_BUFFER: usize = 8 * 1024;

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

    let app = Router::new()
        .route(
            "/",
            post(receive).layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                HANDLER_TIMEOUT,
            )),
        )
        .with_state(blocked)
        .layer(verify)
        .layer(map_response(log_rejection));

    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on http://{local} (replay protection: {replay})"),
        Err(_) => println!("listening on http://{addr} (replay protection: {replay})"),
    }
    serve(listener, app).await;
    ExitCode::SUCCESS
}

/// Serves `app` on HTTP/1.1 and HTTP/2 with the timeouts and limits of the module docs.
/// `axum::serve` sets no header-read timeout nor connection limit: hyper-util does it here.
async fn serve(listener: TcpListener, app: Router) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: wait rather than spin.
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(READ_BUFFER);
            // A client that breaks off is no server error: nothing to print.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
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
/// or that it answered a repeated delivery with the first answer.
async fn log_rejection(response: Response) -> Response {
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        println!("{} refused: {rejection}", response.status().as_u16());
    } else if response.extensions().get::<Repeated>().is_some() {
        println!("{} repeated: the first answer", response.status().as_u16());
    }
    response
}
