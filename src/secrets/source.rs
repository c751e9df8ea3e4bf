//! Where the verifying layer finds the secrets of each request: one server, several
//! webhooks (routes, or Authgear projects of a multi-tenant service), each with its own.

use http::request::Parts;

use super::Secrets;

/// Picks the [`Secrets`] that verify a request, from its method, URI, headers and
/// extensions (the body is not read yet): for a server that receives the webhooks of
/// several Authgear projects, each signed with its own secret. Give it to
/// [`VerifySignatureLayer::with_source`](crate::VerifySignatureLayer::with_source).
///
/// A request for which the source has no secrets is refused
/// ([`RejectionKind::NoSecrets`](crate::RejectionKind::NoSecrets), 401) before its body is
/// read, never passed on.
///
/// A closure `Fn(&Parts) -> Option<Secrets>` is a source, and so are [`Secrets`] (the same
/// for every request). Each project's handle can change on its own, read from its own file
/// or [`set`](Secrets::set) by the application.
///
/// The source runs for every request: build each project's handle once (at start, or when
/// a project is added) and only look it up here. [`Secrets::new`] keys the MACs and
/// [`Secrets::from_file`] starts a thread of its own, neither of which belongs on the
/// request path; cloning a handle is one reference count.
///
/// ```
/// use std::{collections::HashMap, sync::Arc};
///
/// use authgear_webhook::{sign, Secrets, VerifySignatureLayer, SIGNATURE_HEADER};
/// use axum::{body::Body, http::{request::Parts, Request, StatusCode}, routing::post, Router};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // One webhook per project: /hooks/{project}.
/// let projects: Arc<HashMap<String, Secrets>> = Arc::new(HashMap::from([
///     ("shop".to_owned(), Secrets::new("shop-secret")),
///     ("blog".to_owned(), Secrets::new("blog-secret")),
/// ]));
/// let source = move |request: &Parts| {
///     let project = request.uri.path().strip_prefix("/hooks/")?;
///     projects.get(project).cloned()
/// };
/// let app = Router::new()
///     .route("/hooks/{project}", post(|| async { "ok" }))
///     .layer(VerifySignatureLayer::with_source(source));
///
/// let delivery = |path: &str, secret: &str| {
///     Request::post(path)
///         .header(SIGNATURE_HEADER, sign(secret, b"{}"))
///         .body(Body::from("{}"))
///         .unwrap()
/// };
/// let status = |request: Request<Body>| async { app.clone().oneshot(request).await.unwrap().status() };
/// assert_eq!(status(delivery("/hooks/shop", "shop-secret")).await, StatusCode::OK);
/// assert_eq!(status(delivery("/hooks/blog", "blog-secret")).await, StatusCode::OK);
/// // Another project's secret, and a project without secrets: refused.
/// assert_eq!(status(delivery("/hooks/shop", "blog-secret")).await, StatusCode::UNAUTHORIZED);
/// assert_eq!(status(delivery("/hooks/other", "shop-secret")).await, StatusCode::UNAUTHORIZED);
/// # }
/// ```
pub trait SecretSource: Send + Sync + 'static {
    /// The secrets that verify `request`, or `None` to refuse it.
    fn secrets(&self, request: &Parts) -> Option<Secrets>;
}

impl<F> SecretSource for F
where
    F: Fn(&Parts) -> Option<Secrets> + Send + Sync + 'static,
{
    #[inline]
    fn secrets(&self, request: &Parts) -> Option<Secrets> {
        self(request)
    }
}

/// The same secrets for every request.
impl SecretSource for Secrets {
    #[inline]
    fn secrets(&self, _request: &Parts) -> Option<Secrets> {
        Some(self.clone())
    }
}
