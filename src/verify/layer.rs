use std::{sync::Arc, time::Duration};

use tower_layer::Layer;

use super::{
    VerifySignature,
    config::{Config, Source},
};
use crate::{BodyBudget, Secret, SecretSource, Secrets, Verifier};

/// Layer that applies [`VerifySignature`]: see the [module docs](crate::verify).
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifySignatureLayer {
    config: Arc<Config>,
}

impl VerifySignatureLayer {
    /// Accepts bodies signed with `secret`, up to 1 MiB.
    ///
    /// An empty secret matches no signature: with an empty key anybody could sign.
    ///
    /// ```
    /// use authgear_webhook::{Secret, VerifySignatureLayer};
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret");
    /// let layer = VerifySignatureLayer::new(Secret::from(b"raw bytes".to_vec()));
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self::from_source(Source::Fixed(Verifier::new(secret)))
    }

    /// Accepts bodies signed with the secrets `secrets` holds when each request arrives: a
    /// handle the application changes (or a file re-read) while the server runs, to rotate
    /// the secret without a restart. A request keeps the secrets of its arrival for its
    /// whole body, so none in flight is refused for a change. Keep a clone of the handle
    /// to change it; the layer's clones share it.
    ///
    /// ```
    /// use authgear_webhook::{sign, Secrets, VerifySignatureLayer, SIGNATURE_HEADER};
    /// use axum::{body::Body, http::{Request, StatusCode}, routing::post, Router};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let secrets = Secrets::new("old-secret");
    /// let app = Router::new()
    ///     .route("/webhook", post(|| async { "ok" }))
    ///     .layer(VerifySignatureLayer::with_secrets(secrets.clone()));
    /// let delivery = |secret: &str| {
    ///     Request::post("/webhook")
    ///         .header(SIGNATURE_HEADER, sign(secret, b"{}"))
    ///         .body(Body::from("{}"))
    ///         .unwrap()
    /// };
    /// let status = |request: Request<Body>| async { app.clone().oneshot(request).await.unwrap().status() };
    ///
    /// assert_eq!(status(delivery("new-secret")).await, StatusCode::UNAUTHORIZED);
    /// secrets.set(["new-secret"]).unwrap();
    /// assert_eq!(status(delivery("new-secret")).await, StatusCode::OK);
    /// assert_eq!(status(delivery("old-secret")).await, StatusCode::UNAUTHORIZED);
    /// # }
    /// ```
    pub fn with_secrets(secrets: Secrets) -> Self {
        Self::from_source(Source::Shared(secrets))
    }

    /// Accepts bodies signed with the secrets `source` picks for each request, from its
    /// method, URI, headers or extensions: different secrets per route or per Authgear
    /// project on one server. A request the source has no secrets for is refused (401,
    /// [`RejectionKind::NoSecrets`](crate::RejectionKind::NoSecrets)) before its body is
    /// read. See [`SecretSource`] for a multi-tenant example.
    ///
    /// ```
    /// use authgear_webhook::{Secrets, VerifySignatureLayer};
    /// use http::request::Parts;
    ///
    /// let production = Secrets::new("production-secret");
    /// let staging = Secrets::new("staging-secret");
    /// let layer = VerifySignatureLayer::with_source(move |request: &Parts| {
    ///     match request.headers.get("x-environment")?.as_bytes() {
    ///         b"production" => Some(production.clone()),
    ///         b"staging" => Some(staging.clone()),
    ///         _ => None,
    ///     }
    /// });
    /// ```
    pub fn with_source(source: impl SecretSource) -> Self {
        Self::from_source(Source::PerRequest(Arc::new(source)))
    }

    fn from_source(source: Source) -> Self {
        Self {
            config: Arc::new(Config::new(source)),
        }
    }

    /// Also accepts bodies signed with `secret`. Call it once per extra secret, e.g. to
    /// accept the old and the new secret while rotating.
    ///
    /// On a layer built [`with_secrets`](Self::with_secrets), the secret is added to that
    /// handle, as [`Secrets::also_accept`] does: every clone of the handle accepts it too,
    /// until its next [`set`](Secrets::set) or file change. A layer built
    /// [`with_source`](Self::with_source) takes every request's secrets from its source,
    /// and has none of its own to add to: there this does nothing; add the secret to the
    /// [`Secrets`] the source gives.
    ///
    /// ```
    /// use authgear_webhook::{sign, Secrets, VerifySignatureLayer};
    ///
    /// let layer = VerifySignatureLayer::new("new-secret").also_accept("old-secret");
    /// let secrets = Secrets::new("new-secret");
    /// let layer = VerifySignatureLayer::with_secrets(secrets.clone()).also_accept("old-secret");
    /// let old = sign("old-secret", b"{}");
    /// assert!(secrets.verifier().verify(old.as_bytes(), b"{}").is_ok());
    /// ```
    pub fn also_accept(mut self, secret: impl Into<Secret>) -> Self {
        match &mut Arc::make_mut(&mut self.config).source {
            Source::Fixed(verifier) => verifier.accept(secret.into()),
            Source::Shared(secrets) => {
                let _ = secrets.clone().also_accept(secret);
            }
            Source::PerRequest(_) => {}
        }
        self
    }

    /// Refuses bodies larger than `bytes` with 413 (default 1 MiB). At most that many bytes
    /// are buffered per request.
    ///
    /// ```
    /// use authgear_webhook::VerifySignatureLayer;
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret").body_limit(64 * 1024);
    /// ```
    pub fn body_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = bytes;
        self
    }

    /// Refuses with 408 a body that has not fully arrived `deadline` after it first made the
    /// layer wait, and frees its buffer at once (default 10 s; `None` turns it off).
    ///
    /// Authgear writes a body in one go, right after the request head (Go's `net/http` with
    /// the body in memory), and gives a blocking hook 5 s (10 s for all the hooks of an
    /// event, by default): a body still arriving after 10 s is not Authgear's, or Authgear
    /// has already given up on it. Non-blocking deliveries are written the same way.
    ///
    /// The timer is Tokio's: it needs a Tokio runtime with its timer enabled, as axum,
    /// hyper-util, tonic and actix-web have. Without a Tokio runtime there is no deadline:
    /// then rely on your server's timeouts.
    ///
    /// ```
    /// use authgear_webhook::VerifySignatureLayer;
    /// use std::time::Duration;
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret").body_deadline(Duration::from_secs(5));
    /// let without = VerifySignatureLayer::new("my-webhook-secret").body_deadline(None);
    /// ```
    pub fn body_deadline(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        Arc::make_mut(&mut self.config).body_deadline = deadline.into();
        self
    }

    /// Bounds the bytes held by the bodies of all requests in flight together: a request
    /// the budget has no room for is refused at once with 503 and `Retry-After` (default: a
    /// budget of 32 MiB of this layer's own; `None` turns it off). See [`BodyBudget`].
    ///
    /// ```
    /// use authgear_webhook::{BodyBudget, VerifySignatureLayer};
    ///
    /// let budget = BodyBudget::new(64 * 1024 * 1024);
    /// let layer = VerifySignatureLayer::new("my-webhook-secret").body_budget(budget.clone());
    /// assert_eq!(budget.in_use(), 0);
    /// ```
    pub fn body_budget(mut self, budget: impl Into<Option<BodyBudget>>) -> Self {
        Arc::make_mut(&mut self.config).body_budget = budget.into();
        self
    }

    /// Names the endpoint these deliveries come to, instead of the request path, in the
    /// [`Envelope`](crate::Envelope) handed on: replay protection and the inbox key
    /// deliveries by endpoint and `id` (Authgear sends the same event, with the same `id`,
    /// to every URL configured for it). Set it where one Authgear hook is served under
    /// several paths, or where paths differ between instances; keep one name per hook.
    ///
    /// ```
    /// use authgear_webhook::VerifySignatureLayer;
    ///
    /// let layer = VerifySignatureLayer::new("my-webhook-secret").endpoint("authgear-production");
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).endpoint = Some(Arc::from(endpoint.into()));
        self
    }
}

impl<S> Layer<S> for VerifySignatureLayer {
    type Service = VerifySignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifySignature::from_config(inner, self.config.clone())
    }
}
