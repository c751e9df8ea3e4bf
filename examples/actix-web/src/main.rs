//! A real Authgear webhook receiver on actix-web 4, with the crate's [`Verifier`] instead of
//! the tower layer: the same answers as `axum_server`'s core.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run -p example-actix-web
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`). `POST /` only: verified blocking events
//! are allowed (`{"is_allowed":true}`), other verified events get 200, a verified body that
//! is not an Authgear event gets 400. Refusals are the layer's, with its short messages: 401
//! for a missing, malformed or wrong signature, 413 for a body above 1 MiB (at once when
//! `Content-Length` says so, otherwise as soon as the bytes read cross it: the payload is
//! hashed chunk by chunk as it arrives and never kept beyond the limit), 400 for a body
//! that breaks off. One line per request on stdout.
//!
//! Served as a public endpoint should be, with the bounds the tower layer keeps by default:
//! a 10 s deadline for the body (408), one 32 MiB [`BodyBudget`] for the bodies of all
//! requests in flight (503 with `Retry-After` when it is full, at once), a 5 s timeout
//! around the handler, a 5 s deadline for the request head (`client_request_timeout`) and
//! at most 1 024 connections per worker. A flood of slow bodies then holds at most
//! 32 MiB + connections × actix's own per-connection buffers.

use std::{env, process::ExitCode, time::Duration};

use actix_web::rt::time::timeout;
use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    http::{StatusCode, header},
    web,
};
use authgear_webhook::{
    BodyBudget, Rejection, RejectionKind, SIGNATURE_HEADER, Secret, Verifier, event::Event,
};
use futures_util::StreamExt;

/// The largest body accepted: the layer's default.
const BODY_LIMIT: usize = 1024 * 1024;
/// How long a body may take to arrive: the layer's default (Authgear writes a body in one
/// go and waits 5 s for a blocking answer).
const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// How long the handler may take once the body is verified.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once, per worker.
const MAX_CONNECTIONS: usize = 1024;

fn main() -> ExitCode {
    let secret = match Secret::from_env("AUTHGEAR_WEBHOOK_SECRET") {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("{error}: set it to your Authgear project's webhook signing secret");
            return ExitCode::FAILURE;
        }
    };
    let addr = env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9999".to_owned());
    // Keyed once; every worker shares it, and one budget for all their bodies.
    let verifier = web::Data::new(Verifier::new(secret));
    let budget = web::Data::new(BodyBudget::default());

    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(verifier.clone())
                .app_data(budget.clone())
                .route("/", web::post().to(receive))
        })
        .client_request_timeout(HEADER_READ_TIMEOUT)
        .max_connections(MAX_CONNECTIONS)
        .bind(&addr);
        let server = match server {
            Ok(server) => server,
            Err(error) => {
                eprintln!("cannot listen on {addr}: {error}");
                return ExitCode::FAILURE;
            }
        };
        match server.addrs().first() {
            Some(local) => println!("listening on http://{local}"),
            None => println!("listening on http://{addr}"),
        }
        if let Err(error) = server.run().await {
            eprintln!("server error: {error}");
            return ExitCode::FAILURE;
        }
        ExitCode::SUCCESS
    })
}

/// Verifies the delivery while reading it, then answers it.
async fn receive(
    request: HttpRequest,
    payload: web::Payload,
    verifier: web::Data<Verifier>,
    budget: web::Data<BodyBudget>,
) -> HttpResponse {
    // The room the body holds in the budget goes back when `room` is dropped, whichever
    // way this handler ends.
    let mut room = budget.reserve();
    let read = verified_body(&request, payload, &verifier, &mut room);
    let body = match timeout(BODY_DEADLINE, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(kind)) => return refuse(kind),
        Err(_) => return refuse(RejectionKind::BodyDeadline),
    };
    match timeout(HANDLER_TIMEOUT, answer(&body)).await {
        Ok(response) => response,
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// The answer to a verified body.
async fn answer(body: &[u8]) -> HttpResponse {
    let event: Event = match serde_json::from_slice(body) {
        Ok(event) => event,
        Err(_) => {
            let message = "body is not a valid Authgear event";
            println!("400 {message}");
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(message);
        }
    };
    println!("200 {} {}", event.event_type(), event.id);
    if event.is_blocking() {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"is_allowed":true}"#)
    } else {
        HttpResponse::Ok().finish()
    }
}

/// The body, once its signature is checked; the layer's rules, in the layer's order. `room`
/// covers what the buffer holds as the body arrives.
async fn verified_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    verifier: &Verifier,
    room: &mut authgear_webhook::BodyReservation,
) -> Result<Vec<u8>, RejectionKind> {
    // 1. One signature header, well formed, before anything is read.
    let mut values = request.headers().get_all(SIGNATURE_HEADER.as_str());
    let signature = match (values.next(), values.next()) {
        (Some(value), None) => value.as_bytes(),
        (None, _) => b"",
        (Some(_), Some(_)) => return Err(RejectionKind::MalformedSignature),
    };
    Verifier::check_format(signature)?;

    // 2. A body announced above the limit is refused at once.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(RejectionKind::BodyTooLarge);
    }

    // 3. Each chunk is hashed as it arrives and kept, never past the limit, once the
    //    budget has room for what the buffer will then hold.
    let mut verification = verifier.start();
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| RejectionKind::BodyUnreadable)?;
        if chunk.len() > BODY_LIMIT - body.len() {
            return Err(RejectionKind::BodyTooLarge);
        }
        let needed = body.len() + chunk.len();
        if needed > body.capacity() {
            let capacity = needed.max(body.capacity() * 2).min(BODY_LIMIT);
            room.cover(capacity)?;
            body.reserve_exact(capacity - body.len());
        }
        verification.update(&chunk);
        body.extend_from_slice(&chunk);
    }

    // 4. The signature against every accepted secret, in constant time.
    let _verified = verification.finish(signature)?;
    Ok(body)
}

/// The layer's answer to `kind`: its status and short plain-text message (and
/// `Retry-After` when the body budget is full, as the layer sends).
fn refuse(kind: RejectionKind) -> HttpResponse {
    let rejection = Rejection::from(kind);
    let status = rejection.status().as_u16();
    println!("{status} refused: {rejection}");
    let mut response =
        HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    if kind == RejectionKind::BudgetExhausted {
        response.insert_header((header::RETRY_AFTER, "1"));
    }
    response
        .content_type("text/plain; charset=utf-8")
        .body(rejection.to_string())
}
