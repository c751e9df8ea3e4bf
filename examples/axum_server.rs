//! A real Authgear webhook receiver: `POST /` behind the verifying layer.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --example axum_server
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`). Verified blocking events are allowed
//! (`{"is_allowed":true}`), other verified events get 200, a verified body that is not JSON
//! gets 400, and anything not signed with the secret gets 401. One line per request on
//! stdout.
//!
//! Replay protection is on: a delivery older than 5 minutes, or one already received, gets
//! 401. Ids are remembered in memory, or in Redis when `REDIS_URL` is set (for several
//! instances behind a load balancer). `AUTHGEAR_WEBHOOK_REPLAY=off` turns it off, e.g. to
//! replay a captured delivery while debugging.

use std::{env, process::ExitCode};

use authgear_webhook::{
    Rejection, Secret, VerifySignatureLayer,
    replay::{RedisStore, ReplayProtection},
};
use axum::{
    Json, Router,
    body::Bytes,
    http::StatusCode,
    middleware::map_response,
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

/// The events Authgear waits for an answer to.
const BLOCKING: &[&str] = &[
    "user.pre_create",
    "user.profile.pre_update",
    "user.pre_schedule_deletion",
    "user.pre_schedule_anonymization",
    "oidc.jwt.pre_create",
    "oidc.id_token.pre_create",
    "authentication.pre_initialize",
    "authentication.post_identified",
    "authentication.pre_authenticated",
];

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

    let app = Router::new()
        .route("/", post(receive))
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
async fn receive(body: Bytes) -> Response {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        println!("400 verified body is not JSON");
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let kind = event["type"].as_str().unwrap_or("(no type)");
    let id = event["id"].as_str().unwrap_or("(no id)");
    println!("200 {kind} {id}");
    if BLOCKING.contains(&kind) {
        Json(json!({ "is_allowed": true })).into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// Prints why the layer refused a request: it puts the reason in the response extensions.
async fn log_rejection(response: Response) -> Response {
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        println!("{} refused: {rejection}", response.status().as_u16());
    }
    response
}
