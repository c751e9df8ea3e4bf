// The front page is the README, the package's page on GitHub and crates.io too. Its examples
// use the optional features, so it is the crate's documentation (and its examples are
// doctests) when those are on, as on docs.rs; without them, a summary says where to look.
#![cfg_attr(
    all(
        feature = "axum",
        feature = "replay",
        feature = "inbox-sqlite",
        feature = "inbox-postgres",
        feature = "catch-up",
        feature = "metrics"
    ),
    doc = include_str!("../README.md")
)]
#![cfg_attr(
    not(all(
        feature = "axum",
        feature = "replay",
        feature = "inbox-sqlite",
        feature = "inbox-postgres",
        feature = "catch-up",
        feature = "metrics"
    )),
    doc = "Receive Authgear webhooks in tower-based servers: [`VerifySignatureLayer`] lets \
           through only bodies Authgear signed. The README (built into these docs with \
           `--all-features`) shows the rest."
)]
#![cfg_attr(
    all(
        feature = "axum",
        feature = "replay",
        feature = "inbox-sqlite",
        feature = "inbox-postgres",
        feature = "catch-up",
        feature = "metrics"
    ),
    doc = "\n## Where to start\n\n\
           [`VerifySignatureLayer`] (a tower layer) or [`Verifier`] (anywhere else) \
           verify; [`event`] types what was verified and the answers to blocking events; \
           [`replay`] and [`inbox`] are the layers a request meets next, in that order."
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

mod body;
mod budget;
mod buffer;
mod collect;
mod envelope;
// Public with the feature (its docs list every metric); without it, the same calls do
// nothing.
#[cfg(not(feature = "metrics"))]
mod metrics;
#[cfg(any(feature = "inbox-postgres", feature = "replay-postgres"))]
mod postgres;
mod rejection;
#[cfg(feature = "inbox")]
mod rfc3339;
mod secret;
mod secrets;
pub mod sign_request;
mod signature;
mod span;
#[cfg(any(feature = "replay", feature = "inbox"))]
mod store_error;
mod verified;
pub mod verify;

#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod admin;
#[cfg(feature = "catch-up")]
#[cfg_attr(docsrs, doc(cfg(feature = "catch-up")))]
pub mod catch_up;
#[cfg(feature = "event")]
#[cfg_attr(docsrs, doc(cfg(feature = "event")))]
pub mod event;
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "replay")]
#[cfg_attr(docsrs, doc(cfg(feature = "replay")))]
pub mod replay;

// The optional crates in the public API, so that users name the very version this crate uses.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum_core;
#[cfg(any(feature = "replay-redis", feature = "inbox-redis"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "replay-redis", feature = "inbox-redis")))
)]
pub use redis;
#[cfg(any(feature = "inbox-postgres", feature = "replay-postgres"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "inbox-postgres", feature = "replay-postgres")))
)]
pub use sqlx;

#[cfg(any(feature = "replay", feature = "inbox"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "replay", feature = "inbox"))))]
pub use self::store_error::{StoreError, StoreErrorKind, StoreFuture};
pub use self::{
    body::{ResponseBody, VerifiedBody},
    budget::{BodyBudget, BodyReservation},
    envelope::Envelope,
    rejection::{Rejection, RejectionKind},
    secret::{FromEnvError, Secret},
    secrets::{EmptySecretsError, SecretFileError, SecretFileErrorKind, SecretSource, Secrets},
    signature::{SIGNATURE_HEADER, Verification, Verifier, sign},
    verified::Verified,
};
// Listed among the crate's own items on docs.rs, not only as re-exports of their modules.
#[doc(inline)]
pub use self::{
    sign_request::{SignError, SignErrorKind, SignRequest, SignRequestLayer, SignedBody},
    verify::{VerifySignature, VerifySignatureLayer},
};
