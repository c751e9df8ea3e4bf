//! A real Authgear webhook receiver on plain hyper 1: a `tower::ServiceBuilder` stack with
//! the verifying layer, ending in a `service_fn` handler.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --example hyper_server --features event
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`), HTTP/1.1 and HTTP/2 (prior knowledge) on the
//! same port. `POST /` only: verified blocking events are allowed (`{"is_allowed":true}`),
//! other verified events get 200, a verified body that is not JSON gets 400, and anything
//! not signed with the secret gets 401. One line per request on stdout.

use std::{convert::Infallible, env, process::ExitCode};

use authgear_webhook::{
    Rejection, ResponseBody, Secret, VerifiedBody, VerifySignatureLayer, event::is_blocking_type,
};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

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
/// whichever the client speaks.
pub(crate) async fn serve(listener: TcpListener, secret: Secret) -> std::io::Result<()> {
    // The stack: log refusals, verify, then the handler. Built once; each connection gets a
    // clone (the secret is keyed once, shared behind an `Arc`).
    let service = ServiceBuilder::new()
        .map_response(log_rejection)
        .layer(VerifySignatureLayer::new(secret))
        .service_fn(receive);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {error}");
            }
        });
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
