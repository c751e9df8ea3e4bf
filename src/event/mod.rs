//! Typed Authgear events and answers to blocking events (feature `event`).
//!
//! [`Event`] is one delivery: `id`, `seq`, typed [`Context`], and a typed [`Payload`] for
//! each of the event types Authgear documents, with the shared models ([`User`],
//! [`Identity`], [`Session`], [`AuthenticationContext`], ...). Match on the payload, read
//! with types, and answer a blocking event with an [`Answer`] that Authgear's schema
//! accepts.
//!
//! ```
//! use authgear_webhook::event::{Answer, Event, Payload};
//!
//! fn handle(event: Event) -> Answer {
//!     match &event.payload {
//!         // Deny sign-ups from one domain.
//!         Payload::UserPreCreate(payload)
//!             if payload.user.email().is_some_and(|email| email.ends_with("@spam.example")) =>
//!         {
//!             Answer::deny().reason("This email domain is not accepted").into()
//!         }
//!         // Add a claim to access tokens.
//!         Payload::OidcJwtPreCreate(payload) => payload
//!             .allow()
//!             .add_claim("https://myapp.com/plan", "free")
//!             .map_or_else(|_| Answer::allow(), Answer::from),
//!         // Everything else: allowed (the body of an answer to a non-blocking event is
//!         // ignored, so this is right for those too).
//!         _ => Answer::allow(),
//!     }
//! }
//!
//! let body = br#"{"id":"0000000000546d54","seq":5533012,"type":"user.pre_create",
//!     "payload":{"user":{"id":"u1","created_at":"2006-01-02T03:04:05Z",
//!         "updated_at":"2006-01-02T03:04:05Z","is_anonymous":false,"is_verified":true,
//!         "is_disabled":false,"standard_attributes":{"email":"bob@spam.example"}},
//!         "identities":[]},
//!     "context":{"timestamp":1764319772,"user_id":"u1","triggered_by":"user",
//!         "audit_context":null,"preferred_languages":[],"language":"en"}}"#;
//! let event: Event = serde_json::from_slice(body)?;
//! assert!(event.is_blocking());
//! assert!(!handle(event).is_allowed());
//! # Ok::<_, serde_json::Error>(())
//! ```
//!
//! # Parse the verified bytes
//!
//! Parse only a body the [`VerifySignatureLayer`](crate::VerifySignatureLayer) let through.
//! With the `axum` feature, `Event` is an extractor that does exactly that: it answers 500
//! on a route without the layer, and 400 when the body is not an event.
//!
//! # Older and newer servers
//!
//! Deliveries differ by Authgear version: fields missing or `null` (Go writes nil maps and
//! slices as `null`), `audit_context: null`, new `triggered_by` values, new event types.
//! All of them parse: anything not sent by every version is an `Option`, open string sets
//! keep unknown values in an `Other` variant, unknown event types become
//! [`Payload::Unknown`], and unknown fields are kept in each struct's `extra`. Serialising an
//! `Event` gives back the JSON value it was parsed from (a `null` may come back absent).
//!
//! # Answers
//!
//! See [`Answer`]: allow and deny fit every blocking event; the rest comes from the
//! payload's `allow()`, whose builder only offers what that event accepts.
#![cfg_attr(
    feature = "axum",
    doc = r#"
# axum

`Event` implements axum's `FromRequest` and every answer implements `IntoResponse`:

```
use authgear_webhook::{event::{Answer, Event, Payload}, VerifySignatureLayer};
use axum::{routing::post, Router};

async fn receive(event: Event) -> Answer {
    match &event.payload {
        Payload::UserPreCreate(payload) => payload.allow().roles(["member"]).into(),
        _ => Answer::allow(),
    }
}

let app: Router = Router::new()
    .route("/hooks/authgear", post(receive))
    .layer(VerifySignatureLayer::new("my-webhook-secret"));
```
"#
)]

#[macro_use]
mod string_enum;

mod answer;
#[cfg(feature = "axum")]
mod axum;
mod context;
mod envelope;
mod models;
mod payload;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::axum::{EventRejection, EventRejectionKind};
pub use self::{
    answer::{
        Amr, Answer, AuthenticationAnswer, BotProtectionMode, ClaimError, Deny,
        PreAuthenticatedAnswer, RateLimit, TokenAnswer, UserAnswer, Weight, WeightError,
    },
    context::{AuditContext, Context, OAuthContext, TriggeredBy},
    envelope::{Event, is_blocking_type},
    models::{
        Authentication, AuthenticationContext, AuthenticationFlow, AuthenticationFlowType,
        AuthenticationMethod, Authenticator, AuthenticatorKind, AuthenticatorType, Identification,
        IdentificationMethod, Identity, IdentityType, Session, SessionType, User,
    },
    payload::{
        AuthenticationPostIdentifiedPayload, AuthenticationPreAuthenticatedPayload,
        AuthenticationPreInitializePayload, IdentityPayload, IdentityUpdatedPayload,
        OidcIdTokenPreCreatePayload, OidcJwtPreCreatePayload, Payload, Token, UsageAlert,
        UsageAlertPayload, UsageLimitAction, UsageLimitPeriod, UsageName,
        UserAnonymousPromotedPayload, UserCreatedPayload, UserDeletedPayload, UserDisabledPayload,
        UserPayload, UserPreCreatePayload, UserPreScheduleAnonymizationPayload,
        UserPreScheduleDeletionPayload, UserProfilePreUpdatePayload, UserSessionPayload,
    },
};
