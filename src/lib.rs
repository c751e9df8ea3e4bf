#![doc = include_str!("../README.md")]
//!
//! [`VerifySignatureLayer`]: crate::VerifySignatureLayer
//! [`Verified`]: crate::Verified
//! [`Verifier`]: crate::Verifier
//! [`Verifier::start`]: crate::Verifier::start
//! [`VerifiedBody`]: crate::VerifiedBody
//! [`Rejection`]: crate::Rejection
//! [`RejectionKind`]: crate::RejectionKind
//! [`BodyBudget`]: crate::BodyBudget
//! [`sign`]: crate::sign
//! [`Event`]: crate::event::Event
//! [`Answer`]: crate::event::Answer
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

mod body;
mod budget;
mod buffer;
mod collect;
mod envelope;
mod rejection;
mod secret;
pub mod sign_request;
mod signature;
#[cfg(any(feature = "replay", feature = "inbox"))]
mod store_error;
mod verified;
pub mod verify;

#[cfg(feature = "event")]
#[cfg_attr(docsrs, doc(cfg(feature = "event")))]
pub mod event;
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;
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

#[cfg(any(feature = "replay", feature = "inbox"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "replay", feature = "inbox"))))]
pub use self::store_error::{StoreError, StoreErrorKind, StoreFuture};
pub use self::{
    body::{ResponseBody, VerifiedBody},
    budget::{BodyBudget, BodyReservation},
    envelope::Envelope,
    rejection::{Rejection, RejectionKind},
    secret::{FromEnvError, Secret},
    sign_request::{SignError, SignErrorKind, SignRequest, SignRequestLayer, SignedBody},
    signature::{SIGNATURE_HEADER, Verification, Verifier, sign},
    verified::Verified,
    verify::{VerifySignature, VerifySignatureLayer},
};
