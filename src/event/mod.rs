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
//! on a route without the layer, and 400 only when the body is not an Authgear envelope at
//! all.
//!
//! # Checked against today's server
//!
//! The model was checked, struct by struct and field by field, against Authgear's server
//! source at commit `fa7a7d55` (2026-08-21): `pkg/api/event/{event,context,event_payload}.go`,
//! every payload in `pkg/api/event/blocking` and in `pkg/api/event/nonblocking` whose
//! `ForHook()` is true, and the models they embed in `pkg/api/model` (`User`, `Identity`,
//! `Session`, `Identification`, `Authentication`, `Authenticator`, usage). Every field the
//! server may omit (`omitempty`, `omitzero`) or send as `null` (a pointer, a nil map or
//! slice, a code path that leaves it nil, such as `session` after a SAML login) is an
//! `Option`; every enum has every value of that commit, plus `Other` for later ones. The
//! `adminapi.mutation.*.executed` and the other audit-only events are never sent to hooks
//! (`ForHook()` is false); the portal's `project.*` events are kept as
//! [`Payload::Unknown`].
//!
//! # Never refused for its shape
//!
//! Authgear sends each delivery once and never retries it, and a failed blocking delivery
//! fails the end user's operation, so parsing refuses only what is not an Authgear envelope
//! at all: anything but a JSON object with a string `id` and a string `type`. Everything
//! else parses:
//!
//! - fields missing or `null` (older servers), new `triggered_by` values, new event types
//!   (kept as [`Payload::Unknown`]), unknown fields (kept in each struct's `extra`);
//! - a known type whose payload does not fit the model (a newer server, a field this crate
//!   got wrong) is [`Payload::OffModel`]: the payload as sent, with the reason;
//! - a `context` or `seq` that does not fit is kept as sent in [`Event::extra`].
//!
//! [`Event::off_model_reason`] says what did not fit (naming kinds, never the delivery's
//! values), and the extractor logs it with `tracing` (feature `tracing`; the crate never
//! prints). Serialising an `Event` gives back exactly the JSON value it was parsed from,
//! `null`s included. Numbers are read correctly rounded (serde_json's `float_roundtrip`), so
//! a token claim written back in an answer is the `float64` Authgear sent. (A number beyond
//! `float64`'s range, which Go's encoder never writes, is not JSON serde_json can read: 400.)
//!
//! # What Authgear does with your answer
//!
//! Read in the server source named above (`pkg/lib/hook/{sink,hook_web,http}.go`,
//! `pkg/lib/config/hook.go`, `pkg/util/httputil/ext_client.go`):
//!
//! - A blocking hook gets 5 s to answer, and all the blocking hooks of one event 10 s in
//!   total (checked before each further hook); both are configurable per project
//!   (`hook.sync_hook_timeout_seconds`, `hook.sync_hook_total_timeout_seconds`).
//! - A non-blocking delivery gets 60 s and is sent once, never retried; its answer is
//!   ignored.
//! - Redirects are not followed: a 3xx is a non-2xx answer.
//! - On a blocking event, any non-2xx status, a timeout, or a body outside the event's
//!   response schema fails the end user's operation (sign-up, login, token issuance). So a
//!   400, 401, 413 or 503 from this crate on a blocking event is a failure the end user
//!   sees; answer [`Answer::deny`] to refuse on purpose.
//! - `identity.{email,phone,username}.{verified,unverified}` cannot be named in a project's
//!   `non_blocking_handlers`: only a handler subscribed to `"*"` receives them.
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
mod misfit;
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
        AuthenticationPreInitializePayload, BLOCKING_TYPES, IdentityPayload,
        IdentityUpdatedPayload, NON_BLOCKING_TYPES, OidcIdTokenPreCreatePayload,
        OidcJwtPreCreatePayload, Payload, Token, UsageAlert, UsageAlertPayload, UsageLimitAction,
        UsageLimitPeriod, UsageName, UserAnonymousPromotedPayload, UserCreatedPayload,
        UserDeletedPayload, UserDisabledPayload, UserPayload, UserPreCreatePayload,
        UserPreScheduleAnonymizationPayload, UserPreScheduleDeletionPayload,
        UserProfilePreUpdatePayload, UserSessionPayload,
    },
};
