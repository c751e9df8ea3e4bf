//! Allowing an `authentication.*` blocking event, with requirements on the authentication.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{Allow, Answer, Inner};
use crate::event::{
    AuthenticationPostIdentifiedPayload, AuthenticationPreAuthenticatedPayload,
    AuthenticationPreInitializePayload,
};

/// Allows `authentication.pre_initialize` or `authentication.post_identified`, optionally
/// with requirements: AMR constraints, bot protection, rate-limit weights. Made by the
/// payload's `allow()`.
///
/// ```
/// use authgear_webhook::event::{Amr, Answer, BotProtectionMode, Event, Payload, RateLimit, Weight};
///
/// # let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,
/// #   "type":"authentication.pre_initialize",
/// #   "payload":{"authentication_context":{"user":null}},"context":{"timestamp":0}}"#)?;
/// let answer: Answer = match &event.payload {
///     Payload::AuthenticationPreInitialize(payload) => payload
///         .allow()
///         .require_amr([Amr::Mfa])
///         .bot_protection(BotProtectionMode::Always)
///         .rate_limit(RateLimit::General, Weight::from(2))
///         .into(),
///     _ => Answer::allow(),
/// };
/// assert_eq!(
///     serde_json::to_value(&answer)?,
///     serde_json::json!({
///         "is_allowed": true,
///         "constraints": { "amr": ["mfa"] },
///         "bot_protection": { "mode": "always" },
///         "rate_limits": { "authentication.general": { "weight": 2 } }
///     }),
/// );
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct AuthenticationAnswer {
    allow: Allow,
}

/// Allows `authentication.pre_authenticated`, optionally with AMR constraints and rate-limit
/// weights (Authgear accepts no bot protection requirement at this point). Made by the
/// payload's `allow()`.
///
/// ```
/// use authgear_webhook::event::{Amr, Answer, Event, Payload};
///
/// # let event: Event = serde_json::from_str(r#"{"id":"1","seq":1,
/// #   "type":"authentication.pre_authenticated",
/// #   "payload":{"authentication_context":{"amr":["pwd"]}},"context":{"timestamp":0}}"#)?;
/// let answer: Answer = match &event.payload {
///     Payload::AuthenticationPreAuthenticated(payload) => {
///         payload.allow().require_amr([Amr::Mfa]).into()
///     }
///     _ => Answer::allow(),
/// };
/// assert_eq!(
///     serde_json::to_value(&answer)?,
///     serde_json::json!({ "is_allowed": true, "constraints": { "amr": ["mfa"] } }),
/// );
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct PreAuthenticatedAnswer {
    allow: Allow,
}

/// The methods both builders share.
macro_rules! requirements {
    ($answer:ident, $payload:literal) => {
        impl $answer {
            /// Requires the end user to authenticate with these methods (`constraints.amr`),
            /// replacing any list given before.
            ///
            /// ```
            /// # use authgear_webhook::event::*;
            #[doc = concat!("# let payload: ", $payload, " =")]
            /// #     serde_json::from_str(r#"{"authentication_context":{}}"#)?;
            /// let answer = payload.allow().require_amr([Amr::Mfa, Amr::XSecondaryTotp]);
            /// assert_eq!(
            ///     serde_json::to_value(&answer)?["constraints"]["amr"],
            ///     serde_json::json!(["mfa", "x_secondary_totp"]),
            /// );
            /// # Ok::<_, serde_json::Error>(())
            /// ```
            pub fn require_amr(mut self, amr: impl IntoIterator<Item = Amr>) -> Self {
                self.allow.amr = Some(amr.into_iter().collect());
                self
            }

            /// Sets the weight of this attempt in a rate limit (`rate_limits`): `0` does not
            /// count it, `1` is the default.
            ///
            /// ```
            /// # use authgear_webhook::event::*;
            #[doc = concat!("# let payload: ", $payload, " =")]
            /// #     serde_json::from_str(r#"{"authentication_context":{}}"#)?;
            /// let answer = payload.allow().rate_limit(RateLimit::AccountEnumeration, Weight::ZERO);
            /// assert_eq!(
            ///     serde_json::to_value(&answer)?["rate_limits"],
            ///     serde_json::json!({ "authentication.account_enumeration": { "weight": 0 } }),
            /// );
            /// # Ok::<_, serde_json::Error>(())
            /// ```
            pub fn rate_limit(mut self, limit: RateLimit, weight: Weight) -> Self {
                match limit {
                    RateLimit::General => self.allow.general = Some(weight),
                    RateLimit::AccountEnumeration => self.allow.account_enumeration = Some(weight),
                }
                self
            }
        }

        impl Serialize for $answer {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.allow.serialize(serializer)
            }
        }

        impl From<$answer> for Answer {
            fn from(answer: $answer) -> Self {
                Self(Inner::Allow(answer.allow))
            }
        }
    };
}

requirements!(AuthenticationAnswer, "AuthenticationPreInitializePayload");
requirements!(
    PreAuthenticatedAnswer,
    "AuthenticationPreAuthenticatedPayload"
);

impl AuthenticationAnswer {
    /// Sets when the end user must pass bot protection (`bot_protection.mode`).
    ///
    /// ```
    /// # use authgear_webhook::event::*;
    /// # let payload: AuthenticationPostIdentifiedPayload = serde_json::from_str(
    /// #     r#"{"identification":{"identification":"email"},"authentication_context":{}}"#)?;
    /// let answer = payload.allow().bot_protection(BotProtectionMode::Always);
    /// assert_eq!(serde_json::to_value(&answer)?["bot_protection"]["mode"], "always");
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn bot_protection(mut self, mode: BotProtectionMode) -> Self {
        self.allow.bot_protection = Some(mode);
        self
    }
}

impl AuthenticationPreInitializePayload {
    /// Allows the event; the [`AuthenticationAnswer`] can also set requirements.
    ///
    /// ```
    /// # use authgear_webhook::event::*;
    /// # let payload: AuthenticationPreInitializePayload =
    /// #     serde_json::from_str(r#"{"authentication_context":{}}"#)?;
    /// let answer = payload.allow().bot_protection(BotProtectionMode::Never);
    /// assert!(Answer::from(answer).is_allowed());
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn allow(&self) -> AuthenticationAnswer {
        AuthenticationAnswer {
            allow: Allow::default(),
        }
    }
}

impl AuthenticationPostIdentifiedPayload {
    /// Allows the event; the [`AuthenticationAnswer`] can also set requirements.
    ///
    /// ```
    /// # use authgear_webhook::event::*;
    /// # let payload: AuthenticationPostIdentifiedPayload = serde_json::from_str(
    /// #     r#"{"identification":{"identification":"email"},"authentication_context":{}}"#)?;
    /// let answer = payload.allow().require_amr([Amr::Otp]);
    /// assert!(Answer::from(answer).is_allowed());
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn allow(&self) -> AuthenticationAnswer {
        AuthenticationAnswer {
            allow: Allow::default(),
        }
    }
}

impl AuthenticationPreAuthenticatedPayload {
    /// Allows the event; the [`PreAuthenticatedAnswer`] can also set requirements.
    ///
    /// ```
    /// # use authgear_webhook::event::*;
    /// # let payload: AuthenticationPreAuthenticatedPayload =
    /// #     serde_json::from_str(r#"{"authentication_context":{}}"#)?;
    /// let answer = payload.allow().rate_limit(RateLimit::General, Weight::ZERO);
    /// assert!(Answer::from(answer).is_allowed());
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn allow(&self) -> PreAuthenticatedAnswer {
        PreAuthenticatedAnswer {
            allow: Allow::default(),
        }
    }
}

/// An authentication method an answer can require (`constraints.amr`): the 12 values
/// Authgear's schema accepts.
///
/// ```
/// use authgear_webhook::event::Amr;
///
/// assert_eq!(Amr::XPrimaryOobOtpEmail.as_str(), "x_primary_oob_otp_email");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Amr {
    /// `mfa`: any two factors.
    Mfa,
    /// `otp`: a one-time code.
    Otp,
    /// `pwd`: a password.
    Pwd,
    /// `sms`: a code by SMS.
    Sms,
    /// `x_primary_password`.
    XPrimaryPassword,
    /// `x_primary_oob_otp_email`.
    XPrimaryOobOtpEmail,
    /// `x_primary_oob_otp_sms`.
    XPrimaryOobOtpSms,
    /// `x_secondary_password`.
    XSecondaryPassword,
    /// `x_secondary_oob_otp_email`.
    XSecondaryOobOtpEmail,
    /// `x_secondary_oob_otp_sms`.
    XSecondaryOobOtpSms,
    /// `x_secondary_totp`.
    XSecondaryTotp,
    /// `x_recovery_code`.
    XRecoveryCode,
}

impl Amr {
    /// The value as Authgear writes it.
    ///
    /// ```
    /// use authgear_webhook::event::Amr;
    ///
    /// assert_eq!(Amr::Mfa.as_str(), "mfa");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::Otp => "otp",
            Self::Pwd => "pwd",
            Self::Sms => "sms",
            Self::XPrimaryPassword => "x_primary_password",
            Self::XPrimaryOobOtpEmail => "x_primary_oob_otp_email",
            Self::XPrimaryOobOtpSms => "x_primary_oob_otp_sms",
            Self::XSecondaryPassword => "x_secondary_password",
            Self::XSecondaryOobOtpEmail => "x_secondary_oob_otp_email",
            Self::XSecondaryOobOtpSms => "x_secondary_oob_otp_sms",
            Self::XSecondaryTotp => "x_secondary_totp",
            Self::XRecoveryCode => "x_recovery_code",
        }
    }
}

/// When the end user must pass bot protection (`bot_protection.mode`).
///
/// ```
/// use authgear_webhook::event::BotProtectionMode;
///
/// assert_eq!(serde_json::to_string(&BotProtectionMode::Never)?, r#""never""#);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BotProtectionMode {
    /// Never, whatever the project's configuration says.
    Never,
    /// Always.
    Always,
}

/// A rate limit whose weight an answer can set (`rate_limits`).
///
/// ```
/// use authgear_webhook::event::RateLimit;
///
/// assert_eq!(RateLimit::General.as_str(), "authentication.general");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimit {
    /// `authentication.general`: authentication attempts.
    General,
    /// `authentication.account_enumeration`: attempts that may reveal whether an account
    /// exists.
    AccountEnumeration,
}

impl RateLimit {
    /// The key as Authgear writes it.
    ///
    /// ```
    /// use authgear_webhook::event::RateLimit;
    ///
    /// assert_eq!(RateLimit::AccountEnumeration.as_str(), "authentication.account_enumeration");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "authentication.general",
            Self::AccountEnumeration => "authentication.account_enumeration",
        }
    }
}

/// How much an attempt counts in a rate limit: a finite number, not negative. `0` does not
/// count the attempt; `1` is Authgear's default.
///
/// ```
/// use authgear_webhook::event::Weight;
///
/// assert_eq!(Weight::new(0.5)?.get(), 0.5);
/// assert_eq!(Weight::from(3).get(), 3.0);
/// assert!(Weight::new(-1.0).is_err());
/// assert!(Weight::new(f64::NAN).is_err());
/// # Ok::<_, authgear_webhook::event::WeightError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Weight(f64);

impl Weight {
    /// `0`: the attempt is not counted.
    pub const ZERO: Self = Self(0.0);
    /// `1`: Authgear's default.
    pub const ONE: Self = Self(1.0);

    /// A weight.
    ///
    /// # Errors
    ///
    /// If `weight` is negative, infinite or NaN: Authgear's schema refuses those (and JSON
    /// has no infinity or NaN).
    ///
    /// ```
    /// use authgear_webhook::event::Weight;
    ///
    /// assert!(Weight::new(2.5).is_ok());
    /// assert!(Weight::new(f64::INFINITY).is_err());
    /// ```
    pub fn new(weight: f64) -> Result<Self, WeightError> {
        if weight.is_finite() && weight >= 0.0 {
            // `+ 0.0` turns -0.0 into 0.0.
            Ok(Self(weight + 0.0))
        } else {
            Err(WeightError(()))
        }
    }

    /// The weight as a number.
    ///
    /// ```
    /// use authgear_webhook::event::Weight;
    ///
    /// assert_eq!(Weight::ONE.get(), 1.0);
    /// ```
    pub fn get(self) -> f64 {
        self.0
    }
}

impl From<u32> for Weight {
    fn from(weight: u32) -> Self {
        Self(f64::from(weight))
    }
}

/// Whole weights are written as JSON integers (`2`, not `2.0`), as people write them.
impl Serialize for Weight {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // 2^53: every integer up to it is exact in an f64.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if self.0.fract() == 0.0 && self.0 <= EXACT {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = self.0 as u64;
            serializer.serialize_u64(whole)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

/// [`Weight::new`] was given a negative, infinite or NaN number.
///
/// ```
/// use authgear_webhook::event::Weight;
///
/// let error = Weight::new(-0.5).unwrap_err();
/// assert_eq!(error.to_string(), "a rate-limit weight must be a finite number >= 0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightError(());

impl fmt::Display for WeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rate-limit weight must be a finite number >= 0")
    }
}

impl std::error::Error for WeightError {}
