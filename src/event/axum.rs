//! axum integration (feature `axum`): `Event` as an extractor, answers as responses.

use std::fmt;

use axum_core::{
    body::Body,
    extract::{FromRequest, Request},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use super::{
    AuthenticationAnswer, Deny, PreAuthenticatedAnswer, TokenAnswer, UserAnswer, answer::Answer,
    envelope::Event,
};
use crate::Verified;

/// Extracts the event from a request that the
/// [`VerifySignatureLayer`](crate::VerifySignatureLayer) let through.
///
/// - No [`Verified`] extension (the route is not behind the layer): 500, and the reason
///   logged with `tracing` (feature `tracing`; the crate never prints). An unverified body
///   is never parsed.
/// - A verified body that is not an Authgear envelope at all (not JSON, not an object, no
///   string `id` or `type`): 400 and a short message.
/// - Every other verified body is an [`Event`], even one whose payload does not fit the
///   model ([`Payload::OffModel`](super::Payload::OffModel)): Authgear never retries a
///   delivery, and a refused blocking one fails the end user's operation. The reason it did
///   not fit is logged with `tracing` (a `warn` event; see [`Event::off_model_reason`]).
///
/// ```
/// use authgear_webhook::{event::{Answer, Event}, sign, VerifySignatureLayer, SIGNATURE_HEADER};
/// use axum::{body::Body, http::{Request, StatusCode}, routing::post, Router};
/// use tower::ServiceExt;
///
/// async fn receive(event: Event) -> Answer {
///     println!("{} {}", event.event_type(), event.id);
///     Answer::allow()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let forgot_the_layer = Router::new().route("/hooks/authgear", post(receive));
/// let verified = Router::new()
///     .route("/hooks/authgear", post(receive))
///     .layer(VerifySignatureLayer::new("secret"));
///
/// let request = |uri: &str, body: &'static str| {
///     Request::post(uri)
///         .header(SIGNATURE_HEADER, sign("secret", body.as_bytes()))
///         .body(Body::from(body))
///         .unwrap()
/// };
/// let event = r#"{"id":"1","seq":1,"type":"project.new","payload":{},"context":{"timestamp":0}}"#;
/// let response = verified.clone().oneshot(request("/hooks/authgear", event)).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// let response = verified.oneshot(request("/hooks/authgear", "{}")).await.unwrap();
/// assert_eq!(response.status(), StatusCode::BAD_REQUEST);
/// let response = forgot_the_layer.oneshot(request("/hooks/authgear", event)).await.unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// # }
/// ```
impl<S> FromRequest<S> for Event
where
    S: Send + Sync,
{
    type Rejection = EventRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.extensions().get::<Verified>().is_none() {
            let rejection = EventRejection(EventRejectionKind::NotVerified);
            log(&rejection);
            return Err(rejection);
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| EventRejection(EventRejectionKind::InvalidEvent))?;
        let event: Event = serde_json::from_slice(&body).map_err(|_| {
            let rejection = EventRejection(EventRejectionKind::InvalidEvent);
            log(&rejection);
            rejection
        })?;
        #[cfg(feature = "tracing")]
        if let Some(reason) = event.off_model_reason() {
            tracing::warn!(
                event_type = event.event_type(),
                id = %event.id,
                reason,
                "authgear webhook event does not fit the typed model; kept as sent"
            );
        }
        Ok(event)
    }
}

/// Logs a refusal with `tracing`; without that feature the crate stays silent (a library
/// never prints).
fn log(rejection: &EventRejection) {
    #[cfg(feature = "tracing")]
    match rejection.kind() {
        EventRejectionKind::NotVerified => {
            tracing::error!(reason = %rejection, "authgear webhook event refused");
        }
        EventRejectionKind::InvalidEvent => {
            tracing::warn!(reason = %rejection, "authgear webhook event refused");
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = rejection;
}

/// Why the [`Event`] extractor refused a request. As a response: the status and a short
/// plain-text message, with the rejection in the extensions.
///
/// ```
/// use authgear_webhook::event::{EventRejection, EventRejectionKind};
///
/// fn status(rejection: &EventRejection) -> u16 {
///     match rejection.kind() {
///         EventRejectionKind::NotVerified => 500,
///         _ => 400,
///     }
/// }
/// # let _ = status;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRejection(EventRejectionKind);

/// The reasons for an [`EventRejection`].
///
/// ```
/// use authgear_webhook::event::EventRejectionKind;
///
/// assert_ne!(EventRejectionKind::NotVerified, EventRejectionKind::InvalidEvent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventRejectionKind {
    /// The request has no [`Verified`] extension: the route is not behind the
    /// [`VerifySignatureLayer`](crate::VerifySignatureLayer). A server mistake: 500.
    NotVerified,
    /// The verified body is not an Authgear envelope at all (not JSON, not an object, or
    /// no string `id` or `type`): 400. A payload that does not fit the model is not
    /// refused.
    InvalidEvent,
}

impl EventRejection {
    /// Why the request was refused.
    ///
    /// ```
    /// # use authgear_webhook::event::{EventRejection, EventRejectionKind};
    /// fn is_server_mistake(rejection: &EventRejection) -> bool {
    ///     rejection.kind() == EventRejectionKind::NotVerified
    /// }
    /// # let _ = is_server_mistake;
    /// ```
    pub fn kind(&self) -> EventRejectionKind {
        self.0
    }

    /// The status of the refusal: 500 or 400.
    ///
    /// ```
    /// # use authgear_webhook::event::EventRejection;
    /// fn is_client_error(rejection: &EventRejection) -> bool {
    ///     rejection.status().is_client_error()
    /// }
    /// # let _ = is_client_error;
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.0 {
            EventRejectionKind::NotVerified => StatusCode::INTERNAL_SERVER_ERROR,
            EventRejectionKind::InvalidEvent => StatusCode::BAD_REQUEST,
        }
    }

    /// The message sent to the client: it says nothing about the server's setup.
    fn public_message(&self) -> &'static str {
        match self.0 {
            EventRejectionKind::NotVerified => "internal server error",
            EventRejectionKind::InvalidEvent => "body is not a valid Authgear event",
        }
    }
}

impl fmt::Display for EventRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            EventRejectionKind::NotVerified => {
                "request not verified: put the route behind VerifySignatureLayer"
            }
            EventRejectionKind::InvalidEvent => "body is not a valid Authgear event",
        })
    }
}

impl std::error::Error for EventRejection {}

impl IntoResponse for EventRejection {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.public_message()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response.extensions_mut().insert(self);
        response
    }
}

/// 200 with the answer as `application/json`.
fn json_response(answer: &impl Serialize) -> Response {
    match serde_json::to_vec(answer) {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        // Not reachable: answers hold only JSON values, string keys and finite numbers.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

macro_rules! answer_responses {
    ($($answer:ty),*) => {$(
        /// 200 with the answer as `application/json`.
        impl IntoResponse for $answer {
            fn into_response(self) -> Response {
                json_response(&self)
            }
        }
    )*};
}

answer_responses!(
    Answer,
    Deny,
    UserAnswer,
    TokenAnswer,
    AuthenticationAnswer,
    PreAuthenticatedAnswer
);
