//! The admin service: health and the live inbox, as JSON over HTTP.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use serde_json::{Value, json};
use tower_service::Service;

use super::{
    AdminBody, Health,
    request::{MAX_LIMIT, Query, Route, cursor},
};
use crate::inbox::{DeadLetter, EventKey, Inbox, StoreError};

/// Dead letters listed by default on a page.
const DEFAULT_LIMIT: usize = 100;
/// The longest `last_error` shown, in characters: the handler's own words, cut.
const MAX_ERROR: usize = 500;
/// How long one store call may take by default: [`AdminService::timeout`].
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// A tower service answering the readiness check and the live inbox as JSON: see the
/// [module docs](super) for its routes. Mount it on a private address, never beside the
/// webhook.
///
/// ```
/// use authgear_webhook::{admin::AdminService, inbox::{Inbox, SqliteStore}};
/// use axum::{body::Body, http::{Request, StatusCode}};
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("admin-service-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let inbox = Inbox::new(SqliteStore::open(dir.join("inbox.sqlite3"))?);
/// let admin = AdminService::new(inbox);
///
/// let counts = admin.clone().oneshot(Request::get("/inbox/counts").body(Body::empty())?).await?;
/// assert_eq!(counts.status(), StatusCode::OK);
/// let json: serde_json::Value = serde_json::from_slice(&counts.into_body().collect().await?.to_bytes())?;
/// assert_eq!(json["dead"], 0);
///
/// let wrong = admin.oneshot(Request::post("/inbox/counts").body(Body::empty())?).await?;
/// assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AdminService {
    shared: Arc<Shared>,
}

struct Shared {
    /// The inbox, each store call bounded by the service's [`timeout`](AdminService::timeout);
    /// `None`: only `/health` is served.
    inbox: Option<Inbox>,
    timeout: Duration,
    health: Health,
}

impl AdminService {
    /// The service for `inbox`, its health [`Health::inbox`]: the store takes a write and
    /// a worker of it runs in this process.
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// let admin = authgear_webhook::admin::AdminService::new(inbox);
    /// # }
    /// ```
    pub fn new(inbox: Inbox) -> Self {
        let health = Health::new().inbox(&inbox);
        Self {
            shared: Arc::new(Shared {
                inbox: Some(inbox.bounded(STORE_TIMEOUT)),
                timeout: STORE_TIMEOUT,
                health,
            }),
        }
    }

    /// The service of a process without an inbox: `GET /health` answers `health`, and
    /// the `/inbox/...` routes 404.
    ///
    /// ```
    /// use authgear_webhook::{Secrets, admin::{AdminService, Health}};
    /// use http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let secrets = Secrets::new("my-webhook-secret");
    /// let admin = AdminService::health_only(Health::new().secrets(&secrets));
    /// let health = Request::get("/health").body(String::new())?;
    /// assert_eq!(admin.clone().oneshot(health).await?.status(), StatusCode::OK);
    /// let counts = Request::get("/inbox/counts").body(String::new())?;
    /// assert_eq!(admin.oneshot(counts).await?.status(), StatusCode::NOT_FOUND);
    /// # Ok(())
    /// # }
    /// ```
    pub fn health_only(health: Health) -> Self {
        Self {
            shared: Arc::new(Shared {
                inbox: None,
                timeout: STORE_TIMEOUT,
                health,
            }),
        }
    }

    /// How long each call to the inbox's store may take (default 5 s): a store that does
    /// not answer in time (down, unreachable, hung) makes the `/inbox/...` routes answer
    /// 503 `{"error":"inbox store did not answer in time"}` instead of waiting for it.
    /// One route may call the store several times (a re-drive, once per dead letter): each
    /// call has this long. `GET /health` is bounded by its [`Health::timeout`] instead.
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// use std::time::Duration;
    /// let admin = authgear_webhook::admin::AdminService::new(inbox).timeout(Duration::from_secs(2));
    /// # }
    /// ```
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                inbox: self
                    .shared
                    .inbox
                    .as_ref()
                    .map(|inbox| inbox.bounded(timeout)),
                timeout,
                health: self.shared.health.clone(),
            }),
        }
    }

    /// Answers `GET /health` with `health` instead (the catch-up, the application's own
    /// checks; add [`Health::inbox`] yourself if it should still be checked).
    ///
    /// ```no_run
    /// # fn f(inbox: authgear_webhook::inbox::Inbox) {
    /// use authgear_webhook::admin::{AdminService, Health};
    /// let health = Health::new().inbox(&inbox).check("cache", || Ok::<_, String>(()));
    /// let admin = AdminService::new(inbox).health(health);
    /// # }
    /// ```
    #[must_use]
    pub fn health(self, health: Health) -> Self {
        Self {
            shared: Arc::new(Shared {
                inbox: self.shared.inbox.clone(),
                timeout: self.shared.timeout,
                health,
            }),
        }
    }
}

impl fmt::Debug for AdminService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminService")
            .field("inbox", &self.shared.inbox)
            .field("timeout", &self.shared.timeout)
            .field("health", &self.shared.health)
            .finish()
    }
}

impl<B> Service<Request<B>> for AdminService {
    type Response = Response<AdminBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The body is never read: no route takes one.
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let shared = self.shared.clone();
        ResponseFuture(Box::pin(
            async move { Ok(answer(&shared, &method, &uri).await) },
        ))
    }
}

/// The future of an [`AdminService`] answer.
pub struct ResponseFuture(
    Pin<Box<dyn Future<Output = Result<Response<AdminBody>, Infallible>> + Send + 'static>>,
);

impl Future for ResponseFuture {
    type Output = Result<Response<AdminBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The answer to `method` `uri`.
async fn answer(shared: &Shared, method: &Method, uri: &Uri) -> Response<AdminBody> {
    let Some(route) = Route::of(uri.path()) else {
        return error(StatusCode::NOT_FOUND, "no such route");
    };
    if *method != route.method() {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        if let Ok(allow) = HeaderValue::from_str(route.method().as_str()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return response;
    }
    let query = match Query::parse(&route, uri.query()) {
        Ok(query) => query,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let answered = match (route, &shared.inbox) {
        (Route::Health, _) => {
            let report = shared.health.report().await;
            let status = match report.ready() {
                true => StatusCode::OK,
                false => StatusCode::SERVICE_UNAVAILABLE,
            };
            return json_response(status, report.to_json());
        }
        // Without an inbox, only `/health`.
        (_, None) => return error(StatusCode::NOT_FOUND, "no such route"),
        (Route::Counts, Some(inbox)) => counts(inbox).await,
        (Route::Dead, Some(inbox)) => dead(inbox, query).await,
        (Route::RedriveAll, Some(inbox)) => redrive_all(inbox, query).await,
        (Route::Redrive(id), Some(inbox)) => return redrive(inbox, id, query.endpoint).await,
    };
    match answered {
        Ok(body) => json_response(StatusCode::OK, body.to_string()),
        Err(store) => error(StatusCode::SERVICE_UNAVAILABLE, &store.to_string()),
    }
}

async fn counts(inbox: &Inbox) -> Result<Value, StoreError> {
    let counts = inbox.counts().await?;
    let bytes = inbox.size().await?;
    Ok(json!({
        "queued": counts.queued,
        "in_flight": counts.in_flight,
        "dead": counts.dead,
        "done": counts.done,
        "bytes": bytes,
    }))
}

async fn dead(inbox: &Inbox, query: Query) -> Result<Value, StoreError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let page = inbox.dead_letters(query.after, limit).await?;
    // A page is full unless no dead letter is left after it (`Inbox::dead_letters`).
    let next = page
        .last()
        .filter(|_| page.len() == limit)
        .map(|last| cursor(&last.key));
    Ok(json!({
        "dead": page.iter().map(dead_json).collect::<Vec<_>>(),
        "next": next,
    }))
}

/// Looks at up to `limit` dead letters after `after` and re-drives those of `endpoint`
/// (all, if not given): [`Inbox::redrive_dead`].
async fn redrive_all(inbox: &Inbox, query: Query) -> Result<Value, StoreError> {
    let limit = query.limit.unwrap_or(MAX_LIMIT);
    let step = inbox
        .redrive_dead(query.endpoint.as_deref(), query.after, limit)
        .await?;
    Ok(json!({
        "redriven": step.keys.iter().map(key_json).collect::<Vec<_>>(),
        "next": step.next.as_ref().map(cursor),
    }))
}

/// Re-drives the dead letter `id` of `endpoint`, or of the one endpoint it is dead on.
async fn redrive(inbox: &Inbox, id: String, endpoint: Option<String>) -> Response<AdminBody> {
    let unavailable =
        |store: StoreError| error(StatusCode::SERVICE_UNAVAILABLE, &store.to_string());
    let key = match endpoint {
        Some(endpoint) => EventKey::new(endpoint, id),
        None => {
            let mut found = match inbox.find_dead(&id).await {
                Ok(found) => found,
                Err(store) => return unavailable(store),
            };
            match found.len() {
                0 => return error(StatusCode::NOT_FOUND, "no such dead letter"),
                1 => found.remove(0),
                _ => {
                    let endpoints: Vec<&str> =
                        found.iter().map(|key| key.endpoint.as_str()).collect();
                    let body = json!({
                        "error": "dead on several endpoints: give ?endpoint=",
                        "endpoints": endpoints,
                    });
                    return json_response(StatusCode::CONFLICT, body.to_string());
                }
            }
        }
    };
    match inbox.redrive(&key).await {
        Ok(true) => json_response(
            StatusCode::OK,
            json!({ "redriven": [key_json(&key)], "next": null }).to_string(),
        ),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such dead letter"),
        Err(store) => unavailable(store),
    }
}

fn dead_json(dead: &DeadLetter) -> Value {
    let last_error = dead
        .last_error
        .as_deref()
        .map(|error| error.chars().take(MAX_ERROR).collect::<String>());
    json!({
        "endpoint": dead.key.endpoint,
        "id": dead.key.id,
        "type": dead.event_type,
        "attempts": dead.attempts,
        "died_at": crate::rfc3339::millis(dead.died_at),
        "last_error": last_error,
    })
}

fn key_json(key: &EventKey) -> Value {
    json!({ "endpoint": key.endpoint, "id": key.id })
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response<AdminBody> {
    json_response(status, json!({ "error": message }).to_string())
}

fn json_response(status: StatusCode, body: String) -> Response<AdminBody> {
    let mut response = Response::new(AdminBody::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Live state: never from a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
