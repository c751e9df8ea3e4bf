//! A real Authgear webhook receiver: `POST /` behind the verifying layer, on the crate's
//! typed events.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --example axum_server --features axum,replay,redis
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

use std::{env, process::ExitCode};

use std::sync::Arc;

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

    let app = Router::new()
        .route("/", post(receive))
        .with_state(blocked)
        .layer(verify)
        .layer(map_response(log_rejection));

    let listener = match tokio::net::TcpListener::bind(&addr).await {
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
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("server error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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

/// Prints why the layer refused a request: it puts the reason in the response extensions.
async fn log_rejection(response: Response) -> Response {
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        println!("{} refused: {rejection}", response.status().as_u16());
    }
    response
}
