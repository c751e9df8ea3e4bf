//! Replay protection: stale and repeated deliveries never reach the handler (feature
//! `replay`).
//!
//! Authgear signs only the body, with no timestamp header, so a signed delivery that leaks
//! (a log, a proxy, a debugging session) would stay valid forever. The body carries `id` and
//! `context.timestamp`, both covered by the signature. [`ReplayLayer`] goes inside
//! [`VerifySignatureLayer`](crate::VerifySignatureLayer): it reads these two fields from the
//! verified [`Envelope`] (never from an unverified body) and, as its
//! [`ReplayProtection`] says:
//!
//! - refuses with 401 a delivery whose timestamp is older than the window (default 5
//!   minutes) or further in the future than the allowed clock skew (default 1 minute);
//! - refuses with 401 a verified body without these fields, unless
//!   [`allow_missing_fields`](ReplayProtection::allow_missing_fields) is set;
//! - lets the handler run at most once per delivery (endpoint and `id`) within the window,
//!   and answers every other copy with the first copy's answer (below). The endpoint is the
//!   request path unless [`VerifySignatureLayer::endpoint`](crate::VerifySignatureLayer::endpoint)
//!   names it: Authgear sends the same event, with the same `id`, to every configured URL.
//!
//! A request without the verifying layer's [`Envelope`] (the replay layer
//! placed outside the verifying one) is refused with 500
//! ([`RejectionKind::Unverified`]), never let through unchecked.
//!
//! If the store cannot answer, the delivery is refused with 503 (Authgear then fails the
//! operation: fail closed), unless [`fail_open`](ReplayProtection::fail_open) is set.
//!
//! # Repeated deliveries: Authgear's own, and an attacker's
//!
//! Authgear itself delivers the same event (same `id`) to the same URL more than once when
//! the URL is configured twice, for `"*"` and for a named event, or among
//! `usage.alert.triggered`'s extra URLs. Blocking hooks are called one after the other, each
//! answer applied before the next call; non-blocking ones may arrive at once. Refusing a
//! copy would fail the end user's sign-up or login for a blocking event, so copies are
//! answered the way the first was:
//!
//! - The first copy claims the delivery in the store and runs the handler. Its answer
//!   (status, `Content-Type`, body) is recorded under the claim for the rest of the window,
//!   as it streams out to Authgear. Only a body up to
//!   [`record_limit`](ReplayProtection::record_limit) (default 64 KiB; answers to Authgear
//!   are a few KiB at most) is recorded; a larger answer is not, and its copies get 401.
//! - A copy arriving later gets the recorded answer at once: the same status and body (the
//!   same decision, the same mutations), with [`Repeated`] in the response extensions. The
//!   handler does not run.
//! - A copy arriving while the first is in flight waits for its answer (polling the store,
//!   at most [`wait_for_first`](ReplayProtection::wait_for_first), default 10 s: Authgear
//!   waits 5 s per blocking hook and 10 s for all of them), then gets it. If the first is
//!   still running when the wait ends, the copy gets 401 ([`RejectionKind::Replayed`]): never
//!   a 5xx, and the handler still runs once.
//! - If the first copy's handler fails (a 5xx or an error from the inner service) or its
//!   request is cancelled (the client went away before the answer), the claim is released:
//!   Authgear counted that delivery as failed, so a later copy runs the handler again and may
//!   succeed. A failure is not recorded: copies never inherit a 5xx. Handlers must then
//!   tolerate running again after a failure, as Authgear asks of hooks anyway.
//! - If the process handling the first copy dies (or its request is cancelled while the
//!   store is being asked), its claim stays until the window ends: copies wait, then get 401.
//! - Once the answer is given, the delivery stays answered even if the client goes away
//!   while it streams out, or nobody reads it (the handler did run): its copies get 401.
//!   The answer is recorded when its body has been read to the end (as a server sends it).
//!
//! An attacker replaying a captured delivery gains nothing: within the window the handler
//! does not run again and the replay gets the first answer back (which reveals that answer
//! to whoever holds the delivery; use HTTPS); after the window the delivery is stale, 401. A
//! blocking copy whose body differs from the first's (Authgear applied the first answer's
//! mutations before calling the next hook) gets the same answer, which applies again
//! unchanged.
//!
//! # The window and Authgear's delivery
//!
//! Authgear stamps an event when it is created and delivers blocking events within seconds
//! (it waits at most 5 s per hook) and non-blocking ones within 60 s. Authgear does not
//! retry, so the default 5 minutes leaves room for clock differences and slow networks
//! while keeping a leaked delivery useful for minutes, not forever.
//!
//! # One instance or many
//!
//! [`MemoryStore`] (the default) remembers deliveries in the process: enough for one
//! instance. Behind a load balancer each instance would run the handler for the same
//! delivery; use a store they all share, [`RedisStore`] (feature `replay-redis`) or
//! [`PostgresStore`] (feature `replay-postgres`, in the application's own database): two
//! instances on one store behave exactly as one.
//!
//! # Without tower
//!
//! [`ReplayProtection::check`] gives the same protection to an actix-web handler, a queue
//! consumer or a job re-processing stored deliveries: call it with the verified body, handle
//! a [`Checked::Fresh`] and record its answer on the [`Claim`], send back a
//! [`Checked::Repeat`]'s answer as it is.
//!
//! Waiting copies need a Tokio runtime with its timer (axum, hyper, tonic and actix-web
//! all run on one).
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use authgear_webhook::{replay::{ReplayProtection, Repeated}, sign, VerifySignatureLayer, SIGNATURE_HEADER};
//! use axum::{body::Body, http::{Request, StatusCode}, routing::post, Router};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let protection = ReplayProtection::in_memory().window(Duration::from_secs(300));
//! let app = Router::new().route("/", post(|| async { "ok" })).layer(
//!     // In the order a request takes them: verify, then replay protection.
//!     ServiceBuilder::new()
//!         .layer(VerifySignatureLayer::new("secret"))
//!         .layer(protection.layer()),
//! );
//!
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
//! let body = format!(r#"{{"id":"0001","type":"user.created","context":{{"timestamp":{now}}}}}"#);
//! // Sends a signed delivery; returns the status, whether it was a repeat, and the body.
//! let send = |body: String| {
//!     let request = Request::post("/")
//!         .header(SIGNATURE_HEADER, sign("secret", body.as_bytes()))
//!         .body(Body::from(body))
//!         .unwrap();
//!     let app = app.clone();
//!     async move {
//!         let response = app.oneshot(request).await.unwrap();
//!         let repeated = response.extensions().get::<Repeated>().is_some();
//!         let status = response.status();
//!         (status, repeated, axum::body::to_bytes(response.into_body(), 1024).await.unwrap())
//!     }
//! };
//! assert_eq!(send(body.clone()).await, (StatusCode::OK, false, "ok".into()));
//!
//! // The same delivery again: the handler does not run, the first answer is repeated.
//! assert_eq!(send(body.clone()).await, (StatusCode::OK, true, "ok".into()));
//!
//! // A delivery older than the window: refused.
//! let old = body.replace(&now.to_string(), &(now - 301).to_string());
//! assert_eq!(send(old).await.0, StatusCode::UNAUTHORIZED);
//! # }
//! ```

mod answer;
mod body;
mod claim;
mod future;
mod layer;
mod memory;
#[cfg(feature = "replay-postgres")]
mod postgres;
#[cfg(feature = "replay-redis")]
mod redis;
mod service;
mod store;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use self::claim::Pending;
use crate::{Envelope, RejectionKind, envelope::Head};

#[cfg(feature = "replay-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "replay-postgres")))]
pub use self::postgres::{PostgresBuilder, PostgresStore};
#[cfg(feature = "replay-redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "replay-redis")))]
pub use self::redis::RedisStore;
pub use self::{
    answer::{RecordedAnswer, Repeated},
    body::RecordingBody,
    claim::{Checked, Claim},
    future::ResponseFuture,
    layer::ReplayLayer,
    memory::MemoryStore,
    service::ReplayService,
    store::{SeenIds, StoreError, StoreErrorKind, StoreFuture},
};

/// How [`ReplayLayer`] (or your own code, with [`check`](Self::check)) keeps stale and
/// repeated deliveries from the handler: see the [module docs](self). Cheap to clone (its
/// store is shared).
///
/// ```
/// use std::time::Duration;
/// use authgear_webhook::{replay::ReplayProtection, VerifySignatureLayer};
/// use tower::ServiceBuilder;
///
/// let protection = ReplayProtection::in_memory()
///     .window(Duration::from_secs(120))
///     .clock_skew(Duration::from_secs(30));
/// let layers = ServiceBuilder::new()
///     .layer(VerifySignatureLayer::new("my-webhook-secret"))
///     .layer(protection.layer());
/// ```
#[derive(Clone)]
#[must_use]
pub struct ReplayProtection {
    store: Arc<dyn SeenIds>,
    window: Duration,
    skew: Duration,
    allow_missing_fields: bool,
    fail_open: bool,
    wait: Duration,
    record_limit: usize,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl ReplayProtection {
    /// Remembers accepted ids in `store`; 5 minutes window, 1 minute clock skew.
    ///
    /// ```
    /// use authgear_webhook::replay::{MemoryStore, ReplayProtection};
    ///
    /// let protection = ReplayProtection::new(MemoryStore::default());
    /// ```
    pub fn new(store: impl SeenIds) -> Self {
        Self {
            store: Arc::new(store),
            window: Duration::from_secs(5 * 60),
            skew: Duration::from_secs(60),
            allow_missing_fields: false,
            fail_open: false,
            wait: Duration::from_secs(10),
            record_limit: answer::DEFAULT_RECORD_LIMIT,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Remembers accepted ids in this process ([`MemoryStore::default`]).
    ///
    /// ```
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory();
    /// ```
    pub fn in_memory() -> Self {
        Self::new(MemoryStore::default())
    }

    /// How old a delivery may be (default 5 minutes). Deliveries and their answers are
    /// remembered that long.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .window(Duration::from_secs(60));
    /// ```
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How far in the future a delivery's timestamp may be (default 1 minute).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .clock_skew(Duration::from_secs(5));
    /// ```
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// The layer that applies this protection: [`ReplayLayer::new`].
    ///
    /// ```
    /// let layer = authgear_webhook::replay::ReplayProtection::in_memory().layer();
    /// ```
    pub fn layer(&self) -> ReplayLayer {
        ReplayLayer::new(self.clone())
    }

    /// Lets through verified bodies without `id` or `context.timestamp` (refused by default),
    /// e.g. for Authgear's custom SMS provider hook, whose body has neither.
    ///
    /// ```
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .allow_missing_fields();
    /// ```
    pub fn allow_missing_fields(mut self) -> Self {
        self.allow_missing_fields = true;
        self
    }

    /// Lets deliveries through when the store cannot answer (default: refuse with 503).
    ///
    /// ```
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory().fail_open();
    /// ```
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// How long a copy of a delivery waits for the answer of the first copy, while that one
    /// is still being handled (default 10 s). Past it, the copy gets 401.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .wait_for_first(Duration::from_secs(5));
    /// ```
    pub fn wait_for_first(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The largest answer body recorded for the copies of a delivery (default 64 KiB). The
    /// copies of a delivery whose answer was larger get 401. Each delivery in flight buffers
    /// at most this much of its answer.
    ///
    /// ```
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .record_limit(4 * 1024);
    /// ```
    pub fn record_limit(mut self, bytes: usize) -> Self {
        self.record_limit = bytes;
        self
    }

    /// Replaces the clock the timestamps are checked against (default
    /// [`SystemTime::now`]): for tests.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .clock(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// ```
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks a verified `body` received on `endpoint` (any name for the URL it came to, e.g.
    /// the request path, as [`Envelope::endpoint`](crate::Envelope::endpoint)), at the time of
    /// the [`clock`](Self::clock): outside tower, e.g. in an actix-web handler. Call it only
    /// after the signature is verified.
    ///
    /// A [`Checked::Fresh`] is the first copy: handle it and [`record`](Claim::record) the
    /// answer on its claim (or drop the claim if handling failed: a later copy may try
    /// again). A [`Checked::Repeat`] was answered before: send back its answer, do not
    /// handle it. An `Err` is a refusal: answer 401, or 503 for
    /// [`RejectionKind::StoreUnavailable`] (the statuses the layer answers).
    ///
    /// ```
    /// use std::time::{SystemTime, UNIX_EPOCH};
    /// use authgear_webhook::{replay::{Checked, RecordedAnswer, ReplayProtection}, RejectionKind};
    /// use http::StatusCode;
    ///
    /// /// A framework-neutral handler: the body's signature is already verified.
    /// async fn receive(protection: &ReplayProtection, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
    ///     match protection.check(path, body).await {
    ///         Ok(Checked::Fresh(claim)) => {
    ///             let answer = RecordedAnswer::new(StatusCode::OK, r#"{"is_allowed":true}"#)
    ///                 .with_content_type("application/json");
    ///             claim.record(&answer);
    ///             (answer.status(), answer.body().to_vec())
    ///         }
    ///         Ok(Checked::Repeat(answer)) => (answer.status(), answer.body().to_vec()),
    ///         Err(RejectionKind::StoreUnavailable) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
    ///         Err(_) => (StatusCode::UNAUTHORIZED, Vec::new()),
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let protection = ReplayProtection::in_memory();
    /// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    /// let body = format!(r#"{{"id":"1","type":"user.pre_create","context":{{"timestamp":{now}}}}}"#);
    /// let first = receive(&protection, "/hook", body.as_bytes()).await;
    /// let copy = receive(&protection, "/hook", body.as_bytes()).await;
    /// assert_eq!(first, (StatusCode::OK, br#"{"is_allowed":true}"#.to_vec()));
    /// assert_eq!(copy, first);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The kind of a refusal: [`Stale`](RejectionKind::Stale),
    /// [`MissingReplayFields`](RejectionKind::MissingReplayFields) or
    /// [`Replayed`](RejectionKind::Replayed) (401), or
    /// [`StoreUnavailable`](RejectionKind::StoreUnavailable) (503) when the store cannot
    /// answer and [`fail_open`](Self::fail_open) is not set.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the store took the claim but before it resolved leaves
    /// the delivery claimed until the window ends (its copies wait, then get 401), as when
    /// a process dies while handling it. A [`Claim`] that was returned is released when
    /// dropped.
    pub async fn check(&self, endpoint: &str, body: &[u8]) -> Result<Checked, RejectionKind> {
        self.check_at(endpoint, body, (self.clock)()).await
    }

    /// [`check`](Self::check) at the time `now`, e.g. when a queue consumer checks a delivery
    /// when it was received rather than when it is processed.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use authgear_webhook::{replay::{Checked, ReplayProtection}, RejectionKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let protection = ReplayProtection::in_memory();
    /// let body = br#"{"id":"1","context":{"timestamp":1700000000}}"#;
    /// let received = UNIX_EPOCH + Duration::from_secs(1_700_000_002);
    /// assert!(matches!(protection.check_at("queue", body, received).await, Ok(Checked::Fresh(_))));
    /// let later = received + Duration::from_secs(3600);
    /// assert_eq!(protection.check_at("queue", body, later).await.unwrap_err(), RejectionKind::Stale);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    ///
    /// # Cancel safety
    ///
    /// As [`check`](Self::check).
    pub async fn check_at(
        &self,
        endpoint: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Checked, RejectionKind> {
        match self.start(endpoint, &Head::parse(body), now)? {
            Some(pending) => pending.resolve().await,
            None => Ok(Checked::Fresh(claim::Claim::none())),
        }
    }

    /// The layer's start: a verified delivery, at the time of the clock.
    pub(super) fn start_envelope(
        &self,
        envelope: &Envelope,
    ) -> Result<Option<Pending>, RejectionKind> {
        self.start(envelope.endpoint(), envelope.head(), (self.clock)())
    }

    /// What can be decided at once: stale or without fields (refused), let through without
    /// a key (`None`), or the key to claim in the store.
    fn start(
        &self,
        endpoint: &str,
        head: &Head,
        now: SystemTime,
    ) -> Result<Option<Pending>, RejectionKind> {
        let (Some(id), Some(timestamp)) = (&head.id, head.timestamp) else {
            return match self.allow_missing_fields {
                true => Ok(None),
                false => Err(RejectionKind::MissingReplayFields),
            };
        };

        let sent = UNIX_EPOCH + Duration::from_secs(timestamp);
        let fresh = match now.duration_since(sent) {
            Ok(age) => age <= self.window,
            Err(ahead) => ahead.duration() <= self.skew,
        };
        if !fresh {
            return Err(RejectionKind::Stale);
        }
        // Past `sent + window` the delivery is stale anyway: forget it then.
        let ttl = (sent + self.window)
            .duration_since(now)
            .unwrap_or_default()
            .max(Duration::from_secs(1));

        Ok(Some(Pending {
            store: self.store.clone(),
            key: format!("authgear-webhook:{}:{endpoint}:{id}", endpoint.len()),
            ttl,
            wait: self.wait,
            record_limit: self.record_limit,
            fail_open: self.fail_open,
        }))
    }
}

impl fmt::Debug for ReplayProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayProtection")
            .field("window", &self.window)
            .field("clock_skew", &self.skew)
            .field("allow_missing_fields", &self.allow_missing_fields)
            .field("fail_open", &self.fail_open)
            .field("wait_for_first", &self.wait)
            .field("record_limit", &self.record_limit)
            .finish_non_exhaustive()
    }
}
