//! Health and the live inbox, as a tower service for a private address (feature `inbox`).
//!
//! [`AdminService`] is a `Service<http::Request<B>>` (any body: it reads none) that
//! answers JSON on these routes, relative to where the application mounts it:
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /health` | 200 `{"ready":true,"status":"ok","checks":[...]}` when ready, 503 with each failing check's `reason` when not ([`Health`]) |
//! | `GET /inbox/counts` | `{"queued":0,"in_flight":0,"dead":1,"done":7,"bytes":24576}` ([`Inbox::counts`](crate::inbox::Inbox::counts), [`Inbox::size`](crate::inbox::Inbox::size)) |
//! | `GET /inbox/dead?after=CURSOR&limit=N` | `{"dead":[{"endpoint":"/","id":"0001","type":"user.created","attempts":30,"died_at":"2026-01-02T03:04:05.678Z","last_error":"..."}],"next":CURSOR}`: up to `limit` (default 100, at most 1000) dead letters in key order (endpoint, then id); a page is full (`limit`) unless it is the last; `next` is `null` on the last page, else the `after` of the next (the last key's endpoint and id, each hex-encoded, joined by a dot: `2f.30303031` after `/`, `0001`) |
//! | `POST /inbox/dead/{id}/redrive?endpoint=E` | queues the dead letter `id` (percent-encoded) of endpoint `E` again, its attempts reset: `{"redriven":[{"endpoint":"/","id":"0001"}],"next":null}`; without `endpoint`, the one endpoint `id` is dead on (409 with the `endpoints` if several) |
//! | `POST /inbox/dead/redrive?endpoint=E&after=CURSOR&limit=N` | looks at up to `limit` (default and at most 1000) dead letters after `after`, as a page of `/inbox/dead`, and queues those of `E` (every one, without it) again ([`Inbox::redrive_dead`](crate::inbox::Inbox::redrive_dead)): `{"redriven":[...],"next":CURSOR}`, `next` as `/inbox/dead`'s. To re-drive them all, call again with `after` set to `next` until it is `null`: once through, even while a failing handler kills the re-driven ones again at once (they sort before `next`) |
//!
//! Statuses: 404 for an unknown route or dead letter, 405 (with `Allow`) for another
//! method, 400 for a bad query (an unknown parameter, a `limit` out of range, a cursor this
//! service did not give), 503 with a short `error` when the store cannot answer: it fails, or
//! a call to it takes longer than the service's [`timeout`](AdminService::timeout) (5 s by
//! default; `/health`: the [`Health::timeout`]). Every error body is `{"error":"..."}`;
//! nothing is cached (`Cache-Control: no-store`).
//!
//! # Security
//!
//! **Mount it on a private address, never on the webhook's route or listener.** It needs
//! no signature and checks no credential: whoever reaches it reads event ids, types and
//! the handler's error messages (the `last_error` of a dead letter, the handler's own
//! words, cut to 500 characters: never put secrets in them), and can re-drive events.
//! Bind it to loopback or an internal network, or put your own authentication layer in
//! front. What it shows of the stores is their short error messages: never a URL, a
//! password or an event's body.
//!
//! # Example
//!
//! With axum, on a listener of its own: the service is the fallback, so that other
//! routes (`/metrics`) sit beside it.
//!
//! ```
//! use authgear_webhook::{admin::AdminService, inbox::{Inbox, SqliteStore}};
//! use axum::{body::Body, http::{Request, StatusCode}, routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("admin-mod-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3"))?);
//! let admin = Router::new()
//!     .route("/metrics", get(|| async { "" }))
//!     .fallback_service(AdminService::new(inbox.clone()));
//! // Then: axum::serve(TcpListener::bind("127.0.0.1:9998").await?, admin)
//!
//! let dead = Request::get("/inbox/dead?limit=10").body(Body::empty())?;
//! assert_eq!(admin.clone().oneshot(dead).await?.status(), StatusCode::OK);
//! // No worker runs for this inbox: not ready.
//! let health = Request::get("/health").body(Body::empty())?;
//! assert_eq!(admin.clone().oneshot(health).await?.status(), StatusCode::SERVICE_UNAVAILABLE);
//! let unknown = Request::post("/inbox/dead/0001/redrive").body(Body::empty())?;
//! assert_eq!(admin.oneshot(unknown).await?.status(), StatusCode::NOT_FOUND);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! Under a prefix, `Router::nest_service("/admin", AdminService::new(inbox))`: axum strips
//! the prefix, and the routes above follow it.

mod body;
mod health;
mod request;
mod service;

pub use self::{
    body::AdminBody,
    health::{Check, Health, HealthReport, Status},
    service::{AdminService, ResponseFuture},
};
