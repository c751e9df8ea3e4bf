//! A real Authgear webhook receiver on plain hyper 1: a `tower::ServiceBuilder` stack with
//! the verifying layer, ending in a `service_fn` handler.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --features event --example hyper_server
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`), HTTP/1.1 and HTTP/2 (prior knowledge) on the
//! same port. `POST /` only: verified blocking events are allowed (`{"is_allowed":true}`),
//! other verified events get 200, a verified body that is not JSON gets 400, and anything
//! not signed with the secret gets 401. One line per request on stdout.
//!
//! Served as a public endpoint should be: the layer's body deadline (10 s) and body budget
//! (32 MiB) at their defaults, a 5 s timeout around the handler, a 5 s HTTP/1 header-read
//! timeout (from the connection's start: a connection that sends nothing is closed too), an
//! 8 KiB HTTP/1 read buffer and at most 1 024 connections at once: one more is
//! answered 503 with `Retry-After: 1` as soon as it is accepted, and closed, rather than
//! left in the listen queue, where a flood would keep every later connection waiting.

use std::{
    convert::Infallible,
    env,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use authgear_webhook::{
    Rejection, ResponseBody, Secret, VerifiedBody, VerifySignatureLayer, event::is_blocking_type,
};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use serde_json::Value;
use tokio::{net::TcpListener, sync::Semaphore};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::timeout::TimeoutLayer;

/// How long the handler may take: Authgear waits 5 s for a blocking hook's answer.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; one more is answered `BUSY` and closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// The answer to a connection beyond `MAX_CONNECTIONS`, written before its request is read:
/// the 503 the body budget gives when it is full, as HTTP/1.1 (Authgear's requests are).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    content-type: text/plain; charset=utf-8\r\ncontent-length: 20\r\nretry-after: 1\r\n\
    connection: close\r\n\r\ntoo many connections";
/// The most hyper reads ahead per HTTP/1 connection (its default is about 400 KiB).
const READ_BUFFER: usize = 8 * 1024;

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

    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on http://{local}"),
        Err(_) => println!("listening on http://{addr}"),
    }
    if let Err(error) = serve(listener, secret).await {
        eprintln!("server error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Accepts connections until the listener fails, each served with HTTP/1.1 or HTTP/2,
/// whichever the client speaks. The loop never waits for a slot: a connection beyond
/// `MAX_CONNECTIONS` is answered `BUSY` at once.
pub(crate) async fn serve(listener: TcpListener, secret: Secret) -> std::io::Result<()> {
    // The stack: log refusals, verify, then the handler. Built once; each connection gets a
    // clone (the secret is keyed once, shared behind an `Arc`).
    let service = ServiceBuilder::new()
        .map_response(log_rejection)
        .layer(VerifySignatureLayer::new(secret))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            HANDLER_TIMEOUT,
        ))
        .service_fn(receive);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = listener.accept().await?;
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            busy(stream);
            continue;
        };
        // Set when the connection's first request reaches the stack. Until then no timeout of
        // hyper's runs (hyper-util reads the first bytes, to tell HTTP/1 from HTTP/2, without
        // one): a client that sent nothing would hold its slot for ever.
        let started = Arc::new(AtomicBool::new(false));
        let service = TowerToHyperService::new(service.clone().map_request({
            let started = started.clone();
            move |request| {
                started.store(true, Ordering::Relaxed);
                request
            }
        }));
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(READ_BUFFER);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // One that has not sent a whole request head by `HEADER_READ_TIMEOUT` is closed.
            let result = match tokio::time::timeout(HEADER_READ_TIMEOUT, connection.as_mut()).await
            {
                Ok(result) => result,
                Err(_) if started.load(Ordering::Relaxed) => connection.await,
                Err(_) => Ok(()),
            };
            if let Err(error) = result {
                eprintln!("connection error: {error}");
            }
            drop(permit);
        });
    }
}

/// Answers `BUSY` on a connection beyond `MAX_CONNECTIONS` and closes it, without reading
/// its request and without a task: one write the socket's empty send buffer takes whole.
fn busy(stream: tokio::net::TcpStream) {
    use std::io::Write;
    if let Ok(mut stream) = stream.into_std() {
        let _ = stream.write(BUSY);
    }
}

/// Only verified deliveries get here.
async fn receive(request: Request<VerifiedBody>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/" {
        return Ok(answer(StatusCode::NOT_FOUND, "not found"));
    }
    if request.method() != Method::POST {
        return Ok(answer(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let body = request.into_body().into_bytes();
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        println!("400 verified body is not JSON");
        return Ok(answer(StatusCode::BAD_REQUEST, "body is not JSON"));
    };
    let kind = event["type"].as_str().unwrap_or("(no type)");
    let id = event["id"].as_str().unwrap_or("(no id)");
    println!("200 {kind} {id}");
    if is_blocking_type(kind) {
        let mut response = Response::new(Full::from(r#"{"is_allowed":true}"#));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    } else {
        Ok(Response::new(Full::default()))
    }
}

fn answer(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(message));
    *response.status_mut() = status;
    response
}

/// Prints why the layer refused a request: it puts the reason in the response extensions.
fn log_rejection<B>(response: Response<ResponseBody<B>>) -> Response<ResponseBody<B>> {
    if let Some(rejection) = response.extensions().get::<Rejection>() {
        println!("{} refused: {rejection}", response.status().as_u16());
    }
    response
}
