//! Why a request was refused, and the response for it.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::ResponseBody;

/// Why [`VerifySignature`](crate::VerifySignature), replay protection or the inbox refused
/// a request.
///
/// The refusal response carries it in its extensions, so outer layers (logging, metrics)
/// can read the reason. Its `Display` is the short message sent to the client: it never
/// contains a secret, the expected signature or the body.
///
/// ```
/// use authgear_webhook::{Rejection, RejectionKind, VerifySignatureLayer};
/// use http::{Request, Response, StatusCode};
/// use tower::{service_fn, Layer, ServiceExt};
/// # use std::convert::Infallible;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = VerifySignatureLayer::new("secret").layer(service_fn(|_: Request<_>| async {
///     Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// }));
/// let unsigned = Request::post("/").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
/// let response = service.oneshot(unsigned).await.unwrap();
///
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// let rejection = response.extensions().get::<Rejection>().unwrap();
/// assert_eq!(rejection.kind(), RejectionKind::MissingSignature);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
}

/// The kinds of [`Rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No signature header, or an empty one (401).
    MissingSignature,
    /// The signature header is not 64 hex characters, or appears more than once (401).
    MalformedSignature,
    /// The signature does not match the body under any accepted secret (401).
    InvalidSignature,
    /// The body is larger than the configured limit (413).
    BodyTooLarge,
    /// The body could not be read to its end, e.g. the client broke off (400).
    BodyUnreadable,
    /// Replay protection: the delivery's timestamp is outside the window (401).
    Stale,
    /// Replay protection: a delivery with this id was already received, and its first answer
    /// cannot be given again (not recorded, or still being handled past the wait) (401).
    Replayed,
    /// Replay protection: the verified body has no `id` or `context.timestamp` (401).
    MissingReplayFields,
    /// Replay protection: the seen-ids store could not answer (503).
    StoreUnavailable,
    /// The body did not fully arrive within the
    /// [body deadline](crate::VerifySignatureLayer::body_deadline) (408).
    BodyDeadline,
    /// The [body budget](crate::BodyBudget) shared by all requests in flight had no room for
    /// this body (503, with `Retry-After`); answered at once, never queued.
    BudgetExhausted,
    /// The layer's [`SecretSource`](crate::SecretSource) has no secrets for this request
    /// (an unknown project or route) (401). Refused before the body is read. The client is
    /// told what a wrong signature is told (`invalid signature`), so a probe cannot tell
    /// which projects exist; the log says which it was.
    NoSecrets,
    /// Inbox: the event could not be stored (store full, unwritable or busy) (503).
    #[cfg(feature = "inbox")]
    InboxUnavailable,
    /// A layer that acts on verified deliveries (replay protection, the inbox) got a request
    /// without the [`Envelope`](crate::Envelope) of the verifying layer: it is placed
    /// outside [`VerifySignatureLayer`](crate::VerifySignatureLayer), or on a route without
    /// it. A mistake in the server, refused rather than let through unchecked (500).
    #[cfg(any(feature = "replay", feature = "inbox"))]
    Unverified,
}

impl RejectionKind {
    /// The kind's name in snake_case (`"invalid_signature"`, `"body_too_large"`, ...): the
    /// `reason` label of the refusals counter (feature `metrics`), one value per kind.
    ///
    /// ```
    /// use authgear_webhook::RejectionKind;
    ///
    /// assert_eq!(RejectionKind::InvalidSignature.as_str(), "invalid_signature");
    /// assert_eq!(RejectionKind::BudgetExhausted.as_str(), "budget_exhausted");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectionKind::MissingSignature => "missing_signature",
            RejectionKind::MalformedSignature => "malformed_signature",
            RejectionKind::InvalidSignature => "invalid_signature",
            RejectionKind::NoSecrets => "no_secrets",
            RejectionKind::BodyTooLarge => "body_too_large",
            RejectionKind::BodyUnreadable => "body_unreadable",
            RejectionKind::Stale => "stale",
            RejectionKind::Replayed => "replayed",
            RejectionKind::MissingReplayFields => "missing_replay_fields",
            RejectionKind::StoreUnavailable => "store_unavailable",
            RejectionKind::BodyDeadline => "body_deadline",
            RejectionKind::BudgetExhausted => "budget_exhausted",
            #[cfg(feature = "inbox")]
            RejectionKind::InboxUnavailable => "inbox_unavailable",
            #[cfg(any(feature = "replay", feature = "inbox"))]
            RejectionKind::Unverified => "unverified",
        }
    }
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind) -> Self {
        Self { kind }
    }

    /// What went wrong.
    ///
    /// ```
    /// # use authgear_webhook::{Rejection, RejectionKind};
    /// fn is_forgery(rejection: &Rejection) -> bool {
    ///     rejection.kind() == RejectionKind::InvalidSignature
    /// }
    /// ```
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The status code of the refusal response.
    ///
    /// ```
    /// # use authgear_webhook::{Rejection, RejectionKind};
    /// fn is_client_auth_error(rejection: &Rejection) -> bool {
    ///     rejection.status() == http::StatusCode::UNAUTHORIZED
    /// }
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::MissingSignature
            | RejectionKind::MalformedSignature
            | RejectionKind::InvalidSignature
            | RejectionKind::NoSecrets
            | RejectionKind::Stale
            | RejectionKind::Replayed
            | RejectionKind::MissingReplayFields => StatusCode::UNAUTHORIZED,
            RejectionKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectionKind::BodyUnreadable => StatusCode::BAD_REQUEST,
            RejectionKind::StoreUnavailable | RejectionKind::BudgetExhausted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RejectionKind::BodyDeadline => StatusCode::REQUEST_TIMEOUT,
            #[cfg(feature = "inbox")]
            RejectionKind::InboxUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            #[cfg(any(feature = "replay", feature = "inbox"))]
            RejectionKind::Unverified => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> &'static str {
        match self.kind {
            RejectionKind::MissingSignature => "missing x-authgear-body-signature header",
            RejectionKind::MalformedSignature => "malformed x-authgear-body-signature header",
            RejectionKind::InvalidSignature | RejectionKind::NoSecrets => "invalid signature",
            RejectionKind::BodyTooLarge => "request body too large",
            RejectionKind::BodyUnreadable => "request body could not be read",
            RejectionKind::Stale => "stale delivery",
            RejectionKind::Replayed => "delivery already received",
            RejectionKind::MissingReplayFields => "delivery has no id or timestamp",
            RejectionKind::StoreUnavailable => "replay check unavailable",
            RejectionKind::BodyDeadline => "request body too slow",
            RejectionKind::BudgetExhausted => "too many request bodies in flight",
            #[cfg(feature = "inbox")]
            RejectionKind::InboxUnavailable => "inbox unavailable",
            #[cfg(any(feature = "replay", feature = "inbox"))]
            RejectionKind::Unverified => "webhook layers in the wrong order",
        }
    }

    /// The gRPC status code a gRPC client should see, following gRPC's own mapping of HTTP
    /// statuses (but `RESOURCE_EXHAUSTED` for a body too large, `DEADLINE_EXCEEDED` for a
    /// body too slow).
    fn grpc_status(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "16",
            StatusCode::PAYLOAD_TOO_LARGE => "8",
            StatusCode::REQUEST_TIMEOUT => "4",
            StatusCode::SERVICE_UNAVAILABLE => "14",
            _ => "13",
        }
    }

    /// The refusal response: the status, a one-line plain-text message, and `self` in the
    /// extensions. To a gRPC request (`grpc` true) it is a trailers-only gRPC answer as well:
    /// `grpc-status` and `grpc-message` headers and no body, which gRPC clients read as
    /// `UNAUTHENTICATED` and so on (they would choke on a plain-text body).
    pub(crate) fn into_response<B>(self, grpc: bool) -> Response<ResponseBody<B>> {
        #[cfg(feature = "tracing")]
        self.log();
        crate::metrics::refused(self.kind);
        let message = Bytes::from_static(self.message().as_bytes());
        let mut response = Response::new(ResponseBody::full(match grpc {
            true => Bytes::new(),
            false => message,
        }));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        if grpc {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from_static(self.grpc_status()));
            headers.insert("grpc-message", HeaderValue::from_static(self.message()));
        } else {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        if self.kind == RejectionKind::BudgetExhausted {
            // Room comes back as soon as bodies in flight finish (or reach their deadline).
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(feature = "tracing")]
impl Rejection {
    /// One event per refusal: the reason and status, never the signature, secret or body.
    /// Forgeries and replays are `warn` (a misconfigured secret shows up there too), a
    /// client breaking off or too slow is `debug`, an unavailable store is `error`, a full
    /// body budget `warn` (under a flood, or too small for the load).
    fn log(&self) {
        let reason = match self.kind {
            RejectionKind::NoSecrets => "no secrets for this request",
            _ => self.message(),
        };
        let status = self.status().as_u16();
        match self.kind {
            RejectionKind::BodyUnreadable | RejectionKind::BodyDeadline => {
                tracing::debug!(reason, status, "authgear webhook refused")
            }
            RejectionKind::StoreUnavailable => {
                tracing::error!(reason, status, "authgear webhook refused")
            }
            #[cfg(feature = "inbox")]
            RejectionKind::InboxUnavailable => {
                tracing::error!(reason, status, "authgear webhook refused")
            }
            #[cfg(any(feature = "replay", feature = "inbox"))]
            RejectionKind::Unverified => {
                tracing::error!(reason, status, "authgear webhook refused")
            }
            _ => tracing::warn!(reason, status, "authgear webhook refused"),
        }
    }
}

/// Whether the request is a gRPC call (`application/grpc`, `application/grpc+proto`, ...),
/// to be refused the gRPC way.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The refusal for `kind`, to answer it outside tower with the layer's status and message
/// (a [`Verifier`](crate::Verifier) returns the kind).
///
/// ```
/// use authgear_webhook::{Rejection, RejectionKind};
///
/// let rejection = Rejection::from(RejectionKind::BodyTooLarge);
/// assert_eq!(rejection.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
/// assert_eq!(rejection.to_string(), "request body too large");
/// ```
impl From<RejectionKind> for Rejection {
    fn from(kind: RejectionKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Rejection {}
