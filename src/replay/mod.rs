//! Replay protection: refuse stale and repeated deliveries (feature `replay`).
//!
//! Authgear signs only the body, with no timestamp header, so a signed delivery that leaks
//! (a log, a proxy, a debugging session) would stay valid forever. The body carries `id` and
//! `context.timestamp`, both covered by the signature. After the signature is verified (never
//! before), [`ReplayProtection`] reads just these two fields and refuses with 401:
//!
//! - a delivery whose timestamp is older than the window (default 5 minutes) or further in
//!   the future than the allowed clock skew (default 1 minute);
//! - a delivery whose `id` was already accepted on the same endpoint within the window.
//!   Authgear sends the same event, with the same `id`, to every configured URL, so the key
//!   is the endpoint (the request path unless [`endpoint`](ReplayProtection::endpoint) names
//!   it) plus the `id`;
//! - a verified body without these fields, unless
//!   [`allow_missing_fields`](ReplayProtection::allow_missing_fields) is set.
//!
//! If the store cannot answer, the delivery is refused with 503 (Authgear then fails the
//! operation: fail closed), unless [`fail_open`](ReplayProtection::fail_open) is set.
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
//! [`MemoryStore`] (the default) remembers ids in the process: enough for one instance.
//! Behind a load balancer each instance would accept the same replayed delivery once; use
//! a store they all share, [`RedisStore`] (feature `redis`).
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use authgear_webhook::{replay::ReplayProtection, sign, VerifySignatureLayer, SIGNATURE_HEADER};
//! use axum::{body::Body, http::{Request, StatusCode}, routing::post, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route("/", post(|| async { "ok" })).layer(
//!     VerifySignatureLayer::new("secret")
//!         .replay_protection(ReplayProtection::in_memory().window(Duration::from_secs(300))),
//! );
//!
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
//! let body = format!(r#"{{"id":"0001","type":"user.created","context":{{"timestamp":{now}}}}}"#);
//! let delivery = || {
//!     Request::post("/")
//!         .header(SIGNATURE_HEADER, sign("secret", body.as_bytes()))
//!         .body(Body::from(body.clone()))
//!         .unwrap()
//! };
//! assert_eq!(app.clone().oneshot(delivery()).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(app.oneshot(delivery()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod store;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;

use crate::{RejectionKind, verify::Check};

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
pub use self::{
    memory::MemoryStore,
    store::{SeenIds, StoreError, StoreFuture},
};

/// How [`VerifySignatureLayer`](crate::VerifySignatureLayer) refuses stale and repeated
/// deliveries: see the [module docs](self). Enable it with
/// [`replay_protection`](crate::VerifySignatureLayer::replay_protection).
///
/// ```
/// use std::time::Duration;
/// use authgear_webhook::{replay::ReplayProtection, VerifySignatureLayer};
///
/// let layer = VerifySignatureLayer::new("my-webhook-secret").replay_protection(
///     ReplayProtection::in_memory()
///         .window(Duration::from_secs(120))
///         .clock_skew(Duration::from_secs(30))
///         .endpoint("authgear-production"),
/// );
/// ```
#[derive(Clone)]
#[must_use]
pub struct ReplayProtection {
    store: Arc<dyn SeenIds>,
    window: Duration,
    skew: Duration,
    endpoint: Option<String>,
    allow_missing_fields: bool,
    fail_open: bool,
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
            endpoint: None,
            allow_missing_fields: false,
            fail_open: false,
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

    /// How old a delivery may be (default 5 minutes). Ids are remembered that long.
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

    /// Names the endpoint in the seen-ids key instead of the request path: for routes that
    /// share one Authgear hook under several paths, or paths that differ between instances.
    ///
    /// ```
    /// let protection = authgear_webhook::replay::ReplayProtection::in_memory()
    ///     .endpoint("authgear-production");
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
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

    /// Checks a verified body received on `path`.
    pub(crate) fn check(&self, path: &str, body: &[u8]) -> Check {
        let Ok(Envelope {
            id: Some(id),
            context: Some(Context {
                timestamp: Some(timestamp),
            }),
        }) = serde_json::from_slice::<Envelope>(body)
        else {
            return match self.allow_missing_fields {
                true => Check::Pass,
                false => Check::Reject(RejectionKind::MissingReplayFields),
            };
        };

        let now = (self.clock)();
        let sent = UNIX_EPOCH + Duration::from_secs(timestamp);
        let fresh = match now.duration_since(sent) {
            Ok(age) => age <= self.window,
            Err(ahead) => ahead.duration() <= self.skew,
        };
        if !fresh {
            return Check::Reject(RejectionKind::Stale);
        }
        // Past `sent + window` the delivery is stale anyway: forget its id then.
        let ttl = (sent + self.window)
            .duration_since(now)
            .unwrap_or_default()
            .max(Duration::from_secs(1));

        let endpoint = self.endpoint.as_deref().unwrap_or(path);
        let key = format!("authgear-webhook:{}:{endpoint}:{id}", endpoint.len());
        let inserted = self.store.insert_if_absent(key, ttl);
        let fail_open = self.fail_open;
        Check::Wait(Box::pin(async move {
            match inserted.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(RejectionKind::Replayed),
                Err(_) if fail_open => Ok(()),
                Err(_) => Err(RejectionKind::StoreUnavailable),
            }
        }))
    }
}

/// The two fields replay protection reads; serde skips the rest of the body.
#[derive(Deserialize)]
struct Envelope {
    id: Option<String>,
    context: Option<Context>,
}

#[derive(Deserialize)]
struct Context {
    timestamp: Option<u64>,
}

impl fmt::Debug for ReplayProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayProtection")
            .field("window", &self.window)
            .field("clock_skew", &self.skew)
            .field("endpoint", &self.endpoint)
            .field("allow_missing_fields", &self.allow_missing_fields)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}
