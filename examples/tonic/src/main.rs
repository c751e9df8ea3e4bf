//! Authgear-style signatures in a tonic server, two ways, in one program.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run -p example-tonic
//! ```
//!
//! - On `GRPC_ADDR` (default `127.0.0.1:50051`): a gRPC server with the verifying layer in
//!   its stack (`Server::builder().layer(..)`). Every call must carry a body signed with the
//!   secret, as a client with `SignRequestLayer` sends; an unsigned or forged call is
//!   refused with HTTP 401, which gRPC clients report as `UNAUTHENTICATED`.
//! - On `ADDR` (default `127.0.0.1:9999`): a gRPC server whose services are untouched, that
//!   also receives Authgear webhooks on `POST /hooks/authgear` (HTTP/1.1 or HTTP/2), with the
//!   layer on that route only. Verified blocking events are allowed
//!   (`{"is_allowed":true}`), other verified events get 200, a verified body that is not JSON
//!   gets 400.
//!
//! Both layers share one body budget (32 MiB for all bodies in flight) and keep the default
//! body deadline (10 s); each server answers within 5 s (`Server::timeout`) and closes an
//! HTTP/1 connection whose head takes over 30 s (tonic's header-read timeout).
//!
//! Both serve the standard gRPC health service (`grpc.health.v1.Health`), whose code ships
//! pre-generated in `tonic-health`: no `protoc` needed.

use std::{env, process::ExitCode, time::Duration};

use authgear_webhook::{BodyBudget, Secret, VerifySignatureLayer, event::is_blocking_type};
use axum::{
    Json,
    body::Bytes,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

#[tokio::main]
async fn main() -> ExitCode {
    let secret = match Secret::from_env("AUTHGEAR_WEBHOOK_SECRET") {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("{error}: set it to your Authgear project's webhook signing secret");
            return ExitCode::FAILURE;
        }
    };
    let grpc_addr = env::var("GRPC_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    let addr = env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9999".to_owned());
    let (Some(signed), Some(mixed)) = (listen(&grpc_addr).await, listen(&addr).await) else {
        return ExitCode::FAILURE;
    };
    println!("signed gRPC on http://{}", local(&signed, &grpc_addr));
    println!(
        "gRPC and webhooks (POST /hooks/authgear) on http://{}",
        local(&mixed, &addr)
    );

    // One budget for both layers: together they hold at most its 32 MiB of bodies.
    let budget = BodyBudget::default();
    let result = tokio::try_join!(
        serve_signed_grpc(signed, secret.clone(), budget.clone()),
        serve_grpc_and_webhooks(mixed, secret, budget),
    );
    if let Err(error) = result {
        eprintln!("server error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// How long a call may take, body and handler: Authgear waits 5 s for a blocking hook.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A gRPC server whose every call must be signed: the layer wraps all its services.
pub(crate) async fn serve_signed_grpc(
    listener: TcpListener,
    secret: Secret,
    budget: BodyBudget,
) -> Result<(), tonic::transport::Error> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    Server::builder()
        .timeout(TIMEOUT)
        // The layer hands tonic's router a `VerifiedBody`, which it takes like any body.
        .layer(VerifySignatureLayer::new(secret).body_budget(budget))
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
}

/// A gRPC server with its services untouched, plus a webhook route with the layer on that
/// route only.
pub(crate) async fn serve_grpc_and_webhooks(
    listener: TcpListener,
    secret: Secret,
    budget: BodyBudget,
) -> Result<(), tonic::transport::Error> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let router = Routes::new(health).into_axum_router().route(
        "/hooks/authgear",
        post(receive).layer(VerifySignatureLayer::new(secret).body_budget(budget)),
    );
    Server::builder()
        .timeout(TIMEOUT)
        // Authgear delivers over HTTP/1.1 unless it negotiates HTTP/2 over TLS.
        .accept_http1(true)
        .add_routes(Routes::from(router))
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
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
    if is_blocking_type(kind) {
        Json(json!({ "is_allowed": true })).into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

async fn listen(addr: &str) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            None
        }
    }
}

fn local(listener: &TcpListener, addr: &str) -> String {
    listener
        .local_addr()
        .map_or_else(|_| addr.to_owned(), |local| local.to_string())
}
