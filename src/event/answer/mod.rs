//! Answers to blocking events, built so that Authgear's schema accepts every one.
//!
//! - [`Answer::allow`] and [`Answer::deny`] fit every blocking event.
//! - What else an event accepts comes from its payload's `allow()`, whose builder has only
//!   the methods that event accepts: [`UserAnswer`] (mutations of the user) for the four
//!   `user.*` events, [`TokenAnswer`] (added claims) for the two `oidc.*` events,
//!   [`AuthenticationAnswer`] (AMR constraints, bot protection, rate limits) for
//!   `authentication.pre_initialize` and `authentication.post_identified`, and
//!   [`PreAuthenticatedAnswer`] (no bot protection) for `authentication.pre_authenticated`.
//! - A [`Deny`] carries only a title and a reason. The rest is checked when it is built:
//!   a rate-limit [`Weight`] is finite and not negative, and a claim already in the token
//!   cannot be changed ([`ClaimError`]).
//!
//! Every builder converts into [`Answer`], implements `Serialize`, and with the `axum`
//! feature `IntoResponse` (200, `application/json`).

mod authentication;
mod token;
mod user;

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::{Map, Value};

pub use self::{
    authentication::{
        Amr, AuthenticationAnswer, BotProtectionMode, PreAuthenticatedAnswer, RateLimit, Weight,
        WeightError,
    },
    token::{ClaimError, TokenAnswer},
    user::UserAnswer,
};

/// The answer to a blocking event: allowed (perhaps with mutations or requirements), or
/// denied. Every value of this type is one Authgear's schema accepts for the event it was
/// built for.
///
/// ```
/// use authgear_webhook::event::{Answer, Event, Payload};
///
/// fn answer(event: &Event) -> Answer {
///     match &event.payload {
///         Payload::UserPreCreate(payload) if payload.user.email().is_none() => {
///             Answer::deny().title("Sign-up refused").reason("An email address is required").into()
///         }
///         Payload::UserPreCreate(payload) => payload.allow().roles(["member"]).into(),
///         _ => Answer::allow(),
///     }
/// }
/// # let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,"type":"user.pre_create",
/// #   "payload":{"user":{"id":"u1","created_at":"","updated_at":"","is_anonymous":false,
/// #   "is_verified":false,"is_disabled":false}},"context":{"timestamp":0}}"#)?;
/// assert_eq!(
///     serde_json::to_value(answer(&event))?,
///     serde_json::json!({
///         "is_allowed": false,
///         "title": "Sign-up refused",
///         "reason": "An email address is required"
///     }),
/// );
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Answer(Inner);

#[derive(Debug, Clone, PartialEq)]
enum Inner {
    Allow(Allow),
    Deny(Deny),
}

impl Answer {
    /// `{"is_allowed": true}`: let the operation go on, unchanged.
    ///
    /// ```
    /// use authgear_webhook::event::Answer;
    ///
    /// let json = serde_json::to_string(&Answer::allow())?;
    /// assert_eq!(json, r#"{"is_allowed":true}"#);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn allow() -> Self {
        Self(Inner::Allow(Allow::default()))
    }

    /// Refuse the operation; add a [`title`](Deny::title) and a [`reason`](Deny::reason) for
    /// the end user. Authgear fails the operation with 403 `HookDisallowed`.
    ///
    /// ```
    /// use authgear_webhook::event::Answer;
    ///
    /// let answer = Answer::deny().reason("Not on the guest list");
    /// assert_eq!(
    ///     serde_json::to_value(&answer)?,
    ///     serde_json::json!({ "is_allowed": false, "reason": "Not on the guest list" }),
    /// );
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn deny() -> Deny {
        Deny::new()
    }

    /// Whether this answer lets the operation go on.
    ///
    /// ```
    /// use authgear_webhook::event::Answer;
    ///
    /// assert!(Answer::allow().is_allowed());
    /// assert!(!Answer::from(Answer::deny()).is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        matches!(self.0, Inner::Allow(_))
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Inner::Allow(allow) => allow.serialize(serializer),
            Inner::Deny(deny) => deny.serialize(serializer),
        }
    }
}

impl From<Deny> for Answer {
    fn from(deny: Deny) -> Self {
        Self(Inner::Deny(deny))
    }
}

/// A refusal: `{"is_allowed": false}` with an optional title and reason, shown to the end
/// user. It can carry nothing else (Authgear refuses a denial with mutations). Made by
/// [`Answer::deny`].
///
/// ```
/// use authgear_webhook::event::{Answer, Deny};
///
/// let deny: Deny = Answer::deny().title("Blocked").reason("Your domain is not allowed");
/// let answer: Answer = deny.into();
/// assert!(!answer.is_allowed());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use]
pub struct Deny {
    title: Option<String>,
    reason: Option<String>,
}

impl Deny {
    /// `{"is_allowed": false}`; the same as [`Answer::deny`].
    ///
    /// ```
    /// use authgear_webhook::event::Deny;
    ///
    /// assert_eq!(serde_json::to_string(&Deny::new())?, r#"{"is_allowed":false}"#);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The title of the message shown to the end user.
    ///
    /// ```
    /// use authgear_webhook::event::Answer;
    ///
    /// let answer = Answer::deny().title("Sign-up closed");
    /// assert_eq!(serde_json::to_value(&answer)?["title"], "Sign-up closed");
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The reason shown to the end user.
    ///
    /// ```
    /// use authgear_webhook::event::Answer;
    ///
    /// let answer = Answer::deny().reason("Try again next week");
    /// assert_eq!(serde_json::to_value(&answer)?["reason"], "Try again next week");
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

impl Serialize for Deny {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("is_allowed", &false)?;
        if let Some(title) = &self.title {
            map.serialize_entry("title", title)?;
        }
        if let Some(reason) = &self.reason {
            map.serialize_entry("reason", reason)?;
        }
        map.end()
    }
}

/// What an allowing answer carries. The builders fill only the parts their event accepts.
#[derive(Debug, Clone, PartialEq, Default)]
struct Allow {
    user: UserMutations,
    token: Option<TokenMutation>,
    amr: Option<Vec<Amr>>,
    bot_protection: Option<BotProtectionMode>,
    general: Option<Weight>,
    account_enumeration: Option<Weight>,
}

/// `mutations.user`: each part present replaces the user's whole value.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
struct UserMutations {
    #[serde(skip_serializing_if = "Option::is_none")]
    standard_attributes: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_attributes: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
}

impl UserMutations {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `mutations.jwt` or `mutations.id_token`: the whole token payload.
#[derive(Debug, Clone, PartialEq)]
struct TokenMutation {
    /// `"jwt"` or `"id_token"`.
    key: &'static str,
    payload: Map<String, Value>,
}

impl Serialize for Allow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("is_allowed", &true)?;
        if !self.user.is_empty() || self.token.is_some() {
            map.serialize_entry("mutations", &Mutations(self))?;
        }
        if let Some(amr) = &self.amr {
            map.serialize_entry("constraints", &Constraints { amr })?;
        }
        if let Some(mode) = self.bot_protection {
            map.serialize_entry("bot_protection", &BotProtection { mode })?;
        }
        if self.general.is_some() || self.account_enumeration.is_some() {
            map.serialize_entry("rate_limits", &RateLimits(self))?;
        }
        map.end()
    }
}

struct Mutations<'a>(&'a Allow);

impl Serialize for Mutations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if !self.0.user.is_empty() {
            map.serialize_entry("user", &self.0.user)?;
        }
        if let Some(token) = &self.0.token {
            map.serialize_entry(
                token.key,
                &TokenPayload {
                    payload: &token.payload,
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct TokenPayload<'a> {
    payload: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct Constraints<'a> {
    amr: &'a [Amr],
}

#[derive(Serialize)]
struct BotProtection {
    mode: BotProtectionMode,
}

struct RateLimits<'a>(&'a Allow);

impl Serialize for RateLimits<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (limit, weight) in [
            (RateLimit::General, self.0.general),
            (RateLimit::AccountEnumeration, self.0.account_enumeration),
        ] {
            if let Some(weight) = weight {
                map.serialize_entry(limit.as_str(), &RateLimitWeight { weight })?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct RateLimitWeight {
    weight: Weight,
}
