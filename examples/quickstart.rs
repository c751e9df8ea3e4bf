//! The smallest receiver: one axum route behind the verifying layer, on typed events.
//!
//! ```sh
//! AUTHGEAR_WEBHOOK_SECRET=... cargo run --features axum --example quickstart
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:9999`). `POST /` denies a sign-up from one email
//! domain, prints each new user's id and allows the rest; a body not signed with the secret
//! gets 401. The README shows this file as it is (a test keeps them equal). `axum_server`
//! is a receiver served as a public endpoint should be.

use authgear_webhook::{
    Secret, VerifySignatureLayer,
    event::{Answer, Event, Payload},
};
use axum::{Router, routing::post};

/// Only deliveries signed with the secret get here; anything else was answered 401.
async fn authgear_hook(event: Event) -> Answer {
    match &event.payload {
        Payload::UserPreCreate(sign_up) if sign_up.user.email().is_some_and(refused) => {
            Answer::deny().reason("Domain not accepted").into()
        }
        Payload::UserCreated(created) => {
            println!("new user {}", created.user.id);
            Answer::allow()
        }
        // Allow the rest (Authgear ignores the body of an answer to a non-blocking event).
        _ => Answer::allow(),
    }
}

fn refused(email: &str) -> bool {
    email.ends_with("@spam.example")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = Secret::from_env("AUTHGEAR_WEBHOOK_SECRET")?;
    let app = Router::new()
        .route("/", post(authgear_hook))
        .layer(VerifySignatureLayer::new(secret));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9999".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
