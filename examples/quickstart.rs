//! The smallest receiver: one axum route behind the verifying layer, on typed events.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --features axum --example quickstart
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`). `POST /` allows every blocking event
//! (`{"is_allowed":true}`) and prints the type and id of the others; a body not signed with
//! the secret gets 401. `axum_server` is the same receiver served as a public endpoint
//! should be.

use authgear_webhook::{
    Secret, VerifySignatureLayer,
    event::{Answer, Event},
};
use axum::{Router, routing::post};

async fn receive(event: Event) -> Answer {
    if !event.is_blocking() {
        println!("{} {}", event.event_type(), event.id);
    }
    // Authgear ignores the body of an answer to a non-blocking event.
    Answer::allow()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = Secret::from_env("AUTHGEAR_WEBHOOK_SECRET")?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9999".to_owned());
    let app = Router::new()
        .route("/", post(receive))
        .layer(VerifySignatureLayer::new(secret));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
